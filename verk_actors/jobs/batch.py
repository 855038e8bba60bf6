"""Batches: a group of jobs with callbacks when all of them have run, as Sidekiq Pro's.

A batch's jobs carry its id as an extra ``bid`` field (Sidekiq ignores it); the node
that acks or fails such a job tells the batch, in the same Redis write. When every job
has run (those that failed at least once count as run) the ``complete`` callback is
enqueued; when every job has succeeded, the ``success`` callback. Each callback is a
job of a worker class, enqueued exactly once, whose ``perform(status, options)`` gets
``{"bid": ..., "event": "complete" | "success", "description": ...}`` and the options
given with it.

Nothing here talks to Redis: ``verk_actors.store.batches`` writes batches and reads
their status, ``verk_actors.store.queue_store`` reports their jobs' outcomes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from verk_actors.errors import InvalidJobError, MalformedJobError
from verk_actors.jobs.job import decode_job, dumps, new_job
from verk_actors.jobs.worker import worker_name

BID_FIELD = "bid"
MARK = b'"bid"'
"""What a job text holds when it belongs to a batch: texts without it are not decoded."""

EVENTS = ("complete", "success")
"""The callbacks a batch may have, in the order they fire."""

SUCCEEDED, FAILED = "s", "f"
"""How ``batch_update.lua`` is told a job ended."""


def new_bid() -> str:
    """A new batch id: 16 random bytes, base 16 (as long as Sidekiq Pro's)."""
    return secrets.token_hex(8)


@attrs.frozen
class BatchCallback:
    """A worker to enqueue when a batch reaches an event, with its options."""

    worker: type | str
    options: Mapping[str, Any] = attrs.field(factory=dict)
    queue: str | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.worker, type | str) or not self.worker:
            raise InvalidJobError(
                f"a batch callback's worker must be a class or a name, got {self.worker!r}"
            )
        if not isinstance(self.options, Mapping):
            raise InvalidJobError(
                f"a batch callback's options must be a dict, got {type(self.options).__name__}"
            )

    def head(self, bid: str, event: str, description: str) -> tuple[str, str]:
        """``(queue, job text without enqueued_at and its closing brace)``: what
        ``batch_update.lua`` stores and finishes when the event comes."""
        default_queue = (
            getattr(self.worker, "queue", None) if isinstance(self.worker, type) else None
        )
        status = {"bid": bid, "event": event, "description": description}
        job = new_job(
            worker_name(self.worker),
            [status, dict(self.options)],
            queue=self.queue or (default_queue if isinstance(default_queue, str) else "default"),
            now=time.time(),
        )
        fields = job.to_dict()
        del fields["enqueued_at"]
        text = dumps(fields)
        assert text.endswith("}")
        return fields["queue"], text[:-1]


def callback_of(value: Any, event: str) -> BatchCallback | None:
    """A ``BatchCallback`` from what a user passed as ``on_<event>``: None, a worker (class or
    name), ``(worker, options)``, or a ``BatchCallback``."""
    if value is None or isinstance(value, BatchCallback):
        return value
    if isinstance(value, type | str):
        return BatchCallback(value)
    if isinstance(value, tuple) and len(value) == 2:
        return BatchCallback(value[0], value[1])
    raise InvalidJobError(
        f"on_{event} must be a worker (class or name), (worker, options dict) or a "
        f"BatchCallback, got {value!r}"
    )


def batch_updates(texts: Iterable[bytes], outcome: str) -> dict[tuple[str, str], str]:
    """``{(bid, jid): outcome}`` for the jobs among ``texts`` that belong to a batch
    (texts without the ``"bid"`` field cost a substring search, nothing more)."""
    found: dict[tuple[str, str], str] = {}
    for text in [text for text in texts if MARK in text]:
        try:
            job = decode_job(text)
        except MalformedJobError:
            continue
        bid = job.extra.get(BID_FIELD)
        if isinstance(bid, str) and bid and job.jid:
            found[(bid, job.jid)] = outcome
    return found


@attrs.frozen
class BatchStatus:
    """What a batch's hash and sets say now."""

    bid: str
    description: str
    total: int
    pending: int
    failures: int
    """Jobs that failed at least once (some may have succeeded on a retry since)."""
    created_at: float
    finished_at: float | None
    fired: tuple[str, ...]
    """The callbacks enqueued so far (``complete``, ``success``)."""

    @property
    def complete(self) -> bool:
        """Every job has run (succeeded, or failed at least once)."""
        return "complete" in self.fired or self.finished_at is not None

    @property
    def succeeded(self) -> bool:
        """Every job has succeeded."""
        return self.finished_at is not None

    def to_dict(self) -> dict[str, Any]:
        """The status as JSON values."""
        return {**attrs.asdict(self), "complete": self.complete, "succeeded": self.succeeded}
