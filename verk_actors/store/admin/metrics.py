"""What a node's metrics read from Redis at each scrape: its queues' sizes and the age
of their oldest jobs, and the sizes of the retry, schedule and dead sets.

One pipelined round trip per scrape, whatever the number of queues.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import attrs

from verk_actors.store import keys
from verk_actors.store.admin.queues import latency_of
from verk_actors.store.connection import connect

SETS = (("retry", keys.RETRY), ("scheduled", keys.SCHEDULE), ("dead", keys.DEAD))
"""The sorted sets measured, by the name the ``set`` label gives them."""


@attrs.frozen
class RedisFigures:
    """``queues``: ``(name, pending jobs, seconds since the oldest was enqueued)``;
    ``sets``: ``(retry|scheduled|dead, size)``."""

    queues: tuple[tuple[str, int, float], ...]
    sets: tuple[tuple[str, int], ...]


class MetricsReader:
    """A connection of its own (named ``verk_actors:metrics``) that reads the figures."""

    def __init__(self, url: str, node_id: str) -> None:
        self.client = connect(url, name=f"verk_actors:metrics:{node_id}", socket_timeout=2.0)

    def figures(self, queues: Sequence[str], now: float | None = None) -> RedisFigures:
        """The figures of ``queues`` and of the sets, read now (redis errors raise)."""
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(keys.queue_key(queue))
            pipe.lindex(keys.queue_key(queue), -1)  # the oldest: jobs enter on the left
        for _, key in SETS:
            pipe.zcard(key)
        replies = pipe.execute()
        now = time.time() if now is None else now
        sized = tuple(
            (queue, int(replies[2 * i]), latency_of(replies[2 * i + 1], now))
            for i, queue in enumerate(queues)
        )
        tail = replies[2 * len(queues) :]
        return RedisFigures(
            sized, tuple((name, int(n)) for (name, _), n in zip(SETS, tail, strict=True))
        )

    def close(self) -> None:
        self.client.close()
