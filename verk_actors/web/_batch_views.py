"""The data of the Batches pages (list and one batch), as JSON-ready dicts.

Read through the operations API (``store/batches``), as ``verk-actors batches`` does.
Descriptions and jids are untrusted: returned as data, escaped by the templates.
"""

from __future__ import annotations

from typing import Any

from verk_actors.jobs.batch import BatchStatus
from verk_actors.store.batches import batch_jids, batch_status, list_batches
from verk_actors.store.connection import Connection

LIST_LIMIT = 100
"""Newest batches listed."""

JIDS_LIMIT = 100
"""Pending and failing jids shown on a batch's page (a sample when there are more)."""


def state(status: BatchStatus) -> str:
    """``succeeded``, ``complete`` (every job ran, some failed) or ``running``."""
    if status.succeeded:
        return "succeeded"
    return "complete" if status.complete else "running"


def _row(status: BatchStatus) -> dict[str, Any]:
    done = status.total - status.pending
    return {
        **status.to_dict(),
        "state": state(status),
        "done": done,
        "percent": round(100 * done / status.total) if status.total else 100,
    }


def batches(client: Connection) -> dict[str, Any]:
    """The newest batches still kept, newest first."""
    return {"batches": [_row(status) for status in list_batches(client, LIST_LIMIT)]}


def batch(client: Connection, bid: str) -> dict[str, Any]:
    """One batch: its status and a sample of its pending and failing jids
    (NotFoundError when it never existed or expired)."""
    status = batch_status(client, bid)
    return {"batch": _row(status), **batch_jids(client, bid, JIDS_LIMIT)}
