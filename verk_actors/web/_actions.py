"""The dashboard's actions: every one a POST carrying the browser's CSRF token.

``POST /queues/action``: ``name``, ``action`` (pause, resume, clear with
``confirm=yes``, delete with ``jid``). ``POST /<retries|scheduled|dead>/action``:
``action`` (retry, add, delete, kill) and one ``key`` per selected job.
``POST /busy/action``: ``identity``, ``action`` (quiet, stop): the signal Sidekiq's
Web pushes, for a node or a Sidekiq process alike. Each goes
through the operations API (``store/admin``), as the CLI's commands do. A browser is
sent back to ``next`` with a message; a client asking for JSON gets the counts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from urllib.parse import parse_qs, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from verk_actors.errors import ConfigurationError, MalformedJobError, NotFoundError
from verk_actors.store.admin.job_sets import JobSet, SetEntry
from verk_actors.store.admin.pause import pause_queue, resume_queue
from verk_actors.store.admin.processes import signal_process
from verk_actors.store.admin.queues import Queue
from verk_actors.store.admin.set_search import SetFilter
from verk_actors.store.connection import Connection
from verk_actors.web import _views as views
from verk_actors.web._render import base_path
from verk_actors.web._security import CSRF_COOKIE, Csrf, cookie_value, form_token

MAX_FORM = 1 << 20
"""Largest form body accepted (bytes)."""

MAX_KEYS = 1000
"""Most jobs one action may name."""

Form = dict[str, list[str]]

SET_ACTIONS = {
    "retry": ("retry", "dead"),
    "add": ("schedule",),
    "kill": ("retry", "schedule"),
    "delete": ("retry", "schedule", "dead"),
}
"""Action -> the sets it applies to."""


def one(form: Form, name: str) -> str:
    """The single value of a form field; 400 if missing."""
    values = form.get(name)
    if not values or not values[0]:
        raise HTTPException(400, f"the form has no {name!r} field")
    return values[0]


def form_filter(form: Form) -> SetFilter:
    """The filters a form carries, as a set page reads them from its query."""

    def get(name: str) -> str | None:
        value = (form.get(name) or [""])[0].strip()
        return value[:1000] or None

    return SetFilter(
        class_name=get("class"), queue=get("queue"), error_class=get("error_class"), text=get("q")
    )


class Actions:
    """The POST routes, over the dashboard's Redis connection pool."""

    def __init__(self, client: Connection, csrf: Csrf, *, read_only: bool) -> None:
        self.client = client
        self.csrf = csrf
        self.read_only = read_only

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/queues/action", self._post(self.queue_action), methods=["POST"]),
            Route("/busy/action", self._post(self.process_action), methods=["POST"]),
        ]
        for page in views.SETS:
            act = partial(self.set_action, page=page)
            routes.append(Route(f"/{page}/action", self._post(act), methods=["POST"]))
        return routes

    def _post(
        self, act: Callable[[Request, Form], str]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if self.read_only:
                raise HTTPException(403, "this dashboard is read-only")
            body = await request.body()
            if len(body) > MAX_FORM:
                raise HTTPException(413, "the form is too large")
            form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
            cookie = cookie_value(request.headers, CSRF_COOKIE)
            if not self.csrf.matches(cookie, form_token(form, request.headers)):
                raise HTTPException(
                    403, "the form's CSRF token is missing or stale: reload the page and try again"
                )
            message = await run_in_threadpool(act, request, form)
            if "application/json" in request.headers.get("accept", ""):
                return JSONResponse({"ok": True, "message": message})
            return RedirectResponse(self._next(request, form, message), status_code=303)

        return endpoint

    @staticmethod
    def _next(request: Request, form: Form, message: str) -> str:
        base = base_path(request)
        target = (form.get("next") or [""])[0]
        if not target.startswith(base + "/") or target.startswith("//") or "\\" in target:
            target = base + "/"
        path, _, query = target.partition("?")
        params = [(k, v) for k, vs in parse_qs(query).items() for v in vs if k != "msg"]
        return f"{path}?{urlencode([*params, ('msg', message)])}"

    # --- queues ------------------------------------------------------------------------

    def queue_action(self, request: Request, form: Form) -> str:
        name, action = one(form, "name"), one(form, "action")
        queue = Queue(self.client, name)
        if action == "pause":
            pause_queue(self.client, queue.name)
            return f"Paused queue {name}: no node starts its jobs until it is resumed"
        if action == "resume":
            resume_queue(self.client, queue.name)
            return f"Resumed queue {name}"
        if action == "clear":
            if (form.get("confirm") or [""])[0] != "yes":
                raise HTTPException(400, "clearing a queue needs the confirmation box ticked")
            return f"Deleted {queue.clear()} jobs of queue {name}"
        if action == "delete":
            pos = (form.get("pos") or [""])[0]
            removed = queue.delete(one(form, "jid"), near=int(pos) if pos.isdigit() else None)
            return f"Deleted {removed} job{'s' if removed != 1 else ''} from queue {name}"
        raise HTTPException(400, f"unknown queue action {action!r}")

    # --- processes ----------------------------------------------------------------------

    def process_action(self, request: Request, form: Form) -> str:
        identity, action = one(form, "identity"), one(form, "action")
        signal = signal_process(self.client, identity, action)
        done = "goes quiet (takes no new jobs)" if signal == "TSTP" else "stops"
        return f"Sent {signal} to {identity}: it {done} at its next heartbeat"

    # --- job sets ----------------------------------------------------------------------

    def set_action(self, request: Request, form: Form, page: str) -> str:
        job_set = JobSet(self.client, views.SETS[page])
        action = one(form, "action")
        if job_set.name not in SET_ACTIONS.get(action, ()):
            raise HTTPException(400, f"{action!r} is not an action of the {page} page")
        done = gone = skipped = 0
        for entry in self._chosen(job_set, form):
            try:
                moved = self._apply(job_set, action, entry)
            except MalformedJobError:
                skipped += 1  # not a job that can run: it can only be deleted
                continue
            done += moved
            gone += not moved
        if done == gone == skipped == 0:
            raise NotFoundError("none of the selected jobs is there any more; reload the page")
        verb = {"retry": "Retried", "add": "Enqueued", "kill": "Killed", "delete": "Deleted"}
        note = f" ({gone} had gone meanwhile)" if gone else ""
        if skipped:
            note += f" ({skipped} not valid jobs, left: delete them instead)"
        return f"{verb[action]} {done} job{'s' if done != 1 else ''}{note}"

    def _chosen(self, job_set: JobSet, form: Form) -> Iterator[SetEntry]:
        """The ticked entries (``key`` fields), or with ``all=yes`` every entry passing
        the filter fields (``class``, ``queue``, ``error_class``, ``q``), found by ZSCAN
        (which allows the set to change under it)."""
        if (form.get("all") or [""])[0] == "yes":
            where = form_filter(form)
            if where.empty:
                raise HTTPException(
                    400, "acting on all needs a filter; use the CLI for a whole set"
                )
            yield from (entry for entry in job_set.scan() if where.matches(entry))
            return
        keys = form.get("key", [])[:MAX_KEYS]
        if not keys:
            raise HTTPException(400, "select at least one job")
        for key in keys:
            yield from self._entries(job_set, key)

    @staticmethod
    def _entries(job_set: JobSet, key: str) -> list[SetEntry]:
        parsed = views.parse_key(key)
        if parsed is None:
            raise ConfigurationError(f"{key!r} does not name a job (it should be SCORE:JID)")
        return job_set.entries_at(*parsed)[:1]

    @staticmethod
    def _apply(job_set: JobSet, action: str, entry: SetEntry) -> bool:
        if action in ("retry", "add"):
            return job_set.retry_entry(entry)
        if action == "kill":
            return job_set.kill_entry(entry)
        return job_set.delete_entry(entry)
