"""Reading the job metrics history (written by the nodes, ``store/metrics_history.py``):
per worker class over a window, and one class period by period.

A window is the last hour (its 60 minute hashes), the last 24 hours or the last 7 days
(their hour hashes, the current hour included): one pipelined round trip, at most 168
hashes whose size is bounded by the classes that ran.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from verk_actors.errors import ConfigurationError
from verk_actors.store import keys
from verk_actors.store.connection import Connection
from verk_actors.store.metrics_history import (
    BUCKETS,
    EXECUTIONS,
    FAILURES,
    MICROS,
    SLOTS,
    class_fields,
    hour_of,
    minute_of,
)

WINDOWS = {"1h": (60, 60), "24h": (24, 3600), "7d": (168, 3600)}
"""Window name -> (periods, seconds a period): minutes for the hour, hours beyond."""

DEFAULT_WINDOW = "1h"

_SUFFIX = {EXECUTIONS: 0, FAILURES: 1, MICROS: 2}


@attrs.frozen
class ClassFigures:
    """One class's figures over a period or a window (``us``: total run time, µs)."""

    name: str
    executions: int = 0
    failures: int = 0
    us: int = 0
    buckets: tuple[int, ...] = (0,) * (len(BUCKETS) + 1)

    @classmethod
    def of(cls, name: str, row: list[int]) -> ClassFigures:
        return cls(name, row[0], row[1], row[2], tuple(row[3:]))

    @property
    def timed(self) -> int:
        """Executions whose run time is known (in the histogram)."""
        return sum(self.buckets)

    @property
    def total_ms(self) -> float:
        return self.us / 1000

    @property
    def average_ms(self) -> float | None:
        """The mean run time of the jobs whose run time is known."""
        return self.us / 1000 / self.timed if self.timed else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.name,
            "executions": self.executions,
            "failures": self.failures,
            "total_ms": self.total_ms,
            "average_ms": self.average_ms,
            "histogram": list(self.buckets),
        }


def bucket_labels() -> list[str]:
    """The histogram's buckets as ``≤ 5 ms`` ... ``> 300 s``."""

    def show(seconds: float) -> str:
        return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"

    return [f"≤ {show(b)}" for b in BUCKETS] + [f"> {show(BUCKETS[-1])}"]


def check_window(window: str) -> tuple[int, int]:
    """The periods and period length of ``window``; ConfigurationError if it is not one."""
    if window not in WINDOWS:
        raise ConfigurationError(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
    return WINDOWS[window]


def periods(window: str, now: float | None = None) -> list[tuple[float, str]]:
    """``(start, key)`` of each period of ``window``, oldest first."""
    count, length = check_window(window)
    now = time.time() if now is None else now
    last = now - now % length
    starts = [last - length * i for i in range(count - 1, -1, -1)]
    if length == 60:
        return [(s, keys.metrics_minute_key(minute_of(s))) for s in starts]
    return [(s, keys.metrics_hour_key(hour_of(s))) for s in starts]


def _int(value: bytes | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _field(field: bytes) -> tuple[str, int] | None:
    """The class and slot a hash field holds (None: not one of ours)."""
    name, _, what = field.decode("utf-8", errors="replace").rpartition("|")
    slot = _SUFFIX.get(what)
    if slot is None and what.startswith("b") and what[1:].isdigit():
        slot = 3 + int(what[1:])
    return (name, slot) if name and slot is not None and slot < SLOTS else None


def _parse(
    raw: dict[bytes, bytes],
    into: dict[str, list[int]],
    seen: dict[bytes, tuple[list[int], int] | None],
) -> None:
    """Add a period's hash to the sums ``into``; ``seen`` keeps each field's meaning
    (the same fields come back in every period)."""
    for field, value in raw.items():
        if field in seen:
            where = seen[field]
        else:
            parsed = _field(field)
            where = seen[field] = (
                None if parsed is None else (into.setdefault(parsed[0], [0] * SLOTS), parsed[1])
            )
        if where is not None:
            where[0][where[1]] += _int(value)


def class_totals(
    client: Connection, window: str = DEFAULT_WINDOW, now: float | None = None
) -> list[ClassFigures]:
    """Every class that ran in ``window``, the most total run time first."""
    pipe = client.pipeline(transaction=False)
    for _, key in periods(window, now):
        pipe.hgetall(key)
    sums: dict[str, list[int]] = {}
    seen: dict[bytes, tuple[list[int], int] | None] = {}
    for raw in pipe.execute():
        _parse(raw, sums, seen)
    found = [ClassFigures.of(name, row) for name, row in sums.items()]
    return sorted(found, key=lambda c: (-c.us, -c.executions, c.name))


def class_periods(
    client: Connection, name: str, window: str = DEFAULT_WINDOW, now: float | None = None
) -> tuple[ClassFigures, list[tuple[float, ClassFigures]]]:
    """One class over ``window``: its totals, and its figures period by period (oldest
    first, periods where it did not run included as zeros)."""
    fields = class_fields(name)
    pipe = client.pipeline(transaction=False)
    spans = periods(window, now)
    for _, key in spans:
        pipe.hmget(key, fields)
    total = [0] * SLOTS
    rows = []
    for (start, _), values in zip(spans, pipe.execute(), strict=True):
        row = [_int(v) for v in values]
        total = [a + b for a, b in zip(total, row, strict=True)]
        rows.append((start, ClassFigures.of(name, row)))
    return ClassFigures.of(name, total), rows
