"""Rate and concurrency limits: the limiters a worker declares, and what a job over one
becomes.

Two kinds of named limiter, shared by every node on one Redis:

- ``Concurrent(name, limit, lease=None)``: at most ``limit`` jobs hold it at once. Each
  held slot is leased: it is freed when the job ends (success or failure), and if its
  node dies (or its worker is killed) it comes back once the lease runs out.
- ``Window(name, limit, per=1.0)``: at most ``limit`` jobs take it in any ``per``
  seconds (a sliding window: the times of the last takes are kept).

A worker declares the limiters its jobs take before ``perform`` runs
(``limits = (Concurrent("api", 3),)``), or takes them inside ``perform`` with
``limited(...)``. A job that finds one full raises ``OverLimitError``; the node puts it
back into ``schedule`` (``deferral``), due after a backoff with jitter, without
touching its retries, error fields, counters or error handlers.

Nothing here talks to Redis: the worker process installs a ``LimitGate``
(``verk_actors.store.limits``) with ``install_gate`` when it starts. A worker without
limiters never reaches the gate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import attrs

from verk_actors.errors import ConfigurationError, OverLimitError
from verk_actors.jobs.job import Job
from verk_actors.jobs.job_log import CURRENT_JOB

DEFAULT_LEASE = 300.0
"""Seconds a ``Concurrent`` slot is leased when neither the limiter nor the job's time
limit says: a job running longer than its lease loses its slot to others."""

LEASE_MARGIN = 5.0
"""Seconds added to a job's time limit (and its kill grace) for its slots' lease."""

DEFER_BASE = 0.5
"""Seconds before a deferred job's first try again; it doubles with each deferral."""

DEFER_MAX = 30.0
"""Most seconds of the backoff of a deferred job (before jitter)."""

DEFER_COUNT_FIELD = "limited"
"""Extra field of a deferred job: how many times a limiter has put it back."""


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ConfigurationError(f"a limiter's name must be a non-empty word, got {name!r}")
    return name


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(
            f"a limiter's limit must be an integer of 1 or more, got {limit!r}"
        )
    return limit


def _check_seconds(what: str, value: object, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
        raise ConfigurationError(f"a limiter's {what} must be seconds more than 0, got {value!r}")
    return float(value)


def _check_lease(value: object) -> float | None:
    return _check_seconds("lease", value, optional=True)


def _check_per(value: object) -> float:
    seconds = _check_seconds("per", value)
    assert seconds is not None
    return seconds


@attrs.frozen
class Concurrent:
    """At most ``limit`` jobs hold this limiter at once, across the cluster. A slot is
    held from before ``perform`` until it returns or raises; ``lease`` seconds bound it
    (default: the job's time limit plus its kill grace and 5 s, else 300 s), so a
    dead node's slots come back."""

    name: str = attrs.field(converter=_check_name)
    limit: int = attrs.field(converter=_check_limit)
    lease: float | None = attrs.field(default=None, converter=_check_lease)

    kind = "concurrent"


@attrs.frozen
class Window:
    """At most ``limit`` jobs take this limiter in any ``per`` seconds (sliding window),
    across the cluster: ``Window("mail", 10, per=60)`` is 10 a minute."""

    name: str = attrs.field(converter=_check_name)
    limit: int = attrs.field(converter=_check_limit)
    per: float = attrs.field(default=1.0, converter=_check_per)

    kind = "window"


Limiter = Concurrent | Window


class LimitGate(Protocol):
    """Takes and frees limiters in Redis (``verk_actors.store.limits.RedisLimitGate``)."""

    def acquire(self, limiter: Limiter, jid: str, lease: float) -> tuple[str | None, float]:
        """Take ``limiter`` for job ``jid``: ``(holder, 0)``, or ``(None, wait)`` when it
        is full (``wait``: seconds until it may have room, 0 if unknown)."""
        ...

    def release(self, limiter: Limiter, holder: str) -> None:
        """Give back what ``holder`` took: a ``Concurrent`` slot when its job ends, a
        ``Window`` take only when its job did not run after all."""
        ...


_gates: list[LimitGate] = []


def install_gate(gate: LimitGate) -> None:
    """Make ``gate`` the one jobs of this process take limiters through (a worker
    process calls it once when it starts)."""
    _gates[:] = [gate]


def lease_for(limiter: Limiter, time_limit: float | None) -> float:
    """The lease of a slot of ``limiter`` taken by a job with ``time_limit``."""
    if isinstance(limiter, Concurrent) and limiter.lease is not None:
        return limiter.lease
    if time_limit:
        return float(time_limit) + 2.0 + LEASE_MARGIN  # 2.0: the kill grace past the time limit
    return DEFAULT_LEASE


def declared_limits(worker: type) -> tuple[Limiter, ...]:
    """The limiters a worker class declares (its ``limits``), checked."""
    limits = getattr(worker, "limits", ())
    if not limits:
        return ()
    if isinstance(limits, Concurrent | Window):
        limits = (limits,)
    if not isinstance(limits, tuple | list) or not all(
        isinstance(limiter, Concurrent | Window) for limiter in limits
    ):
        raise ConfigurationError(
            f"{worker.__name__}.limits must hold Concurrent(...) and Window(...) limiters, "
            f"got {limits!r}"
        )
    return tuple(limits)


@contextmanager
def limited(*limiters: Limiter) -> Iterator[None]:
    """Hold ``limiters`` while the block runs, inside a job's ``perform``; raises
    ``OverLimitError`` if one is full (what it took is given back), which puts the job
    back into ``schedule`` to try again later, with no retry used."""
    job = CURRENT_JOB.get()
    if not _gates or job is None:
        raise ConfigurationError(
            "limited() works inside a job's perform on a node (no node runs this job)"
        )
    gate = _gates[0]
    lease_base = getattr(job, "limit", None)
    held: list[tuple[Limiter, str]] = []
    ran = False
    try:
        for limiter in limiters:
            holder, wait = gate.acquire(limiter, job.jid or "", lease_for(limiter, lease_base))
            if holder is None:
                raise OverLimitError(limiter.name, wait)
            held.append((limiter, holder))
        ran = True
        yield
    finally:
        for limiter, holder in reversed(held):
            # A window's take counts once the block ran; if a later limiter was full,
            # the block did not run and the take is given back too.
            if isinstance(limiter, Concurrent) or not ran:
                gate.release(limiter, holder)


def defer_delay(count: int, wait: float, rng: random.Random | None = None) -> float:
    """Seconds before a job put back by a limiter for the ``count``-th time (1 for the
    first) tries again: ``DEFER_BASE`` doubling with each deferral up to ``DEFER_MAX``,
    at least the limiter's own ``wait``, with up to 50 % jitter so waiting jobs spread."""
    base = min(DEFER_MAX, DEFER_BASE * float(2 ** min(max(count - 1, 0), 16)))
    return max(base, wait) * (1.0 + 0.5 * (rng or random).random())


def deferred_job(job: Job) -> tuple[Job, int]:
    """``job`` as it goes back to ``schedule``: its deferral count one more (its
    ``retry_count`` and error fields untouched); and that count."""
    previous = job.extra.get(DEFER_COUNT_FIELD)
    count = (previous if isinstance(previous, int) and not isinstance(previous, bool) else 0) + 1
    return attrs.evolve(job, extra={**job.extra, DEFER_COUNT_FIELD: count}), count
