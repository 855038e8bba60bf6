"""Sentry: every failed try of a job reported as an event, tagged with the job.

One line, in the launcher or in a module of ``imports`` (so every worker process
runs it)::

    import verk_actors.integrations.sentry
    verk_actors.integrations.sentry.enable(dsn="https://key@o1.ingest.sentry.io/1")

It is an error handler (``verk_actors.add_error_handler``): each event carries the
exception and the tags ``queue``, ``class``, ``jid``, ``retry_count`` (retries
before this try) and ``fate`` (``retry`` or ``dead``). Events are sent by the SDK's
own background thread, so a worker does not wait for Sentry. Needs
``pip install 'verk_actors[sentry]'``.
"""

from __future__ import annotations

from typing import Any

from verk_actors.errors import ConfigurationError
from verk_actors.jobs.hooks import JobContext, add_error_handler

try:
    import sentry_sdk
except ImportError:  # pragma: no cover - the extra is not installed
    sentry_sdk = None  # type: ignore[assignment]

MISSING = "Sentry reporting needs sentry-sdk: pip install 'verk_actors[sentry]'"

_added: list[bool] = []
"""Whether ``report`` is an error handler of this process already."""


def enable(dsn: str | None = None, **options: Any) -> None:
    """Report every failed try of a job in this process (and the worker processes
    forked from it) to Sentry.

    ``dsn`` and ``options`` go to ``sentry_sdk.init``; without them an SDK already
    initialised is used as it is (otherwise ``init`` reads ``SENTRY_DSN``). Calling it
    again adds no second report.
    """
    if sentry_sdk is None:
        raise ConfigurationError(MISSING)
    if dsn is not None or options or not sentry_sdk.is_initialized():
        sentry_sdk.init(dsn=dsn, **options)
    if not _added:
        _added.append(True)
        add_error_handler(report)


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
