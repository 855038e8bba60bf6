"""Worker process hooks: code a job module wants run once per worker process, not once
per job (an HTTP client's connection pool, a database engine), as Sidekiq's
``on(:startup)`` and Celery's ``worker_process_init`` are.

::

    from verk_actors import WorkerProcess, on_worker_start, on_worker_stop

    @on_worker_start
    async def open_http(process: WorkerProcess) -> None:
        global http
        http = httpx.AsyncClient()          # made on the loop the jobs run on

    @on_worker_stop
    async def close_http(process: WorkerProcess) -> None:
        await http.aclose()

A hook is registered when its module is imported, so put it in a module of the node's
``imports``. Each worker process runs every start hook after importing the modules and
before its first job, and every stop hook when it stops (node stop, recycling, a lazy
pool shrinking), each given a ``WorkerProcess`` (queue, mode, pid). A plain ``def``
hook runs in every worker process. An ``async def`` hook runs only in the processes of
queues in async mode, on the event loop their jobs run on (elsewhere nothing would
await what it makes); it may take ``HOOK_TIMEOUT`` seconds.

A start hook that raises stops that worker from starting, as a module that does not
import does: the error is logged and the queue's slot stays empty. A stop hook that
raises or runs too long is logged; the others still run and the process still stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

log = logging.getLogger(__name__)

HOOK_TIMEOUT = 10.0
"""Seconds an ``async def`` hook may take on the worker's event loop."""


@attrs.frozen
class WorkerProcess:
    """What a hook is told of the worker process it runs in."""

    queue: str
    mode: str
    """``process``, ``threads`` or ``async``."""
    pid: int


Hook = Callable[[WorkerProcess], None] | Callable[[WorkerProcess], Awaitable[None]]
H = TypeVar("H", bound=Hook)

_start: list[Hook] = []
_stop: list[Hook] = []


def on_worker_start(hook: H) -> H:
    """Register ``hook`` to run once in each worker process before its first job."""
    if hook not in _start:
        _start.append(hook)
    return hook


def on_worker_stop(hook: H) -> H:
    """Register ``hook`` to run once in each worker process as it stops."""
    if hook not in _stop:
        _stop.append(hook)
    return hook


def _runs_here(hook: Hook, loop: asyncio.AbstractEventLoop | None) -> bool:
    return loop is not None or not inspect.iscoroutinefunction(hook)


def _call(hook: Hook, process: WorkerProcess, loop: asyncio.AbstractEventLoop | None) -> None:
    result = hook(process)
    if inspect.isawaitable(result):
        if loop is None:  # a plain def that returned an awaitable: nothing runs it
            raise TypeError(f"worker hook {hook!r} returned an awaitable outside async mode")
        future = asyncio.run_coroutine_threadsafe(_awaited(result), loop)
        try:
            future.result(HOOK_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"worker hook {_name(hook)} took over {HOOK_TIMEOUT:g} s; it was cancelled"
            ) from None


async def _awaited(result: Awaitable[None]) -> None:
    await result


def run_start_hooks(process: WorkerProcess, loop: asyncio.AbstractEventLoop | None) -> None:
    """Run the start hooks for ``process`` (``loop``: the event loop of an async
    queue's process, running in another thread; None elsewhere). What a hook raises
    goes to the caller: the worker does not start."""
    for hook in list(_start):
        if _runs_here(hook, loop):
            _call(hook, process, loop)


def run_stop_hooks(process: WorkerProcess, loop: asyncio.AbstractEventLoop | None) -> None:
    """Run the stop hooks for ``process``; one that fails is logged, the rest run."""
    for hook in list(_stop):
        if not _runs_here(hook, loop):
            continue
        try:
            _call(hook, process, loop)
        except Exception:
            log.exception("worker stop hook %s failed in queue %s", _name(hook), process.queue)


def _name(hook: Hook) -> str:
    return f"{getattr(hook, '__module__', '?')}.{getattr(hook, '__qualname__', repr(hook))}"
