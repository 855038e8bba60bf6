"""``ReportsRedisErrors``: a mixin for the node-wide actors (NodeManager, ScheduleManager)
that tells the node's MetricsActor of their failed Redis calls and reconnects.

Their ``Outage`` objects call ``report_redis`` (see ``Outage.report``); the queue managers
send ``RedisErrorsSeen`` themselves. VerkRoot sends ``MetricsAt`` when the MetricsActor
restarts, so the reports go to the new one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from verk_actors.actors.messages import MetricsAt, RedisErrorsSeen


class ReportsRedisErrors:
    """Reports Redis errors to ``self.metrics`` (None: the node serves no metrics)."""

    metrics: Any = None
    send: Callable[[Any, Any], None]
    """Thespian's ``Actor.send`` (the actor class lists this mixin after ``VerkActor``)."""

    def report_redis(self, actor: str, errors: int, reconnects: int) -> None:
        """Tell the MetricsActor, if there is one, of ``errors`` failed calls and
        ``reconnects`` outages ended in an actor of kind ``actor``."""
        if self.metrics is not None:
            self.send(self.metrics, RedisErrorsSeen(errors, reconnects=reconnects, actor=actor))

    def receiveMsg_MetricsAt(self, message: MetricsAt, sender: Any) -> None:
        self.metrics = message.address
