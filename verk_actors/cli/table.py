"""Plain-text tables and the small formats (times, ages, args) the subcommands print."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

MISSING = "-"
WIDE = 60


def cell(value: Any) -> str:
    """A value as table text: None is ``-``."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned table; columns whose every value is a number are right-aligned."""
    texts = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in texts:
        widths = [max(w, len(t)) for w, t in zip(widths, row, strict=True)]
    right = [
        bool(rows) and all(_numeric(row[i]) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in texts)])


def clip(text: str, width: int = WIDE) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def args_text(args: Any, width: int = WIDE) -> str:
    """Job args as compact JSON, cut to ``width``."""
    return clip(json.dumps(args, ensure_ascii=False, default=str), width)


def utc(ts: Any) -> str:
    """Unix seconds as ``yyyy-mm-dd HH:MM:SS`` UTC; ``-`` if not a time."""
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return MISSING
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return MISSING


def duration(seconds: float) -> str:
    """A short duration: ``0.4s``, ``12s``, ``4m05s``, ``2h03m``, ``3d04h``."""
    s = abs(seconds)
    if s < 10:
        return f"{s:.1f}s"
    whole = int(s)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86_400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d{whole % 86_400 // 3600:02d}h"


def relative(ts: Any, now: float) -> str:
    """``in 4m05s`` or ``4m05s ago``; ``-`` if not a time."""
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return MISSING
    delta = float(ts) - now
    return f"in {duration(delta)}" if delta > 0 else f"{duration(delta)} ago"


def when(ts: Any, now: float) -> str:
    """Absolute UTC time and how far it is from now."""
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return MISSING
    return f"{utc(ts)} ({relative(ts, now)})"
