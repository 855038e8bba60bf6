"""Running one job inside a worker process, and describing how it ended.

Pure of actors: the Worker actor calls ``execute`` for each job of a batch; the
WorkersManager calls ``died_failure`` for a job whose worker process died.
"""

from __future__ import annotations

import inspect
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from types import FrameType
from typing import Any, Protocol

import attrs

from verk_actors.errors import (
    AsyncWorkerError,
    JobTimeoutError,
    MalformedJobError,
    OverLimitError,
    UnknownWorkerError,
)
from verk_actors.jobs.chain import Middleware, invoke
from verk_actors.jobs.job import Job, decode_job, peek_ids
from verk_actors.jobs.job_log import CURRENT_JOB, job_ended, job_started
from verk_actors.jobs.limits import Limiter, declared_limits, defer_delay, deferred_job, limited
from verk_actors.jobs.registry import WorkerRegistry, async_perform_refusal
from verk_actors.jobs.retry import FailureRecord, Fate, build_failure, bury_malformed

HARD_KILL_GRACE = 2.0
"""Seconds past a job's time limit before its worker process is killed."""


class RunPolicy(Protocol):
    """What running a job needs of a node's settings (``Settings`` is one)."""

    @property
    def job_timeout(self) -> float | None: ...

    @property
    def max_retries(self) -> int: ...

    @property
    def backtrace_lines(self) -> int: ...

    @property
    def job_logs(self) -> bool: ...


@attrs.frozen
class JobOutcome:
    """How one job ended; ``failure`` is None when it succeeded."""

    ref: int
    jid: str | None
    class_name: str | None
    duration: float
    failure: FailureRecord | None = None
    error_class: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        """True when the job succeeded."""
        return self.failure is None

    def __deepcopy__(self, memo: dict[int, Any]) -> JobOutcome:
        return self  # immutable: Thespian's deep copy of messages need not copy it


def backtrace_lines(exc: BaseException, limit: int) -> list[str]:
    """The innermost ``limit`` frames of ``exc``'s traceback, one string each."""
    frames = traceback.format_tb(exc.__traceback__)
    return [frame.rstrip("\n") for frame in frames[-limit:]] if limit > 0 else []


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise JobTimeoutError in this (main) thread after ``seconds`` (in another thread:
    nothing, the caller watches the time, see ``running_lanes``)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise JobTimeoutError(f"job timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def job_time_limit(job: Job, worker: type, settings: RunPolicy) -> float | None:
    """A job's time limit: its own ``timeout`` field, else its worker's, else the node's."""
    own = job.extra.get("timeout")
    if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
        return float(own)
    limit = getattr(worker, "timeout", None)
    if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
        return float(limit)
    return settings.job_timeout


class PreparedJob:
    """A decoded job and its worker class, ready to run; or the reason it cannot run."""

    def __init__(self, text: bytes, registry: WorkerRegistry, settings: RunPolicy, queue: str):
        self.text = text
        self.queue = queue
        self.job: Job | None = None
        self.worker: type | None = None
        self.refusal: tuple[str, str, FailureRecord] | None = None
        self.limit: float | None = None
        self.limits: tuple[Limiter, ...] = ()
        """The limiters the worker class declares (taken before ``perform``)."""
        self.peeked: tuple[str | None, str | None] = (None, None)
        """``jid`` and ``class`` as far as they can be read from a malformed text."""
        self.error: BaseException | None = None
        """What the failed try raised (or why it could not run), for the error handlers."""
        try:
            self.job = decode_job(text)
        except MalformedJobError as exc:
            self.error = exc
            self.peeked = peek_ids(text)
            self.refusal = (
                "MalformedJobError",
                str(exc),
                bury_malformed(text, reason=str(exc), queue=queue, now=time.time()),
            )
            return
        try:
            self.worker = registry.lookup(self.job.class_name)
        except UnknownWorkerError as exc:
            self.error = exc
            self.refusal = (
                "UnknownWorkerError",
                str(exc),
                build_failure(
                    self.job,
                    error_class="UnknownWorkerError",
                    error_message=str(exc),
                    backtrace=(),
                    now=time.time(),
                    default_max_retries=settings.max_retries,
                    queue=queue,
                ),
            )
            return
        self.limit = job_time_limit(self.job, self.worker, settings)
        if getattr(self.worker, "limits", None):
            self.limits = declared_limits(self.worker)

    @property
    def jid(self) -> str | None:
        """The job's jid, also read from a malformed job's text when it can be."""
        return self.job.jid if self.job is not None else self.peeked[0]

    @property
    def class_name(self) -> str | None:
        """The job's class, also read from a malformed job's text when it can be."""
        return self.job.class_name if self.job is not None else self.peeked[1]

    def deadline(self, started: float) -> float:
        """When (monotonic) the manager kills the worker if this job still runs; 0 = never."""
        return started + self.limit + HARD_KILL_GRACE if self.limit else 0.0


def run_prepared(prepared: PreparedJob, ref: int, settings: RunPolicy) -> JobOutcome:
    """Run a prepared job; every exception it raises becomes a failure outcome."""
    started = time.monotonic()
    failure = execute(prepared, ref, settings)
    if failure is not None:
        return failure
    job = prepared.job
    assert job is not None
    return JobOutcome(ref, job.jid, job.class_name, time.monotonic() - started)


def execute(
    prepared: PreparedJob,
    ref: int,
    settings: RunPolicy,
    middleware: tuple[Middleware, ...] | None = None,
) -> JobOutcome | None:
    """Run a prepared job: None when it succeeded, else the failure outcome.

    The hot path of a worker: a success creates nothing. While it runs, the job is
    ``CURRENT_JOB`` (records logged then carry its jid); with ``job_logs`` on, its start
    and end are logged. ``middleware`` (server middleware, None for none) wraps
    ``perform``: what it raises fails the try as ``perform`` raising would.
    """
    token = CURRENT_JOB.set(prepared)
    try:
        if not settings.job_logs:
            return _execute(prepared, ref, settings, middleware)
        job_started()
        began = time.monotonic()
        failure = _execute(prepared, ref, settings, middleware)
        log_job_end(began, failure)
        return failure
    finally:
        CURRENT_JOB.reset(token)


def log_job_end(began: float, failure: JobOutcome | None) -> None:
    """The job log's end line of a job that began at ``began`` (``time.monotonic()``)."""
    if failure is None:
        job_ended(time.monotonic() - began, "done")
        return
    assert failure.failure is not None
    job_ended(
        failure.duration,
        failure.failure.fate.value,
        f"{failure.error_class}: {failure.error_message}",
    )


def _execute(
    prepared: PreparedJob,
    ref: int,
    settings: RunPolicy,
    middleware: tuple[Middleware, ...] | None,
) -> JobOutcome | None:
    job = prepared.job
    worker = prepared.worker
    if prepared.refusal is not None or job is None or worker is None:
        return refused(prepared, ref)
    started = time.monotonic()
    instance: Any = worker()
    instance.job = job
    try:
        if middleware is not None:
            # The limiters first: the middleware sees only the tries that run.
            limits = limited(*prepared.limits) if prepared.limits else nullcontext()
            with limits, time_limit(prepared.limit):
                _perform_within(middleware, instance, worker, job, prepared.queue)
        else:
            if prepared.limits:
                with limited(*prepared.limits), time_limit(prepared.limit):
                    result = instance.perform(*job.args)
            elif prepared.limit:
                with time_limit(prepared.limit):
                    result = instance.perform(*job.args)
            else:
                result = instance.perform(*job.args)
            if result is not None and inspect.isawaitable(result):
                refuse_awaitable(worker, result)
    except OverLimitError as exc:
        return deferral(ref, job, exc, time.monotonic() - started)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        return failed(prepared, ref, settings, instance, exc, started=started)
    return None


def refused(prepared: PreparedJob, ref: int) -> JobOutcome:
    """The outcome of a job that cannot run (malformed, or no worker of its class)."""
    assert prepared.refusal is not None
    error_class, message, failure = prepared.refusal
    return JobOutcome(
        ref=ref,
        jid=prepared.jid,
        class_name=prepared.class_name,
        duration=0.0,
        failure=failure,
        error_class=error_class,
        error_message=message,
    )


def failed(
    prepared: PreparedJob,
    ref: int,
    settings: RunPolicy,
    instance: Any,
    exc: BaseException,
    *,
    started: float,
) -> JobOutcome:
    """The outcome of a job whose ``perform`` raised ``exc``."""
    job, worker = prepared.job, prepared.worker
    assert job is not None
    duration = time.monotonic() - started
    prepared.error = exc
    delay = _delay_override(instance, job, exc)
    message = str(exc) or type(exc).__name__
    return JobOutcome(
        ref=ref,
        jid=job.jid,
        class_name=job.class_name,
        duration=duration,
        failure=build_failure(
            job,
            error_class=type(exc).__name__,
            error_message=message,
            backtrace=backtrace_lines(exc, settings.backtrace_lines),
            now=time.time(),
            default_max_retries=settings.max_retries,
            worker_retry=getattr(worker, "retry", None),
            queue=prepared.queue,
            delay_override=delay,
        ),
        error_class=type(exc).__name__,
        error_message=message,
    )


def deferral(ref: int, job: Job, exc: OverLimitError, duration: float) -> JobOutcome:
    """The outcome of a job a full limiter stopped: back into ``schedule`` after a
    backoff, its retries and error fields untouched (no error handler hears of it)."""
    deferred, count = deferred_job(job)
    return JobOutcome(
        ref=ref,
        jid=job.jid,
        class_name=job.class_name,
        duration=duration,
        failure=FailureRecord(
            Fate.DEFER, time.time() + defer_delay(count, exc.wait), deferred.to_json()
        ),
        error_class="OverLimitError",
        error_message=str(exc),
    )


def _perform_within(
    middleware: tuple[Middleware, ...], instance: Any, worker: type, job: Job, queue: str
) -> None:
    """Call ``perform`` inside the server middleware chain."""

    def perform() -> Any:
        result = instance.perform(*job.args)
        if result is not None and inspect.isawaitable(result):
            refuse_awaitable(worker, result)
        return result

    invoke(middleware, instance, job.to_dict(), queue, perform)


def refuse_awaitable(worker: type, result: Any) -> None:
    """Fail a job whose ``perform`` returned an awaitable: it never ran (it is not awaited)."""
    close = getattr(result, "close", None)
    if callable(close):
        close()  # no "coroutine was never awaited" warning: this error says it
    raise AsyncWorkerError(
        f"perform returned {type(result).__name__}, which was not awaited: "
        + async_perform_refusal(worker)
    )


def _delay_override(instance: Any, job: Job, exc: BaseException) -> float | None:
    hook = getattr(instance, "retry_in", None)
    if not callable(hook):
        return None
    try:
        value = hook((job.retry_count or 0) + 1, exc)
    except Exception:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def died_failure(
    text: bytes,
    *,
    reason: str,
    error_class: str,
    queue: str,
    settings: RunPolicy,
    worker_retries: Mapping[str, object] | None = None,
) -> FailureRecord:
    """The failure record of a job whose worker died while (or after) running it.

    ``worker_retries`` holds the ``retry`` option of each worker class by name (the
    workers report them, see ``WorkerRegistry.retry_options``)."""
    now = time.time()
    try:
        job = decode_job(text)
    except MalformedJobError as exc:
        return bury_malformed(text, reason=str(exc), queue=queue, now=now)
    return build_failure(
        job,
        error_class=error_class,
        error_message=reason,
        backtrace=(),
        now=now,
        default_max_retries=settings.max_retries,
        worker_retry=(worker_retries or {}).get(job.class_name),
        queue=queue,
    )
