"""How a queue runs its jobs: one per worker process, or many per process.

``process`` (the default) gives every job in flight a process of its own: right for
jobs that keep a CPU busy. ``threads`` runs up to ``per_process`` jobs at once in each
worker process, one thread each: for plain ``def perform`` jobs that mostly wait
(HTTP, SMTP, a database). ``async`` runs up to ``per_process`` jobs at once in each
worker process as coroutines on one event loop: for ``async def perform`` jobs (a
plain ``def perform`` job on an async queue runs in a thread of that process).

Written on a queue spec after its concurrency: ``crawl=500:async:100`` (500 jobs in
flight, 5 processes of 100 coroutines), ``mail=20:threads`` (the default per process).
"""

from __future__ import annotations

from typing import Any

from verk_actors.errors import ConfigurationError, InvalidJobError
from verk_actors.jobs.job import check_queue_name

PROCESS = "process"
THREADS = "threads"
ASYNC = "async"
MODES = (PROCESS, THREADS, ASYNC)

DEFAULT_PER_PROCESS = {PROCESS: 1, THREADS: 10, ASYNC: 100}
"""Jobs at once in one worker process when the spec does not say (at most the
queue's concurrency)."""

MAX_PER_PROCESS = 1000
"""The most jobs one worker process runs at once."""

HOW = "write NAME=CONCURRENCY:MODE[:PER_PROCESS], e.g. crawl=500:async:100 or mail=20:threads:10"


def spec_name(_inst: object, _attr: object, value: Any) -> None:
    try:
        check_queue_name(value)
    except InvalidJobError as exc:
        raise ConfigurationError(str(exc)) from None


def spec_concurrency(inst: Any, _attr: object, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"queue {inst.name!r}: concurrency must be a whole number of at least 1, got {value!r}"
        )


def spec_text(spec: Any) -> str:
    """A queue spec as ``--queue`` reads it."""
    if spec.mode == PROCESS:
        return f"{spec.name}={spec.concurrency}"
    return f"{spec.name}={spec.concurrency}:{spec.mode}:{spec.per_process}"


def default_per_process(mode: Any, concurrency: Any) -> int:
    """Jobs at once per process for ``mode`` when none is given."""
    default = DEFAULT_PER_PROCESS.get(mode, 1) if isinstance(mode, str) else 1
    if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1:
        return min(default, concurrency)
    return default


def check_mode(inst: Any, _attr: object, value: Any) -> None:
    """A queue's mode is one of ``MODES``."""
    if value not in MODES:
        raise ConfigurationError(
            f"queue {inst.name!r}: mode {value!r} is not one of {', '.join(MODES)}; {HOW}"
        )


def check_per_process(inst: Any, _attr: object, value: Any) -> None:
    """Jobs per process: 1 in process mode, else 1 up to the concurrency (and
    ``MAX_PER_PROCESS``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"queue {inst.name!r}: jobs per process must be a whole number of at least 1, "
            f"got {value!r}"
        )
    if inst.mode == PROCESS and value != 1:
        raise ConfigurationError(
            f"queue {inst.name!r}: process mode runs one job per process, got {value}; "
            "choose threads or async to run several (" + HOW + ")"
        )
    if value > min(inst.concurrency, MAX_PER_PROCESS):
        raise ConfigurationError(
            f"queue {inst.name!r}: {value} jobs per process is more than "
            + (
                f"the queue's concurrency ({inst.concurrency}); lower it or raise the concurrency"
                if value > inst.concurrency
                else f"{MAX_PER_PROCESS}, the most one process runs; use more processes"
            )
        )


def split_mode(spec: str, text: str) -> tuple[str, int | None]:
    """Read ``MODE`` or ``MODE:PER_PROCESS`` (what follows the concurrency in ``spec``)."""
    mode, sep, count = text.partition(":")
    if not sep:
        return mode.strip(), None
    try:
        return mode.strip(), int(count)
    except ValueError:
        raise ConfigurationError(
            f"queue spec {spec!r}: jobs per process {count!r} is not a whole number; {HOW}"
        ) from None


def runs_async(queues: Any) -> bool:
    """Whether one of ``queues`` (QueueSpecs) runs in async mode: then the node's worker
    modules may define ``async def perform`` workers."""
    return any(spec.mode == ASYNC for spec in queues)
