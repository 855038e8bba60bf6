"""``create_app``: the dashboard as an ASGI app, to serve alone or mount in another.

Each page has its data at ``/api/<page>`` as JSON, read by the same function
(``_views``). Pages and the API run their Redis reads in Starlette's thread pool
(the handlers are plain functions), through one connection pool per app.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from verk_actors.config.redis_url import redact_url
from verk_actors.errors import (
    ConfigurationError,
    InvalidJobError,
    MalformedJobError,
    NotFoundError,
    RedisUnavailableError,
)
from verk_actors.store.admin.job_sets import JobSet, SetEntry
from verk_actors.store.connection import Connection, connect
from verk_actors.store.failures import REDIS_ERRORS
from verk_actors.web import _batch_views as batch_views
from verk_actors.web import _cron_views as cron_views
from verk_actors.web import _limit_views as limit_views
from verk_actors.web import _metrics_views as metrics_views
from verk_actors.web import _nodes as nodes
from verk_actors.web import _prometheus
from verk_actors.web import _views as views
from verk_actors.web._actions import Actions
from verk_actors.web._events import MAX_STREAMS, EventStreams
from verk_actors.web._render import (
    HERE,
    LIMITS,
    environment,
    int_param,
    paging,
    render,
    set_filter,
    sort_param,
)
from verk_actors.web._security import Auth, Csrf, Guard

__all__ = ["Auth", "create_app"]


class Dashboard:
    """The pages and their API twins, over one Redis connection pool."""

    def __init__(
        self, client: Connection, url: str, *, read_only: bool, event_streams: int = MAX_STREAMS
    ) -> None:
        self.client = client
        self.url = url
        self.read_only = read_only
        self.env = environment()
        self.events = EventStreams(url, max_streams=event_streams)

    def _page(
        self, request: Request, name: str, data: dict[str, Any], status_code: int = 200
    ) -> Response:
        return render(
            self.env,
            request,
            name,
            {"data": data, "limits": LIMITS, "sets": views.SETS},
            read_only=self.read_only,
            status_code=status_code,
        )

    def _both(
        self, name: str, read: Callable[[Request], dict[str, Any]]
    ) -> tuple[Callable[[Request], Response], Callable[[Request], Response]]:
        def page(request: Request) -> Response:
            return self._page(request, name, read(request))

        def api(request: Request) -> Response:
            return JSONResponse(read(request))

        return page, api

    # --- the data of each page ---------------------------------------------------------

    def dashboard(self, request: Request) -> dict[str, Any]:
        days = int_param(request, "days", 7, 1, 90)
        days = days if days in views.HISTORY_DAYS else 7
        return views.dashboard(self.client, self.url, days)

    def stats(self, request: Request) -> dict[str, Any]:
        return views.stats(self.client)

    def busy(self, request: Request) -> dict[str, Any]:
        return views.busy(self.client)

    def queues(self, request: Request) -> dict[str, Any]:
        return views.queues(self.client)

    def queue(self, request: Request) -> dict[str, Any]:
        offset, limit = paging(request)
        return views.queue_page(self.client, request.path_params["name"], offset, limit)

    def node(self, request: Request) -> dict[str, Any]:
        return nodes.node_page(self.client, request.path_params["node_id"])

    def node_tree(self, request: Request) -> dict[str, Any]:
        return nodes.node_tree_view(self.client, request.path_params["node_id"])

    def pending(self, request: Request) -> dict[str, Any]:
        pos = request.query_params.get("pos", "")
        return nodes.pending_job(
            self.client,
            request.path_params["name"],
            request.path_params["jid"],
            int(pos) if pos.isdigit() else None,
        )

    def prometheus(self, request: Request) -> Response:
        return Response(_prometheus.render(self.client), media_type=_prometheus.CONTENT_TYPE)

    def cron(self, request: Request) -> dict[str, Any]:
        return cron_views.cron(self.client)

    def limits(self, request: Request) -> dict[str, Any]:
        return limit_views.limits(self.client)

    def batches(self, request: Request) -> dict[str, Any]:
        return batch_views.batches(self.client)

    def batch(self, request: Request) -> dict[str, Any]:
        return batch_views.batch(self.client, request.path_params["bid"])

    def metrics(self, request: Request) -> dict[str, Any]:
        window = metrics_views.window_of(request.query_params.get("window"))
        return metrics_views.metrics(self.client, window)

    def metrics_class(self, request: Request) -> dict[str, Any]:
        window = metrics_views.window_of(request.query_params.get("window"))
        return metrics_views.metrics_class(self.client, request.path_params["name"], window)

    def job_set(self, request: Request, page: str) -> dict[str, Any]:
        offset, limit = paging(request)
        return views.set_page(
            self.client,
            page,
            set_filter(request),
            offset=offset,
            limit=limit,
            newest_first=sort_param(request),
        )

    def entry(self, request: Request, page: str) -> dict[str, Any]:
        found = find_entry(JobSet(self.client, views.SETS[page]), request.path_params["key"])
        return views.set_entry_detail(page, found)

    # --- routes ------------------------------------------------------------------------

    def routes(self, csrf: Csrf) -> list[BaseRoute]:
        pages: list[tuple[str, str, str, Callable[[Request], dict[str, Any]]]] = [
            ("/", "/dashboard", "dashboard.html", self.dashboard),
            ("/busy", "/busy", "busy.html", self.busy),
            ("/nodes/{node_id}", "/nodes/{node_id}", "node.html", self.node),
            ("/queues", "/queues", "queues.html", self.queues),
            # Before the queue page: a queue name may hold "/" ({name:path}).
            (
                "/queues/{name:path}/jobs/{jid}",
                "/queues/{name:path}/jobs/{jid}",
                "pending.html",
                self.pending,
            ),
            ("/queues/{name:path}", "/queues/{name:path}", "queue.html", self.queue),
            ("/batches", "/batches", "batches.html", self.batches),
            ("/limits", "/limits", "limits.html", self.limits),
            ("/cron", "/cron", "cron.html", self.cron),
            ("/batches/{bid}", "/batches/{bid}", "batch.html", self.batch),
            # Pages at /job-metrics: /metrics is the cluster's Prometheus figures.
            ("/job-metrics", "/metrics", "metrics.html", self.metrics),
            (
                "/job-metrics/{name:path}",
                "/metrics/{name:path}",
                "metrics_class.html",
                self.metrics_class,
            ),
        ]
        for name in views.SETS:
            pages.append((f"/{name}", f"/{name}", "set.html", partial(self.job_set, page=name)))
            pages.append(
                (
                    f"/{name}/{{key:path}}",
                    f"/{name}/{{key:path}}",
                    "entry.html",
                    partial(self.entry, page=name),
                )
            )
        out: list[BaseRoute] = []
        for path, api_path, template, read in pages:
            page, api = self._both(template, read)
            out.append(Route(path, page))
            out.append(Route("/api" + api_path, api))
        out.insert(0, Route("/api/stats", self._api(self.stats), name="api_stats"))
        out.insert(0, Route("/api/nodes/{node_id}/tree", self._api(self.node_tree)))
        out.insert(0, Route("/api/events", self.events.endpoint))
        out.insert(0, Route("/metrics", self.prometheus))
        actions = Actions(self.client, csrf, read_only=self.read_only)
        out = actions.routes() + out
        out.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
        return out

    @staticmethod
    def _api(read: Callable[[Request], dict[str, Any]]) -> Callable[[Request], Response]:
        def api(request: Request) -> Response:
            return JSONResponse(read(request))

        return api


def find_entry(job_set: JobSet, key: str) -> SetEntry:
    """The member named by ``key`` (``<score>:<jid>``); NotFoundError if it is gone."""
    parsed = views.parse_key(key)
    found = job_set.entries_at(*parsed) if parsed is not None else []
    if not found:
        raise NotFoundError(
            f"no job {key!r} in the {job_set.name} set: it may have run, been retried or "
            "been deleted already"
        )
    return found[0]


def create_app(
    redis_url: str = "redis://127.0.0.1:6379/0",
    *,
    read_only: bool = False,
    auth: Auth | None = None,
    prefix: str = "",
    secret: bytes | None = None,
    event_streams: int = MAX_STREAMS,
) -> Starlette:
    """The dashboard for the Redis at ``redis_url``, as an ASGI app.

    ``read_only`` hides every action and refuses them (403). ``auth`` asks for a token
    or a user and password. ``prefix`` serves every page below that path (when a proxy
    forwards ``/verk/...`` unchanged); mounted in another Starlette app with
    ``Mount("/verk", app=create_app(...))`` it needs none. ``secret`` signs the CSRF
    tokens (random by default, so a restart asks browsers to reload their pages).
    ``event_streams`` caps the ``/api/events`` streams open at once.
    """
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ConfigurationError(f"prefix must start with / and not end with one, got {prefix!r}")
    client = connect(redis_url, name="verk:web")
    dashboard = Dashboard(client, redis_url, read_only=read_only, event_streams=event_streams)
    csrf = Csrf(secret or secrets.token_bytes(32))
    routes = dashboard.routes(csrf)
    if prefix:
        routes = [Mount(prefix, routes=routes)]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        client.close()

    def failed(status: int, text: str) -> Callable[[Request, Exception], Response]:
        def handler(request: Request, exc: Exception) -> Response:
            message = text.format(exc=exc, url=redact_url(redis_url))
            if "/api/" in request.url.path or "application/json" in request.headers.get(
                "accept", ""
            ):
                return JSONResponse({"error": message}, status_code=status)
            return render(
                dashboard.env,
                request,
                "error.html",
                {"status": status, "message": message, "sets": views.SETS},
                read_only=read_only,
                status_code=status,
            )

        return handler

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return failed(exc.status_code, "{exc.detail}")(request, exc)

    handlers: dict[Any, Callable[[Request, Exception], Response]] = {
        HTTPException: http_error,
        NotFoundError: failed(404, "{exc}"),
        ConfigurationError: failed(400, "{exc}"),
        InvalidJobError: failed(400, "{exc}"),
        MalformedJobError: failed(409, "{exc}"),
        RedisUnavailableError: failed(503, "{exc}"),
    }
    for error in REDIS_ERRORS:
        handlers[error] = failed(
            503, "Redis at {url} did not answer as expected ({exc.__class__.__name__})"
        )
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.add_middleware(Guard, auth=auth, csrf=csrf)
    return app
