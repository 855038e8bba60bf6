"""Error handlers and death handlers: user code told about failed and dead jobs.

Both run in the worker process, after the job's try has ended and its outcome is
decided (retry or dead), so nothing a handler does changes that outcome:

- an **error handler** ``fn(exc, context)`` is called for every failed try, with the
  exception and a ``JobContext`` (jid, class, queue, args, retry count, fate);
- when the try sends the job to dead, its worker's ``retries_exhausted(job, exc)``
  (Sidekiq's ``sidekiq_retries_exhausted``) and then every **death handler**
  ``fn(job, exc)`` are called, once (``job`` is the failed job, with its error fields).

Handlers come from the node's settings (``error_handlers``/``death_handlers``, each
``"module:function"``, imported in every worker) and from ``add_error_handler`` /
``add_death_handler`` called in the worker process: at import time of a module in
``imports``, or in the launcher before the actor system starts (its processes are
forked from it and inherit the registration).

Each call is bounded by ``HANDLER_TIME_LIMIT`` seconds (the alarm that bounds jobs);
one that raises or runs out of time is logged and the next one runs.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs

from verk_actors.errors import ConfigurationError
from verk_actors.jobs.job import Job, decode_job
from verk_actors.jobs.retry import FailureRecord, Fate
from verk_actors.jobs.running import time_limit
from verk_actors.jobs.worker import Worker

log = logging.getLogger(__name__)

HANDLER_TIME_LIMIT = 5.0
"""Seconds one handler call may take before it is interrupted (and logged)."""


@attrs.frozen
class JobContext:
    """The job whose try failed, as an error handler is told."""

    jid: str | None
    class_name: str | None
    queue: str
    args: tuple[Any, ...]
    retry_count: int
    """Retries the job had before this try (0 on its first try)."""
    fate: str
    """``"retry"`` or ``"dead"``: what becomes of the job after this try."""
    job: Job | None
    """The job as it ran (None for a text that is not a job)."""


ErrorHandler = Callable[[BaseException, JobContext], object]
DeathHandler = Callable[[Job, BaseException], object]
F = TypeVar("F", bound=Callable[..., object])

_error_handlers: list[ErrorHandler] = []
_death_handlers: list[DeathHandler] = []


def add_error_handler(handler: F) -> F:
    """Call ``handler(exc, context)`` for every failed try of a job in this process
    (and the processes forked from it); usable as a decorator."""
    _error_handlers.append(handler)
    return handler


def add_death_handler(handler: F) -> F:
    """Call ``handler(job, exc)`` when a job goes to dead in this process (and the
    processes forked from it); usable as a decorator."""
    _death_handlers.append(handler)
    return handler


def check_handler_spec(spec: object) -> str:
    """``spec`` if it reads ``module:function``, else ConfigurationError saying so."""
    module, sep, name = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if (
        not sep
        or not all(part.isidentifier() for part in module.split("."))
        or not all(part.isidentifier() for part in name.split("."))
    ):
        raise ConfigurationError(
            f"{spec!r} is not a handler; write module:function, e.g. myapp.errors:report"
        )
    return spec  # type: ignore[return-value]


def import_handler(spec: str) -> Callable[..., object]:
    """The function ``spec`` (``module:function``) names, or ConfigurationError."""
    module_name, _, name = check_handler_spec(spec).partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in name.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise ConfigurationError(
            f"cannot import handler {spec!r}: {type(exc).__name__}: {exc}; check the module "
            "is on the import path (--path) and defines it"
        ) from None
    if not callable(found):
        raise ConfigurationError(f"handler {spec!r} is a {type(found).__name__}, not a function")
    return found  # type: ignore[no-any-return]


class Hooks:
    """The handlers of one worker process: the configured ones, then the added ones."""

    def __init__(
        self, error_handlers: Iterable[str] = (), death_handlers: Iterable[str] = ()
    ) -> None:
        self.error_handlers = [import_handler(spec) for spec in error_handlers]
        self.death_handlers = [import_handler(spec) for spec in death_handlers]

    def after_failure(
        self,
        *,
        job: Job | None,
        jid: str | None,
        class_name: str | None,
        queue: str,
        worker: type | None,
        error: BaseException,
        failure: FailureRecord,
    ) -> None:
        """Tell the handlers a try of ``job`` failed with ``error`` and ended in ``failure``."""
        errors = [*self.error_handlers, *_error_handlers]
        dead = failure.fate is Fate.DEAD
        if errors:
            context = JobContext(
                jid=jid,
                class_name=class_name,
                queue=queue,
                args=tuple(job.args) if job is not None else (),
                retry_count=(job.retry_count or 0) if job is not None else 0,
                fate=failure.fate.value,
                job=job,
            )
            for handler in errors:
                _call(handler, "error handler", jid, error, context)
        if not dead:
            return
        deaths = [*self.death_handlers, *_death_handlers]
        exhausted = getattr(worker, "retries_exhausted", None) if worker is not None else None
        if exhausted is Worker.retries_exhausted:
            exhausted = None  # the base class's does nothing
        if not deaths and exhausted is None:
            return
        failed = _failed_job(failure) or job
        if failed is None:
            return
        if worker is not None and callable(exhausted):
            _call(_exhausted_caller(worker, failed), "retries_exhausted", jid, failed, error)
        for death in deaths:
            _call(death, "death handler", jid, failed, error)


def _failed_job(failure: FailureRecord) -> Job | None:
    try:
        return decode_job(failure.text)
    except Exception:
        return None


def _exhausted_caller(worker: type, job: Job) -> Callable[[Job, BaseException], object]:
    def call(failed: Job, error: BaseException) -> object:
        instance: Any = worker()
        instance.job = job
        return instance.retries_exhausted(failed, error)

    return call


def _call(handler: Callable[..., object], kind: str, jid: str | None, *args: Any) -> None:
    """Call ``handler(*args)`` within ``HANDLER_TIME_LIMIT``; log whatever it raises."""
    name = getattr(handler, "__qualname__", None) or repr(handler)
    try:
        with time_limit(HANDLER_TIME_LIMIT):
            handler(*args)
    except BaseException as exc:  # a handler never ends the worker, whatever it raises
        log.error(
            "%s %s failed for job %s (the job's outcome stands): %s: %s",
            kind,
            name,
            jid,
            type(exc).__name__,
            exc,
        )
