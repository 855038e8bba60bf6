"""The data of the Metrics pages (every worker class over a window; one class), read from
the job metrics history the nodes write (``store/admin/job_metrics.py``).

Class names come from the jobs: they are returned as data and escaped by the templates.
"""

from __future__ import annotations

import time
from typing import Any

from verk_actors.store.admin.job_metrics import (
    DEFAULT_WINDOW,
    WINDOWS,
    bucket_labels,
    check_window,
    class_periods,
    class_totals,
)
from verk_actors.store.connection import Connection


def window_of(value: str | None) -> str:
    """The window a query asks for (``1h``, ``24h``, ``7d``; the hour by default)."""
    window = value or DEFAULT_WINDOW
    check_window(window)  # a ConfigurationError (400) names the windows
    return window


def metrics(client: Connection, window: str) -> dict[str, Any]:
    """Every class that ran in ``window``: executions, failures, total and average time."""
    now = time.time()
    classes = [c.to_dict() for c in class_totals(client, window, now)]
    return {
        "at": now,
        "window": window,
        "windows": list(WINDOWS),
        "totals": {
            "executions": sum(c["executions"] for c in classes),
            "failures": sum(c["failures"] for c in classes),
            "total_ms": sum(c["total_ms"] for c in classes),
        },
        "classes": classes,
    }


def metrics_class(client: Connection, name: str, window: str) -> dict[str, Any]:
    """One class over ``window``: its totals, its run time histogram, and its figures
    minute by minute (the hour) or hour by hour (longer windows), oldest first."""
    now = time.time()
    total, rows = class_periods(client, name, window, now)
    return {
        "at": now,
        "window": window,
        "windows": list(WINDOWS),
        "class": name,
        "period_seconds": WINDOWS[window][1],
        "totals": total.to_dict(),
        "buckets": bucket_labels(),
        "periods": [
            {
                "start": start,
                "executions": figures.executions,
                "failures": figures.failures,
                "total_ms": figures.total_ms,
                "average_ms": figures.average_ms,
            }
            for start, figures in rows
        ],
    }
