"""Counts for people watching a cluster: totals, per day, per queue, as Sidekiq::Stats.

Everything is read from the counters and lists described in
``verk_actors/store/CONTRACT.md``, in a few pipelined round trips, so Sidekiq's tools
and these functions always agree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import redis

from verk_actors.jobs.stored_job import as_text
from verk_actors.store import keys
from verk_actors.store.admin.nodes import NodeInfo, list_nodes, node_ids
from verk_actors.store.admin.queues import latency_of, queue_names


def _count(raw: Any) -> int:
    """A counter's value; 0 when missing or not a number."""
    try:
        return int(raw) if raw is not None else 0
    except (TypeError, ValueError):
        return 0


@attrs.frozen
class DayStats:
    """Executions and failures of one UTC day (``yyyy-mm-dd``)."""

    day: str
    processed: int
    failed: int


@attrs.frozen
class QueueStats:
    """One queue: pending jobs, age of the oldest, jobs running, counters, paused."""

    name: str
    size: int
    latency: float
    in_progress: int
    processed: int
    failed: int
    paused: bool


@attrs.frozen
class Totals:
    """The cluster's totals, as Sidekiq::Stats shows them."""

    processed: int
    failed: int
    enqueued: int
    scheduled: int
    retries: int
    dead: int
    queues: int
    paused: int


@attrs.frozen
class Snapshot:
    """Everything ``verk-actors stats`` shows, read at ``at`` (unix seconds)."""

    at: float
    totals: Totals
    queues: tuple[QueueStats, ...]
    history: tuple[DayStats, ...]
    nodes: tuple[NodeInfo, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "at": self.at,
            "totals": attrs.asdict(self.totals),
            "queues": [attrs.asdict(q) for q in self.queues],
            "history": [attrs.asdict(d) for d in self.history],
            "nodes": [n.to_dict() for n in self.nodes],
        }


def last_days(days: int, today: date | None = None) -> list[str]:
    """The ``yyyy-mm-dd`` names of the last ``days`` UTC days, today first."""
    start = today or datetime.now(UTC).date()
    return [(start - timedelta(days=n)).isoformat() for n in range(days)]


def history(client: redis.Redis, days: int = 7, *, today: date | None = None) -> list[DayStats]:
    """Processed and failed counts of the last ``days`` UTC days, today first."""
    if days < 1:
        return []
    names = last_days(days, today)
    processed = client.mget([keys.processed_day_key(d) for d in names])
    failed = client.mget([keys.failed_day_key(d) for d in names])
    return [
        DayStats(day, _count(p), _count(f))
        for day, p, f in zip(names, processed, failed, strict=True)
    ]


def totals(client: redis.Redis) -> Totals:
    """Processed, failed, enqueued and the sizes of the sets, in one round trip."""
    names = queue_names(client)
    pipe = client.pipeline(transaction=False)
    pipe.mget([keys.STAT_PROCESSED, keys.STAT_FAILED])
    pipe.zcard(keys.SCHEDULE)
    pipe.zcard(keys.RETRY)
    pipe.zcard(keys.DEAD)
    pipe.scard(keys.PAUSED)
    for name in names:
        pipe.llen(keys.queue_key(name))
    (processed, failed), scheduled, retries, dead, paused, *sizes = pipe.execute()
    return Totals(
        processed=_count(processed),
        failed=_count(failed),
        enqueued=sum(int(s) for s in sizes),
        scheduled=int(scheduled),
        retries=int(retries),
        dead=int(dead),
        queues=len(names),
        paused=int(paused),
    )


def in_progress(client: redis.Redis, queues: Sequence[str]) -> dict[str, int]:
    """Jobs taken and not yet acknowledged, per queue, summed over every node.

    A node's ``inprogress:<q>:<node>`` lists are counted for the queues in its
    ``verk:node:<id>:queues`` set, alive or not (a dead node's jobs wait for recovery).
    """
    counts = dict.fromkeys(queues, 0)
    ids = node_ids(client)
    if not ids or not counts:
        return counts
    pipe = client.pipeline(transaction=False)
    for node_id in ids:
        pipe.smembers(keys.node_queues_key(node_id))
    pairs = [
        (as_text(q), node_id)
        for node_id, members in zip(ids, pipe.execute(), strict=True)
        for q in members
        if as_text(q) in counts
    ]
    if not pairs:
        return counts
    pipe = client.pipeline(transaction=False)
    for queue, node_id in pairs:
        pipe.llen(keys.inprogress_key(queue, node_id))
    for (queue, _), size in zip(pairs, pipe.execute(), strict=True):
        counts[queue] += int(size)
    return counts


def queue_stats(
    client: redis.Redis, queues: Sequence[str] | None = None, *, now: float | None = None
) -> list[QueueStats]:
    """Size, latency, in progress, counters and paused state of each queue.

    ``queues`` defaults to every queue in the ``queues`` set.
    """
    names = list(queue_names(client) if queues is None else queues)
    if not names:
        return []
    at = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(keys.queue_key(name))
        pipe.lindex(keys.queue_key(name), -1)
        pipe.mget([keys.processed_queue_key(name), keys.failed_queue_key(name)])
        pipe.sismember(keys.PAUSED, name)
    results = pipe.execute()
    running = in_progress(client, names)
    out = []
    for i, name in enumerate(names):
        size, oldest, (processed, failed), paused = results[4 * i : 4 * i + 4]
        out.append(
            QueueStats(
                name=name,
                size=int(size),
                latency=latency_of(oldest, at),
                in_progress=running[name],
                processed=_count(processed),
                failed=_count(failed),
                paused=bool(paused),
            )
        )
    return out


def snapshot(client: redis.Redis, *, days: int = 7, now: float | None = None) -> Snapshot:
    """Totals, queues, the last ``days`` days and the nodes, read now."""
    at = time.time() if now is None else now
    return Snapshot(
        at=at,
        totals=totals(client),
        queues=tuple(queue_stats(client, now=at)),
        history=tuple(history(client, days, today=datetime.fromtimestamp(at, UTC).date())),
        nodes=tuple(list_nodes(client)),
    )
