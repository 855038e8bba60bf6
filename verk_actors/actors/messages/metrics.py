"""The node's metrics: what the MetricsActor is told by the actors where figures meet.

Figures travel as running totals (``QueueFigures``): a message lost, or a MetricsActor
restarted, costs no count, the next report carries them all. Restarts and Redis
errors are events (``ActorRestarted``, ``RedisErrorsSeen``), rare by nature.
"""

from __future__ import annotations

from typing import Any

import attrs

from verk_actors.actors.messages.base import Message
from verk_actors.config.settings import Settings


@attrs.frozen
class InitMetrics(Message):
    """Configure the MetricsActor: listen on ``settings.metrics_port`` for scrapes."""

    settings: Settings
    node_id: str
    queues: tuple[str, ...]


@attrs.frozen
class MetricsQueues(Message):
    """The queues this node works on changed (VerkRoot to the MetricsActor)."""

    queues: tuple[str, ...]


@attrs.frozen
class MetricsAt(Message):
    """Where the node's MetricsActor is now (None: metrics are off or it is gone).

    VerkRoot sends it to each queue supervisor when the MetricsActor (re)starts; the
    supervisor passes it on to its managers.
    """

    address: Any


@attrs.frozen
class QueueFigures(Message):
    """One WorkersManager's running totals since it started (not since its last report).

    ``jobs``: ``(class, outcome, count)``; ``durations``: ``(class, bucket counts,
    sum of seconds, count)`` with the buckets of ``_metrics_tally.BUCKETS`` (not
    cumulative); ``killed``: ``(reason, count)``; ``busy``/``workers``: workers busy
    and in the pool now; ``replaced``: workers started again after they died;
    ``recycled``: workers replaced after their queue's ``max_jobs``/``max_memory``.
    """

    queue: str
    jobs: tuple[tuple[str, str, int], ...]
    durations: tuple[tuple[str, tuple[int, ...], float, int], ...]
    killed: tuple[tuple[str, int], ...]
    busy: int
    workers: int
    replaced: int
    recycled: int = 0


@attrs.frozen
class ActorRestarted(Message):
    """A supervisor restarted a child of class ``kind`` (``queue``: "" outside a queue)."""

    kind: str
    queue: str = ""


@attrs.frozen
class RedisErrorsSeen(Message):
    """``count`` Redis calls failed in the sender's actor since its last such message;
    ``reconnects``: outages it came back from."""

    count: int
    reconnects: int = 0
    actor: str = "queue_manager"
    """Which kind of actor saw them (``queue_manager``, ``node_manager``,
    ``schedule_manager``): the ``actor`` label of ``verk_redis_errors_total``."""
