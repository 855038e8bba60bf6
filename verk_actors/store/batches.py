"""Batches in Redis: ``Batch`` writes a batch's jobs in one transaction; its status.

::

    from verk_actors import Batch

    with Batch(description="import 42", on_success=(Notify, {"user": 5})) as batch:
        for row in rows:
            batch.enqueue(ImportRow, row)
    print(batch.bid)

A job of the batch adds jobs to it with ``Batch.reopen(self.job)``: the batch cannot
finish meanwhile, since that job has not succeeded yet. ``batch_update.lua`` (called
by the nodes as they ack and fail jobs) enqueues the callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import redis

from verk_actors.errors import InvalidJobError, NotFoundError
from verk_actors.jobs.batch import (
    BID_FIELD,
    EVENTS,
    BatchCallback,
    BatchStatus,
    callback_of,
    new_bid,
)
from verk_actors.jobs.enqueue_options import check_worker
from verk_actors.jobs.job import Job
from verk_actors.store import keys
from verk_actors.store.client import Client

PENDING_TTL = 30 * 86_400
"""Seconds an unfinished batch is kept after its last change (Sidekiq Pro keeps 30 days)."""

FINISHED_TTL = 3 * 86_400
"""Seconds a batch whose jobs all succeeded is kept, for its status to be read."""

BATCH_OPTIONS = ("queue", "retry", "jid", "extra")
"""The enqueue options a batch's jobs take (no unique jobs, nothing scheduled)."""


class Batch:
    """Jobs to enqueue as one batch; ``submit`` (or leaving the ``with`` block) writes
    them and the batch in one transaction, so a batch is whole or absent."""

    def __init__(
        self,
        client: Client | None = None,
        *,
        url: str | None = None,
        description: str = "",
        on_complete: Any = None,
        on_success: Any = None,
        bid: str | None = None,
        _reopened: bool = False,
    ) -> None:
        if not isinstance(description, str):
            raise InvalidJobError(f"a batch's description must be a string, got {description!r}")
        self._own_client = client is None
        self.client = client if client is not None else Client(url=url)
        self.bid = bid or new_bid()
        self.description = description
        self.callbacks = {
            event: callback_of(value, event)
            for event, value in zip(EVENTS, (on_complete, on_success), strict=True)
        }
        self.jobs: list[Job] = []
        self._reopened = _reopened
        self.submitted = False

    @classmethod
    def reopen(cls, job_or_bid: Job | str, client: Client | None = None, **kw: Any) -> Batch:
        """A batch to add jobs to an existing one: pass the running job (``self.job``
        in ``perform``) or its bid. Callbacks stay as the batch was made."""
        bid = job_or_bid.extra.get(BID_FIELD) if isinstance(job_or_bid, Job) else job_or_bid
        if not isinstance(bid, str) or not bid:
            raise InvalidJobError("this job belongs to no batch (it has no bid field)")
        return cls(client, bid=bid, _reopened=True, **kw)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        try:
            if kind is None:
                self.submit()
        finally:
            if self._own_client:
                self.client.close()

    def enqueue(self, worker: type | str, *args: Any, **options: Any) -> str | None:
        """Add one job (written at ``submit``); returns its jid, None if a client
        middleware refused it."""
        jids = self._add(worker, [args], options)
        return jids[0] if jids else None

    def enqueue_many(
        self, worker: type | str, args_list: Iterable[Sequence[Any]], **options: Any
    ) -> list[str]:
        """Add many jobs of one worker; returns their jids (a job a client middleware
        refused is left out)."""
        return self._add(worker, args_list, options)

    def _add(
        self, worker: type | str, args_list: Iterable[Sequence[Any]], options: dict[str, Any]
    ) -> list[str]:
        if self.submitted:
            raise InvalidJobError("this batch was submitted: reopen it to add jobs")
        check_worker("batch.enqueue", worker)
        unknown = [name for name in options if name not in BATCH_OPTIONS]
        if unknown:
            raise InvalidJobError(
                f"a batch's jobs take the options {', '.join(BATCH_OPTIONS)}; not "
                f"{', '.join(unknown)} (unique and scheduled jobs cannot join a batch)"
            )
        extra = {**(options.pop("extra", None) or {}), BID_FIELD: self.bid}
        built = [self.client.build(worker, args, extra=extra, **options) for args in args_list]
        admitted = [self.client.admit(worker, job) for job in built]  # client middleware
        jobs = [job for job in admitted if job is not None]
        self.jobs.extend(jobs)
        return [job.jid or "" for job in jobs]

    def submit(self) -> str:
        """Write the batch and its jobs in one MULTI/EXEC; returns the bid.

        A new batch needs at least one job. A reopened batch must exist (it cannot have
        finished while one of its jobs runs)."""
        if self.submitted:
            return self.bid
        if not self.jobs:
            if self._reopened:
                self.submitted = True
                return self.bid
            raise InvalidJobError("a batch needs at least one job: enqueue some before submit")
        now = time.time()
        batch = keys.batch_key(self.bid)
        pending = keys.batch_pending_key(self.bid)
        redis_client = self.client.redis
        if self._reopened and not redis_client.exists(batch):
            raise NotFoundError(f"batch {self.bid} does not exist (it finished or expired)")
        pipe = redis_client.pipeline(transaction=True)
        if not self._reopened:
            fields: dict[Any, str] = {
                "description": self.description,
                "created_at": repr(now),
            }
            for event, callback in self.callbacks.items():
                if callback is not None:
                    queue, head = callback.head(self.bid, event, self.description)
                    fields[f"on_{event}_job"] = head
                    fields[f"on_{event}_queue"] = queue
            pipe.hset(batch, mapping=fields)
            pipe.zadd(keys.BATCHES, {self.bid: now})
            pipe.zremrangebyscore(keys.BATCHES, "-inf", now - PENDING_TTL)
        pipe.hincrby(batch, "total", len(self.jobs))
        pipe.sadd(pending, *(job.jid or "" for job in self.jobs))
        by_queue: dict[str, list[str]] = {}
        for job in self.jobs:
            by_queue.setdefault(job.queue or "default", []).append(job.to_json())
        for queue, texts in by_queue.items():
            pipe.sadd(keys.QUEUES, queue)
            pipe.lpush(keys.queue_key(queue), *texts)
        for key in (batch, pending, keys.batch_failed_key(self.bid)):
            pipe.expire(key, PENDING_TTL)
        self.client._execute(pipe)
        self.submitted = True
        return self.bid


def batch_status(redis_client: redis.Redis, bid: str) -> BatchStatus:
    """A batch's status now (NotFoundError if it never existed or has expired)."""
    pipe = redis_client.pipeline(transaction=False)
    pipe.hgetall(keys.batch_key(bid))
    pipe.scard(keys.batch_pending_key(bid))
    raw, pending = pipe.execute()
    fields = {
        k.decode(): v.decode("utf-8", "replace") for k, v in cast(dict[bytes, bytes], raw).items()
    }
    if not fields:
        raise NotFoundError(f"no batch {bid} (never made, or expired)")
    finished = fields.get("finished_at")
    return BatchStatus(
        bid=bid,
        description=fields.get("description", ""),
        total=int(fields.get("total", 0)),
        pending=int(pending),
        failures=int(fields.get("failures", 0)),
        created_at=float(fields.get("created_at", 0)),
        finished_at=float(finished) if finished else None,
        fired=tuple(event for event in EVENTS if f"fired_{event}" in fields),
    )


def list_batches(redis_client: redis.Redis, limit: int = 50) -> list[BatchStatus]:
    """The newest ``limit`` batches still kept, newest first."""
    bids = cast(list[bytes], redis_client.zrevrange(keys.BATCHES, 0, max(0, limit - 1)))
    found = []
    for raw in bids:
        try:
            found.append(batch_status(redis_client, raw.decode()))
        except NotFoundError:
            continue
    return found


def batch_jids(redis_client: redis.Redis, bid: str, limit: int = 100) -> dict[str, list[str]]:
    """Up to ``limit`` jids of a batch's jobs still pending and of those failing (a
    sample when there are more: SRANDMEMBER, not a scan of the whole set)."""
    pipe = redis_client.pipeline(transaction=False)
    pipe.srandmember(keys.batch_pending_key(bid), limit)
    pipe.srandmember(keys.batch_failed_key(bid), limit)
    pending, failed = pipe.execute()
    return {
        "pending": sorted(raw.decode() for raw in pending or ()),
        "failed": sorted(raw.decode() for raw in failed or ()),
    }


__all__ = ["FINISHED_TTL", "Batch", "BatchCallback", "batch_jids", "batch_status", "list_batches"]
