"""``ScheduleManager``: moves due jobs from ``schedule`` and ``retry`` to their queues.

Every ``poll_interval`` (with a little jitter, so nodes spread out) it moves up to
100 due jobs per set in one atomic call, and at once again while batches come back
full. Malformed members go to ``dead`` with the reason instead of being retried
forever. It has its own Redis connection. When Redis is away or refuses commands
(``OOM``, ``BUSY``...: see ``redis_errors``) it logs that once per outage (with a
reminder now and then saying how long it has lasted) and keeps polling at its usual
pace, so due jobs move within a poll interval of Redis answering again.
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Any

import redis

from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import ChildReady, InitScheduleManager, PollSchedule
from verk_actors.config.redis_url import redact_url
from verk_actors.store import keys
from verk_actors.store.connection import connect
from verk_actors.store.failures import REDIS_ERRORS, Outage
from verk_actors.store.scheduling import move_due
from verk_actors.store.scripts import Scripts

log = logging.getLogger(__name__)


class ScheduleManager(VerkActor):
    """Enqueues scheduled jobs and retries when they are due."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitScheduleManager | None = None
        self.client: redis.Redis | None = None
        self.scripts: Scripts | None = None
        self.outage = Outage(log, "scheduler", "?")

    def receiveMsg_InitScheduleManager(self, message: InitScheduleManager, sender: Any) -> None:
        self.init = message
        self.client = connect(message.settings.redis_url, name=f"verk:{message.node_id}:schedule")
        self.scripts = Scripts(self.client)
        self.outage = Outage(log, "scheduler", redact_url(message.settings.redis_url))
        self.send(sender, ChildReady(os.getpid()))
        self.after(0.001, PollSchedule())

    def receiveMsg_PollSchedule(self, message: PollSchedule, sender: Any) -> None:
        init, client, scripts = self.init, self.client, self.scripts
        if init is None or client is None or scripts is None:
            return
        again = False
        try:
            for zset in (keys.SCHEDULE, keys.RETRY):
                moved = move_due(client, scripts, zset, time.time())
                if moved.malformed:
                    log.warning(
                        "%d malformed members of %s went to dead (see their error_message)",
                        moved.malformed,
                        zset,
                    )
                again = again or moved.full
        except REDIS_ERRORS as exc:
            # A try costs one refused connection or error reply: no backoff, so due
            # jobs move within a poll interval of Redis answering again.
            self.outage.failed(exc, "moving due jobs")
            again = False
        else:
            self.outage.ok()
        interval = init.settings.poll_interval * random.uniform(0.9, 1.1)
        self.after(0.001 if again else interval, PollSchedule())

    def timer_retry(self, payload: object) -> float:
        return self.init.settings.poll_interval if self.init is not None else 1.0

    def stopping(self) -> None:
        if self.client is not None:
            self.client.close()
