"""Pending jobs of a queue (``queue:<q>``): list, size, latency, peek, delete, clear.

A queue is a list that jobs enter on the left and leave on the right, so its oldest
job is the rightmost one; ``peek`` lists oldest first, the order they will run in.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from verk_actors.errors import ConfigurationError, InvalidJobError, NotFoundError
from verk_actors.jobs.job import check_queue_name
from verk_actors.jobs.stored_job import StoredJob, as_text, matches_jid
from verk_actors.store import keys

SCAN_CHUNK = 1000


def queue_names(client: redis.Redis) -> list[str]:
    """Every known queue (the ``queues`` set), sorted."""
    return sorted(as_text(name) for name in client.smembers(keys.QUEUES))


def latency_of(oldest: bytes | str | None, now: float) -> float:
    """Seconds since the job text ``oldest`` was enqueued; 0 if none or unknown (Sidekiq)."""
    if oldest is None:
        return 0.0
    job = StoredJob.read(oldest).job
    enqueued: Any = job.enqueued_at if job is not None else None
    if isinstance(enqueued, bool) or not isinstance(enqueued, int | float):
        return 0.0
    return max(now - float(enqueued), 0.0)


class Queue:
    """The pending jobs of one queue."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        try:
            self.name = check_queue_name(name)
        except InvalidJobError as exc:
            raise InvalidJobError(f"{exc}; list the queues to see their names") from None
        self.client = client
        self.key = keys.queue_key(name)

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    def exists(self) -> bool:
        """Whether the queue is known (in ``queues``) or holds jobs."""
        pipe = self.client.pipeline(transaction=False)
        pipe.sismember(keys.QUEUES, self.name)
        pipe.exists(self.key)
        known, present = pipe.execute()
        return bool(known) or bool(present)

    def size(self) -> int:
        """How many jobs wait in the queue."""
        return int(self.client.llen(self.key))

    def latency(self, now: float | None = None) -> float:
        """Age in seconds of the oldest pending job (0 when the queue is empty)."""
        oldest = self.client.lindex(self.key, -1)
        return latency_of(oldest, time.time() if now is None else now)

    def peek(self, offset: int = 0, limit: int = 25) -> list[StoredJob]:
        """Up to ``limit`` pending jobs from ``offset``, oldest (next to run) first."""
        if offset < 0 or limit < 0:
            raise ConfigurationError(f"offset and limit must be 0 or more, got {offset}, {limit}")
        if limit == 0:
            return []
        texts = self.client.lrange(self.key, -(offset + limit), -(offset + 1))
        return [StoredJob.read(text) for text in reversed(texts)]

    def find_all(self, jid: str) -> list[StoredJob]:
        """Every pending job with exactly this jid (read in chunks, oldest first)."""
        found: list[StoredJob] = []
        start = 0
        while True:
            texts = self.client.lrange(self.key, -(start + SCAN_CHUNK), -(start + 1))
            found.extend(s for t in reversed(texts) if (s := matches_jid(t, jid)) is not None)
            if len(texts) < SCAN_CHUNK:
                return found
            start += SCAN_CHUNK

    def find_near(self, jid: str, offset: int, window: int = SCAN_CHUNK) -> list[StoredJob]:
        """The pending jobs with this jid among those ``offset - window`` to ``offset``
        (as ``peek`` counts them): where a job listed at ``offset`` is now, since jobs
        only leave from the oldest end and enter at the other."""
        low = max(0, offset - window + 1)
        texts = self.client.lrange(self.key, -(offset + 1), -(low + 1))
        return [s for t in texts if (s := matches_jid(t, jid)) is not None]

    def find(self, jid: str) -> StoredJob | None:
        """The pending job with this jid, or None."""
        found = self.find_all(jid)
        return found[0] if found else None

    def delete(self, jid: str, *, near: int | None = None) -> int:
        """Remove the pending job ``jid`` (LREM of its exact text); how many went.

        ``near``: the offset it was listed at, looked at first (``find_near``), so a job
        deep in a long queue is found without reading the queue up to it. NotFoundError
        if no pending job has that jid, or a node took it meanwhile.
        """
        found = self.find_near(jid, near) if near is not None and near >= 0 else []
        found = found or self.find_all(jid)
        if not found:
            raise NotFoundError(
                f"no pending job with jid {jid!r} in queue {self.name!r}; peek the queue to "
                "see its jids (it may be running or done already)"
            )
        pipe = self.client.pipeline(transaction=False)
        for stored in {s.raw for s in found}:
            # redis-py annotates the value as str, but sends bytes as they are: the
            # exact stored bytes are what must match (verk_actors/store/CONTRACT.md).
            pipe.lrem(self.key, 0, stored)  # type: ignore[arg-type]
        removed = sum(int(n) for n in pipe.execute())
        if removed == 0:
            raise NotFoundError(
                f"job {jid} left queue {self.name!r} before it could be deleted (a node "
                "took it); nothing was deleted"
            )
        return removed

    def clear(self) -> int:
        """Delete every pending job and forget the queue (as Sidekiq's ``Queue#clear``).

        Returns how many jobs were deleted. Jobs in progress are not touched.
        """
        pipe = self.client.pipeline(transaction=True)
        pipe.llen(self.key)
        pipe.delete(self.key)
        pipe.srem(keys.QUEUES, self.name)
        count, _, _ = pipe.execute()
        return int(count)
