"""The checks every enqueue verb makes of what it was given, before a job is built:
its options, its worker, and its run time or delay. Pure: the ``Client`` calls them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from verk_actors.errors import InvalidJobError

OPTIONS = ("queue", "retry", "jid", "extra", "unique_for", "unique_until")
"""The keyword options of the enqueue verbs; a job's own arguments are positional."""


def check_options(verb: str, options: Mapping[str, Any]) -> None:
    """Refuse keywords that are not options: Sidekiq jobs have positional args only."""
    unknown = [name for name in options if name not in OPTIONS]
    if unknown:
        given = ", ".join(f"{name}=" for name in unknown)
        raise InvalidJobError(
            f"{verb}() got {given}: Sidekiq jobs take positional JSON args only, so pass "
            f"them in order ({verb}(HardWorker, 'a', 1)); its keyword options are "
            f"{', '.join(OPTIONS)}"
        )


def check_worker(verb: str, worker: Any) -> None:
    """Refuse a worker that is neither a class with ``perform`` nor a class name."""
    if isinstance(worker, str):
        return
    if not isinstance(worker, type) or not callable(getattr(worker, "perform", None)):
        shown = worker.__name__ if isinstance(worker, type) else repr(worker)
        raise InvalidJobError(
            f"{verb}(): {shown} is not a worker: pass a Worker subclass (a class with a "
            "perform method) or a worker's class name such as 'HardWorker'"
        )


def to_timestamp(when: datetime | float | int) -> float:
    """Unix seconds from a datetime (naive = local time) or a number."""
    if isinstance(when, datetime):
        return when.timestamp()
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise InvalidJobError(f"a run time must be a datetime or unix seconds, got {when!r}")
    return float(when)


def to_seconds(delay: timedelta | float | int) -> float:
    """Seconds from a timedelta or a number."""
    if isinstance(delay, timedelta):
        return delay.total_seconds()
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise InvalidJobError(f"a delay must be a timedelta or seconds, got {delay!r}")
    return float(delay)
