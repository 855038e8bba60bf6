"""Running a job off a worker process's main thread: in a thread, or as a coroutine.

A queue in threads mode runs each job in a thread of its worker process; one in async
mode awaits ``async def perform`` on the process's event loop and runs a plain
``def perform`` in a thread of that process (so one queue may hold both kinds).

Time limits: a coroutine is cancelled at its limit (``asyncio.timeout``) and fails
with JobTimeoutError; the other jobs of its loop go on. A thread cannot be stopped
from outside: at its limit the ``Watchdog`` raises JobTimeoutError inside it, which
takes effect at its next Python instruction. A thread stuck in C code (a long
``time.sleep``, a blocking read) does not see it; its worker process is then
recycled by the WorkersManager (the job's deadline on its progress board passed).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from verk_actors import errors
from verk_actors.jobs.chain import Middleware
from verk_actors.jobs.job_log import CURRENT_JOB, job_started
from verk_actors.jobs.limits import limited
from verk_actors.jobs.registry import is_async_worker
from verk_actors.jobs.running import (
    JobOutcome,
    PreparedJob,
    RunPolicy,
    deferral,
    execute,
    failed,
    log_job_end,
    refused,
)

WATCH_EVERY = 0.05
"""Seconds between the watchdog's looks at the threads' deadlines."""


class JobTimeoutError(errors.JobTimeoutError):
    """Raised inside a thread whose job ran past its time limit (no arguments can be
    passed that way, hence the default text)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("job timed out: it ran past its time limit",)))


class Watchdog:
    """Raises JobTimeoutError in each thread whose job runs past its deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[int, float] = {}
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float) -> None:
        """The calling thread's job must end by ``deadline`` (monotonic)."""
        with self._lock:
            self._due[threading.get_ident()] = deadline
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="verk-watchdog", daemon=True
                )
                self._thread.start()

    def disarm(self) -> None:
        """The calling thread's job ended."""
        with self._lock:
            self._due.pop(threading.get_ident(), None)

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_EVERY)
            now = time.monotonic()
            with self._lock:
                for ident, deadline in list(self._due.items()):
                    if now >= deadline:
                        del self._due[ident]
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(ident), ctypes.py_object(JobTimeoutError)
                        )


def run_in_thread(
    prepared: PreparedJob,
    ref: int,
    settings: RunPolicy,
    watchdog: Watchdog,
    middleware: tuple[Middleware, ...] | None = None,
) -> JobOutcome | None:
    """Run a prepared job in this (not main) thread, under ``watchdog`` if it has a
    time limit, within the server ``middleware`` and its limiters, as ``execute`` does:
    None when it succeeded, else the failure outcome."""
    limit = prepared.limit
    started = time.monotonic()
    outcome: JobOutcome | None = None
    ended = False
    try:
        if limit:
            watchdog.arm(started + limit)
        try:
            outcome = execute(prepared, ref, settings, middleware)
            ended = True
        finally:
            if limit:
                watchdog.disarm()
    except JobTimeoutError as exc:
        # Raised just outside the job's own try: the job ended as it ended, or it
        # timed out before it began.
        if not ended:
            outcome = failed(prepared, ref, settings, None, exc, started=started)
    return outcome


@functools.cache
def is_async(worker: type | None) -> bool:
    """Whether ``worker``'s ``perform`` is ``async def`` (once per class)."""
    return worker is not None and is_async_worker(worker)


async def execute_async(
    prepared: PreparedJob,
    ref: int,
    settings: RunPolicy,
    in_thread: Callable[[PreparedJob, int], Awaitable[JobOutcome | None]],
) -> JobOutcome | None:
    """Run a prepared job on this event loop (``async def perform``; a plain one goes
    to ``in_thread``): None when it succeeded, else the failure outcome."""
    if prepared.refusal is not None or prepared.job is None or prepared.worker is None:
        return refused(prepared, ref)
    if not is_async(prepared.worker):
        return await in_thread(prepared, ref)
    token = CURRENT_JOB.set(prepared)
    try:
        if not settings.job_logs:
            return await _perform(prepared, ref, settings)
        job_started()
        began = time.monotonic()
        failure = await _perform(prepared, ref, settings)
        log_job_end(began, failure)
        return failure
    finally:
        CURRENT_JOB.reset(token)


async def _perform(prepared: PreparedJob, ref: int, settings: RunPolicy) -> JobOutcome | None:
    """Await the job's perform within its limiters (taken and given back in a thread:
    each is a Redis call, which must not stall the loop's other jobs)."""
    job = prepared.job
    assert job is not None
    if not prepared.limits:
        return await _perform_now(prepared, ref, settings)
    started = time.monotonic()
    held = limited(*prepared.limits)
    try:
        await asyncio.to_thread(held.__enter__)
    except errors.OverLimitError as exc:
        return deferral(ref, job, exc, time.monotonic() - started)
    try:
        return await _perform_now(prepared, ref, settings)
    finally:
        await asyncio.to_thread(held.__exit__, None, None, None)


async def _perform_now(prepared: PreparedJob, ref: int, settings: RunPolicy) -> JobOutcome | None:
    job, worker, limit = prepared.job, prepared.worker, prepared.limit
    assert job is not None and worker is not None
    started = time.monotonic()
    instance: Any = worker()
    instance.job = job
    try:
        if not limit:
            await instance.perform(*job.args)
            return None
        timeout = asyncio.timeout(limit)
        try:
            async with timeout:
                await instance.perform(*job.args)
        except TimeoutError:
            if not timeout.expired():
                raise  # the job's own TimeoutError
            raise errors.JobTimeoutError(f"job timed out after {limit:g} s") from None
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        return failed(prepared, ref, settings, instance, exc, started=started)
    return None
