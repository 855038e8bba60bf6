"""Moving due jobs from ``schedule`` and ``retry`` to their queues (no actors here).

``ScheduleStore`` is what the ScheduleManager calls: its own connection, and one pass
over both sets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import cast

import attrs
import redis

from verk_actors.errors import MalformedJobError
from verk_actors.jobs.job import DEFAULT_QUEUE, decode_job
from verk_actors.jobs.retry import bury_malformed
from verk_actors.store import keys
from verk_actors.store.connection import connect
from verk_actors.store.scripts import Scripts

BATCH = 100

DUE_SETS = (keys.SCHEDULE, keys.RETRY)
"""The sorted sets whose due members go to their queues, in the order they are polled."""


@attrs.frozen
class Moved:
    """What one call did: members moved (to a queue, or to dead when malformed), how
    many of the due members were malformed, and whether the batch was full (so more
    may be due)."""

    moved: int
    malformed: int
    full: bool


def plan_move(member: bytes, now: float) -> tuple[str | None, str | bytes]:
    """Where a due member goes: ``(queue, new text)``, or ``(None, dead text)`` if malformed."""
    try:
        job = decode_job(member)
    except MalformedJobError as exc:
        return None, bury_malformed(member, reason=str(exc), queue="", now=now).text
    # No "queue": the default queue, as Sidekiq's scheduler enqueues such a member.
    queue = job.queue or DEFAULT_QUEUE
    return queue, attrs.evolve(job, queue=queue, enqueued_at=now).to_json()


def move_due(
    client: redis.Redis, scripts: Scripts, zset: str, now: float, limit: int = BATCH
) -> Moved:
    """Move up to ``limit`` members of ``zset`` due by ``now``; each moves exactly once,
    even when several nodes do this at the same time."""
    members = cast(list[bytes], client.zrangebyscore(zset, "-inf", now, start=0, num=limit))
    if not members:
        return Moved(0, 0, full=False)
    moves = []
    buried = 0
    for member in members:
        queue, text = plan_move(member, now)
        buried += queue is None
        moves.append((member, queue, text))
    moved = scripts.enqueue_due(client, zset, moves, now=now)
    return Moved(moved=moved, malformed=buried, full=len(members) >= limit)


class ScheduleStore:
    """The ``schedule`` and ``retry`` sets, as one node's ScheduleManager moves them."""

    def __init__(self, url: str, node_id: str) -> None:
        self.client = connect(url, name=f"verk:{node_id}:schedule")
        self.scripts = Scripts(self.client)

    def move_due(self) -> Iterator[tuple[str, Moved]]:
        """Move a batch of due members of each set in turn: yields the set's name and
        what moved, each set's batch done before the next is read. A Redis error
        raised by one set ends the pass there."""
        for zset in DUE_SETS:
            yield zset, move_due(self.client, self.scripts, zset, time.time())

    def close(self) -> None:
        self.client.close()
