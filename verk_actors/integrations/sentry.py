"""Sentry: every failed try of a job reported as an event, tagged with the job.

One line, in the launcher or in a module of ``imports`` (so every worker process
runs it)::

    import verk_actors.integrations.sentry
    verk_actors.integrations.sentry.enable(dsn="https://key@o1.ingest.sentry.io/1")

It adds an error handler (``verk_actors.add_error_handler``): each failed try is an
event with the exception and the tags ``queue``, ``class``, ``jid``, ``retry_count``
(retries before this try) and ``fate`` (``retry`` or ``dead``). And a server
middleware: each ``perform`` runs in a Sentry isolation scope of its own, tagged with
the same job, so what the job itself sends (``capture_message``, an ERROR record
through Sentry's logging integration) names it, and its breadcrumbs do not follow
into the next job's events. Events are sent by the SDK's own background thread, so a
worker does not wait for Sentry. Needs ``pip install 'verk_actors[sentry]'``.
"""

from __future__ import annotations

from typing import Any

from verk_actors.errors import ConfigurationError
from verk_actors.jobs.chain import Next
from verk_actors.jobs.hooks import JobContext, add_error_handler
from verk_actors.jobs.middleware import add_server_middleware

try:
    import sentry_sdk
except ImportError:  # pragma: no cover - the extra is not installed
    sentry_sdk = None  # type: ignore[assignment]

MISSING = "Sentry reporting needs sentry-sdk: pip install 'verk_actors[sentry]'"

_added: list[bool] = []
"""Whether ``report`` and ``job_scope`` are installed in this process already."""


def enable(dsn: str | None = None, **options: Any) -> None:
    """Report every failed try of a job in this process (and the worker processes
    forked from it) to Sentry, and run each ``perform`` in a scope tagged with its job.

    Server middleware is collected when a worker process starts: call this in the
    launcher or in a module of ``imports``. ``dsn`` and ``options`` go to
    ``sentry_sdk.init``; without them an SDK already initialised is used as it is
    (otherwise ``init`` reads ``SENTRY_DSN``). Calling it again adds nothing.
    """
    if sentry_sdk is None:
        raise ConfigurationError(MISSING)
    if dsn is not None or options or not sentry_sdk.is_initialized():
        sentry_sdk.init(dsn=dsn, **options)
    if not _added:
        _added.append(True)
        add_error_handler(report)
        add_server_middleware(job_scope)


def report(exc: BaseException, context: JobContext) -> None:
    """An error handler: ``exc`` to Sentry, tagged with the job of ``context``."""
    if sentry_sdk is None:
        raise ConfigurationError(MISSING)
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("queue", context.queue)
        scope.set_tag("class", context.class_name or "")
        scope.set_tag("jid", context.jid or "")
        scope.set_tag("retry_count", str(context.retry_count))
        scope.set_tag("fate", context.fate)
        sentry_sdk.capture_exception(exc)


def job_scope(worker: Any, job: dict[str, Any], queue: str, call_next: Next) -> Any:
    """Server middleware: ``perform`` in an isolation scope tagged with its job."""
    if sentry_sdk is None:
        raise ConfigurationError(MISSING)
    with sentry_sdk.isolation_scope() as scope:
        scope.set_tag("queue", queue)
        scope.set_tag("class", str(job.get("class") or ""))
        scope.set_tag("jid", str(job.get("jid") or ""))
        scope.set_tag("retry_count", str(job.get("retry_count") or 0))
        return call_next()
