"""``QueueManager``: one queue's Redis side on this node.

It takes jobs from ``queue:<q>`` into ``inprogress:<q>:<node>`` for the
WorkersManager (many at once when there is a backlog; when the queue is empty it
waits on a blocking ``BLMOVE`` watched with ``ThespianWatch``, so an enqueue is
picked up at once), records outcomes (ack, retry, dead, requeue), and at start and
stop gives this node's leftover in-progress jobs back to the queue.

Nothing is lost when Redis is away or refuses commands (``OOM``, ``BUSY``...: see
``store.failures``): jobs stay in Redis, outcomes not yet written are kept and written
again (with backoff) until Redis takes them; the log says so once per outage.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from thespian.actors import ThespianWatch, WatchMessage

from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import (
    AttachWorkersManager,
    CheckPaused,
    ChildFailed,
    ChildReady,
    InitQueueManager,
    JobsDequeued,
    MetricsAt,
    PollBlocking,
    QueueManagerStopped,
    QueueState,
    QuietNode,
    RecordOutcomes,
    RedisErrorsSeen,
    RetryRedis,
    StopQueueManager,
)
from verk_actors.config.redis_url import redact_url
from verk_actors.store.failures import REDIS_ERRORS, Outage
from verk_actors.store.queue_store import Pending, QueueStore

log = logging.getLogger(__name__)

IDLE_POLL = 0.05
"""Seconds between polls of an empty queue where no socket can be watched."""

MAX_BACKOFF = 2.0
"""Most seconds between two tries while Redis is away: short, to resume soon after."""


def taken_order(ref: int) -> tuple[bool, int]:
    """Sort key of job references in the order the jobs were taken: the QueueManager's
    own (0, 1, 2...) first, then a standby's (-1, -2, ...)."""
    return ref < 0, abs(ref)


class QueueManager(VerkActor):
    """The Redis side of one queue: take, ack, fail, requeue."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.store: QueueStore | None = None
        self.init: InitQueueManager | None = None
        self.ready = False
        self.inflight: dict[int, bytes] = {}
        self.buffer: list[tuple[int, bytes]] = []
        self.next_ref = 1
        self.demand = 0
        """Jobs the WorkersManager's newest request is still owed."""
        self.request = 0
        """The number of that request."""
        self.pending = Pending()
        self.workers_manager: Any = None
        self.wait_fd: int | None = None
        self.backoff = 0.0
        self.retry_armed = False
        self.poll_armed = False
        self.down = False
        self.stopped = False
        self.paused: bool | None = None
        self.quiet = False
        """The node is quiet: take no new jobs (the WorkersManager sees a pause)."""
        self.wait_for_jobs = True
        self.least = 1
        """Take nothing unless this many jobs wait (the request's ``least``)."""
        self.standby = False
        self.reconcile_due = False
        self.outage: Outage | None = None
        self.metrics: Any = None
        """The MetricsActor's address: told of each Redis failure and recovery."""

    # Every return path hands Thespian the socket to watch while a BLMOVE is out.
    def receiveMessage(self, message: Any, sender: Any) -> Any:
        super().receiveMessage(message, sender)
        if self.wait_fd is not None:
            return ThespianWatch([self.wait_fd])
        return None

    def tree_detail(self) -> str:
        state = "paused" if self.paused else ("Redis down" if self.down else "running")
        waiting = ", waiting for a job" if self.wait_fd is not None else ""
        return f"{state}, {len(self.inflight)} jobs handed out{waiting}"

    # --- start -------------------------------------------------------------------------

    def receiveMsg_InitQueueManager(self, message: InitQueueManager, sender: Any) -> None:
        self.init = message
        self.metrics = message.metrics
        self.quiet = message.quiet
        try:
            self.store = QueueStore(message.settings, message.queue, message.node_id)
        except Exception as exc:
            self.send(sender, ChildFailed(type(exc).__name__, str(exc)))
            raise
        self.send(sender, ChildReady(os.getpid()))
        self._connect()

    def receiveMsg_MetricsAt(self, message: MetricsAt, sender: Any) -> None:
        self.metrics = message.address

    def _connect(self) -> None:
        assert self.store is not None and self.init is not None
        try:
            self.store.register()
            recovered = self.store.recover_leftovers()
        except REDIS_ERRORS as exc:
            self._redis_down("start", exc)
            return
        if recovered:
            log.info(
                "queue %s: gave %d jobs left in progress by node %s back to the queue",
                self.init.queue,
                recovered,
                self.init.node_id,
            )
        self.ready = True
        self._redis_up()
        self.after(self.init.settings.poll_interval, CheckPaused())
        self._work()

    def _redis_down(self, doing: str, exc: BaseException) -> None:
        """Wait (with backoff) before touching Redis again; log once per outage."""
        assert self.init is not None
        if self.outage is None:
            self.outage = Outage(
                log, f"queue {self.init.queue}", redact_url(self.init.settings.redis_url)
            )
        self.outage.failed(exc, doing)
        if self.metrics is not None:
            self.send(self.metrics, RedisErrorsSeen(1))
        self.down = True
        self.backoff = min(max(self.backoff * 2, 0.05), MAX_BACKOFF)
        if not self.retry_armed:
            self.retry_armed = True
            self.after(self.backoff, RetryRedis())

    def _redis_up(self) -> None:
        was_down = self.down
        self.down = False
        self.backoff = 0.0
        if was_down and self.init is not None:
            if self.outage is not None:
                self.outage.ok()
            if self.metrics is not None:
                self.send(self.metrics, RedisErrorsSeen(0, reconnects=1))
            self._reconcile()

    def _reconcile(self) -> None:
        """Give back jobs that moved into in-progress although their answer was lost.

        A take or BLMOVE that Redis ran just as the connection broke moved jobs this
        manager never heard of; so did a worker on standby killed between its BLMOVE
        and its board. Nothing would ever finish them. Every job in the in-progress
        list that is neither handed out nor waiting to be recorded goes back to the
        queue.
        """
        store = self.store
        if store is None:
            return
        if self.standby or self.wait_fd is not None:
            # A worker on standby may hold a job it took and has not reported yet, and
            # our own BLMOVE may have moved one we have not read: wait for neither.
            self.reconcile_due = True
            return
        self.reconcile_due = False
        known = set(self.inflight.values())
        known.update(text for _, text in self.buffer)
        known.update(self.pending.acked)
        known.update(original for original, _, _, _ in self.pending.failed)
        known.update(self.pending.requeued)
        try:
            orphans = store.orphans(known)
            if orphans:
                store.requeue(orphans)
                log.warning(
                    "queue %s: %d jobs had entered in-progress while Redis was unreachable "
                    "and their answer was lost; they went back to the queue",
                    store.queue,
                    len(orphans),
                )
        except REDIS_ERRORS as exc:
            self._redis_down("checking in-progress jobs after an outage", exc)

    def receiveMsg_RetryRedis(self, message: RetryRedis, sender: Any) -> None:
        self.retry_armed = False
        if self.stopped:
            return
        if not self.ready:
            self._connect()
        else:
            self._work(retrying=True)

    # --- from the WorkersManager --------------------------------------------------------

    def receiveMsg_AttachWorkersManager(self, message: AttachWorkersManager, sender: Any) -> None:
        self.workers_manager = sender
        self.demand = self.request = 0
        if self.inflight or self.buffer:
            # A new WorkersManager knows nothing of jobs handed to the one before it.
            texts = [text for _, text in self.buffer] + list(self.inflight.values())
            self.pending.requeued.extend(texts)
            self.inflight.clear()
            self.buffer.clear()
        if self.paused:
            self.send(sender, QueueState(paused=True))  # a new one does not know (quiet)
        self._work()

    def receiveMsg_RecordOutcomes(self, message: RecordOutcomes, sender: Any) -> None:
        if self.workers_manager is None or sender != self.workers_manager:
            self.request = 0  # a new WorkersManager numbers its requests afresh
        self.workers_manager = sender
        self.standby = message.standby
        self.inflight.update(message.adopted)
        if message.adopted and self.store is not None:
            self.store.release_started([text for _, text in message.adopted])
        # Oldest first: ack_jobs removes a run of jobs taken together in a few calls when
        # they come in the order they were taken. Taken jobs' references grow; a standby
        # worker's fall (-1, -2, ...): sorted by size alone, its runs came newest first
        # and went one LREM a job, after an LPOS and an LRANGE that found no run.
        for ref in sorted(message.acked, key=taken_order):
            text = self.inflight.pop(ref, None)
            if text is not None:
                self.pending.acked.append(text)
        for ref, record in message.failed:
            text = self.inflight.pop(ref, None)
            if text is not None:
                self.pending.failed.append((text, record.fate, record.score, record.text))
        for ref in message.requeued:
            text = self.inflight.pop(ref, None)
            if text is not None:
                self.pending.requeued.append(text)
        if message.dequeue and message.request >= self.request:
            self.request = message.request
            self.demand = message.dequeue
            self.wait_for_jobs = message.wait
            self.least = message.least
        if message.reconcile:
            self.reconcile_due = True
        if self.reconcile_due and not self.standby and not self.down:
            self._reconcile()
        self._work()

    # --- the work loop -------------------------------------------------------------------

    def _work(self, *, retrying: bool = False) -> None:
        """Write pending outcomes, hand out jobs if some are wanted, else wait for one."""
        if not self.ready or self.store is None or self.stopped:
            return
        if self.down and not retrying:
            return  # the RetryRedis timer comes back
        if self.buffer and self.demand:
            self._deliver([])
        take = self.demand if self.wait_fd is None and not self.quiet else 0
        if self.quiet:
            self._set_paused(True)
        if not self.pending and not take:
            return
        taken, error = self.store.write(self.pending, take, least=self.least)
        if taken is None:
            self._set_paused(True)
            taken = []
        elif take:
            self._set_paused(False)
        if taken:
            self._deliver(taken)
        if error is not None:
            self._redis_down("writing job outcomes" if self.pending else "taking jobs", error)
            return
        self._redis_up()
        if self.demand and len(taken) < take and self.wait_fd is None:
            # The queue ran dry (also after some jobs): say so now, or wait for more.
            self._nothing_to_take()

    def _nothing_to_take(self) -> None:
        """Jobs are wanted and the queue had none: poll (paused), answer empty, or wait."""
        assert self.store is not None
        if self.paused:
            self._poll_after(self.store.settings.poll_interval)
        elif not self.wait_for_jobs:
            self.demand = 0  # empty: the WorkersManager puts a worker on standby
            self.standby = True  # (its next RecordOutcomes says for sure)
            if self.workers_manager is not None:
                self.send(self.workers_manager, JobsDequeued((), request=self.request))
        else:
            self._start_wait()

    def _set_paused(self, paused: bool) -> None:
        if paused == self.paused or self.store is None:
            return
        self.paused = paused
        log.info("queue %s: %s", self.store.queue, "paused" if paused else "running")
        if self.workers_manager is not None:
            self.send(self.workers_manager, QueueState(paused=paused))

    def receiveMsg_QuietNode(self, message: QuietNode, sender: Any) -> None:
        """The node turned quiet: take no new job; one a wait brings goes back."""
        self.quiet = True
        if self.wait_fd is not None and self.store is not None:
            try:
                self.store.interrupt_wait()
            except REDIS_ERRORS as exc:
                self._redis_down("interrupting its wait for jobs", exc)
        self._set_paused(True)

    def receiveMsg_CheckPaused(self, message: CheckPaused, sender: Any) -> None:
        """While waiting on an idle queue, notice a pause within a poll interval."""
        if self.stopped or self.store is None:
            return
        if (self.wait_fd is not None or self.standby) and not self.down:
            try:
                if self.store.is_paused():
                    if self.wait_fd is not None:
                        self.store.interrupt_wait()
                    if self.standby:
                        self._set_paused(True)  # the WorkersManager ends the standby
            except REDIS_ERRORS as exc:
                self._redis_down("checking whether the queue is paused", exc)
        self.after(self.store.settings.poll_interval, CheckPaused())

    def _deliver(self, texts: list[bytes]) -> None:
        if texts and self.store is not None:
            self.store.release_started(texts)  # unique until start: taken to run now
        jobs = self.buffer
        self.buffer = []
        for text in texts:
            jobs.append((self.next_ref, text))
            self.next_ref += 1
        if not self.demand or self.workers_manager is None:
            self.buffer = jobs
            return
        handed, self.buffer = jobs[: self.demand], jobs[self.demand :]
        for ref, text in handed:
            self.inflight[ref] = text
        self.demand -= len(handed)
        self.send(
            self.workers_manager,
            JobsDequeued(tuple(handed), request=self.request, remaining=self.demand),
        )

    def _start_wait(self) -> None:
        assert self.store is not None
        if self.wait_fd is not None:
            return  # one BLMOVE at a time on the wait connection
        if not self.can_watch:
            self._poll_after(IDLE_POLL)
            return
        try:
            self.wait_fd = self.store.start_wait()
        except REDIS_ERRORS as exc:
            self.wait_fd = None
            self._redis_down("waiting for jobs", exc)

    def _poll_after(self, seconds: float) -> None:
        """Look at the queue again in ``seconds``: one timer at a time, however many
        messages found it paused or empty meanwhile (each used to start another)."""
        if not self.poll_armed:
            self.poll_armed = True
            self.after(seconds, PollBlocking())

    def receiveMsg_PollBlocking(self, message: PollBlocking, sender: Any) -> None:
        self.poll_armed = False
        self._work()

    def receiveMsg_WatchMessage(self, message: WatchMessage, sender: Any) -> None:
        if self.wait_fd is None or self.wait_fd not in message.ready or self.store is None:
            return
        try:
            answer = self.store.finish_wait()
        except REDIS_ERRORS as exc:
            self.wait_fd = None
            self._redis_down("waiting for jobs", exc)
            return
        if not answer.done:
            return  # the pause check answered; the BLMOVE has yet to
        self.wait_fd = None
        if answer.paused or self.quiet:
            if answer.job is not None:
                self.pending.requeued.append(answer.job)  # taken as the pause came: back
            self._set_paused(True)
        elif answer.job is not None:
            # Hand this one over at once; _work then takes the rest of the demand
            # in the same round trip as the outcomes waiting to be written.
            self._deliver([answer.job])
        self._work()

    # --- stop ----------------------------------------------------------------------------

    def receiveMsg_StopQueueManager(self, message: StopQueueManager, sender: Any) -> None:
        requeued = self._give_back()
        self.stopped = True
        self.send(message.reply_to, QueueManagerStopped(requeued + message.requeued))

    def _give_back(self) -> int:
        """Write what is pending and give every job still in progress back to the queue."""
        store = self.store
        if store is None:
            return 0
        self.wait_fd = None
        store.cancel_wait()
        self.pending.requeued.extend(text for _, text in self.buffer)
        self.pending.requeued.extend(self.inflight.values())
        self.buffer.clear()
        self.inflight.clear()
        requeued = 0
        try:
            handed_back = len(self.pending.requeued)
            _, error = store.write(self.pending, 0)
            if error is not None:
                raise error
            requeued = handed_back + store.recover_leftovers()
        except Exception as exc:
            log.error(
                "queue %s: could not give in-progress jobs back at stop (%s: %s); they "
                "stay in %s and return when this node id starts again or its lease expires",
                store.queue,
                type(exc).__name__,
                exc,
                store.inprogress,
            )
        return requeued

    def stopping(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
