"""``ScheduleManager``: moves due jobs from ``schedule`` and ``retry`` to their queues.

Every ``poll_interval`` (with a little jitter, so nodes spread out) it moves up to
100 due jobs per set in one atomic call, and at once again while batches come back
full. Malformed members go to ``dead`` with the reason instead of being retried
forever. It has its own Redis connection (``store.scheduling.ScheduleStore``). When
Redis is away or refuses commands (``OOM``, ``BUSY``...: see ``store.failures``) it
logs that once per outage (with a reminder now and then saying how long it has
lasted) and keeps polling at its usual pace, so due jobs move within a poll interval
of Redis answering again."""

from __future__ import annotations

import logging
import os
import random
from functools import partial
from typing import Any

from verk_actors.actors._redis_report import ReportsRedisErrors
from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import ChildReady, InitScheduleManager, PollCron, PollSchedule
from verk_actors.config.redis_url import redact_url
from verk_actors.errors import VerkError
from verk_actors.jobs.cron import node_entries
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.store.cron import CronStore
from verk_actors.store.failures import REDIS_ERRORS, Outage
from verk_actors.store.scheduling import ScheduleStore

log = logging.getLogger(__name__)


class ScheduleManager(VerkActor, ReportsRedisErrors):
    """Enqueues scheduled jobs and retries when they are due."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitScheduleManager | None = None
        self.store: ScheduleStore | None = None
        self.outage = Outage(log, "scheduler", "?")
        self.cron: CronStore | None = None
        self.cron_outage = Outage(log, "cron", "?")

    def receiveMsg_InitScheduleManager(self, message: InitScheduleManager, sender: Any) -> None:
        self.init = message
        self.store = ScheduleStore(message.settings.redis_url, message.node_id)
        self.metrics = message.metrics
        self.outage = Outage(
            log,
            "scheduler",
            redact_url(message.settings.redis_url),
            report=partial(self.report_redis, "schedule_manager"),
        )
        if self.cron is None:
            self._start_cron(message)
        self.send(sender, ChildReady(os.getpid()))
        self.after(0.001, PollSchedule())

    def _start_cron(self, message: InitScheduleManager) -> None:
        settings = message.settings
        try:
            classes = WorkerRegistry.from_modules(settings.imports, allow_async=True).classes()
            entries = node_entries(settings.cron, classes)
        except VerkError as exc:
            log.error("cron: no periodic jobs run on this node: %s", exc)
            return
        if not entries:
            return
        self.cron = CronStore(settings.redis_url, message.node_id, entries, settings.cron_catch_up)
        self.cron_outage = Outage(
            log,
            "cron",
            redact_url(settings.redis_url),
            report=partial(self.report_redis, "schedule_manager"),
        )
        log.info("cron: %s", ", ".join(f"{e.name} ({e.schedule} {e.tz})" for e in entries))
        self.after(0.001, PollCron())

    def receiveMsg_PollCron(self, message: PollCron, sender: Any) -> None:
        cron, init = self.cron, self.init
        if cron is None or init is None:
            return
        try:
            cron.poll()
        except REDIS_ERRORS as exc:
            self.cron_outage.failed(exc, "enqueueing periodic jobs")
            self.after(init.settings.poll_interval, PollCron())
            return
        self.cron_outage.ok()
        self.after(cron.wait(), PollCron())

    def receiveMsg_PollSchedule(self, message: PollSchedule, sender: Any) -> None:
        init, store = self.init, self.store
        if init is None or store is None:
            return
        again = False
        try:
            for zset, moved in store.move_due():
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
        if self.store is not None:
            self.store.close()
        if self.cron is not None:
            self.cron.close()
