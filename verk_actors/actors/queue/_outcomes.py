"""What the workers reported, and their boards told, that the QueueManager has not heard.

Outcomes are gathered and sent in one ``RecordOutcomes`` with the WorkersManager's new
demand for jobs: acks are not urgent, and one message for many jobs keeps the two
managers' CPU per job low.
"""

from __future__ import annotations

import logging

from verk_actors.actors.messages import JobsDone, RecordOutcomes
from verk_actors.actors.queue._batches import BatchSizer
from verk_actors.actors.queue._settle import Settlement
from verk_actors.actors.queue._slots import Slot
from verk_actors.actors.queue._standby import STANDBY_FLUSH_AFTER
from verk_actors.jobs.retry import FailureRecord, Fate

log = logging.getLogger(__name__)

FLUSH_OUTCOMES = 500
"""Outcomes that are sent to the QueueManager at once, without waiting for more."""

FLUSH_AFTER = 0.005
"""Seconds outcomes may wait to be sent with others (acks are not urgent)."""


class Outcomes:
    """Outcomes not sent to the QueueManager yet."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.failed: list[tuple[int, FailureRecord]] = []
        self.requeued: list[int] = []
        self.adopted: list[tuple[int, bytes]] = []
        """Jobs a worker on standby took itself: the QueueManager learns their texts."""
        self.reconcile = False
        """A worker on standby died: jobs in progress nobody knows go back."""
        self.flush_armed = False
        """A ``FlushOutcomes`` timer is on its way."""

    def __bool__(self) -> bool:
        return bool(self.acked or self.failed or self.requeued or self.adopted)

    def settled(self) -> int:
        """Jobs acked, failed or requeued so far."""
        return len(self.acked) + len(self.failed) + len(self.requeued)

    def urgent(self, want: int, *, draining: bool) -> bool:
        """Whether to send now: jobs are wanted, a job failed (its retry is due), the
        queue drains, or ``FLUSH_OUTCOMES`` wait."""
        return bool(want or self.failed or draining or self.settled() >= FLUSH_OUTCOMES)

    def arm_flush(self, *, standby: bool) -> float | None:
        """Seconds after which a ``FlushOutcomes`` should send what waits (None: nothing
        waits, or one is on its way)."""
        if self.flush_armed or not self.settled():
            return None
        self.flush_armed = True
        return STANDBY_FLUSH_AFTER if standby else FLUSH_AFTER

    def add_report(self, slot: Slot, done: JobsDone, sizer: BatchSizer, queue: str) -> None:
        """Note the jobs a worker's report says ended (and their durations in ``sizer``)."""
        if done.succeeded:
            slot.reported.update(done.succeeded)
            self.acked.extend(done.succeeded)
            sizer.observe_many(len(done.succeeded), done.seconds)
        for outcome in done.failures:
            slot.reported.add(outcome.ref)
            sizer.observe(outcome.duration)
            assert outcome.failure is not None
            self.failed.append((outcome.ref, outcome.failure))
            if outcome.failure.fate is Fate.DEFER:
                log.debug("queue %s: job %s waits: %s", queue, outcome.jid, outcome.error_message)
                continue
            log.info(
                "queue %s: job %s (%s) failed: %s: %s",
                queue,
                outcome.jid,
                outcome.class_name,
                outcome.error_class,
                outcome.error_message,
            )

    def add_settlement(self, settled: Settlement) -> None:
        """Note a dead worker's batch, as its board told."""
        self.acked.extend(settled.acked)
        self.failed.extend(settled.failed)
        self.requeued.extend(settled.requeued)

    def message(
        self, *, want: int, request: int, wait: bool, standby: bool, least: int
    ) -> RecordOutcomes | None:
        """Every outcome so far and a demand of ``want`` jobs (numbered ``request``) in
        one message, or None if there is nothing to say; the outcomes are then sent."""
        if not (self or want or self.reconcile):
            return None
        message = RecordOutcomes(
            acked=tuple(self.acked),
            failed=tuple(self.failed),
            requeued=tuple(self.requeued),
            dequeue=want,
            adopted=tuple(self.adopted),
            wait=wait,
            standby=standby,
            reconcile=self.reconcile,
            request=request,
            least=least,
        )
        self.reconcile = False
        self.acked, self.failed, self.requeued, self.adopted = [], [], [], []
        return message
