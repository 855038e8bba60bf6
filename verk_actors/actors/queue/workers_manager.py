"""``WorkersManager``: hands one queue's jobs to its worker actors and watches them.

It is the parent (so the supervisor) of the queue's worker pool: it creates the
workers, asks the QueueManager for as many jobs as its free workers can take, gives
each free worker a batch, and turns the workers' reports into acks, failures and
requeues. A worker is free only when the worker itself says so (its ``JobsDone``
with ``finished``) or when it has been replaced.

When the queue is empty, one free worker goes on ``Standby``: it waits on the queue
itself and runs each job as it arrives, so an idle queue starts a job without an
actor message in between. The jobs it takes are adopted: reported with their text,
recorded like the others. When a backlog appears, a pause or a drain comes, the
standby ends and jobs flow in batches again.

A worker runs its batch in order, and while it is inside a job it hears no message.
When a job has run ``TAKE_BACK_AFTER``, the jobs behind it in its batch that have not
started are taken back through the board (see ``verk_actors.actors.queue._board``) and go to other
workers: no job waits for another job's run time while a worker is free.

Worker deaths (SIGKILL, OOM, ``os._exit``, a job past its time limit) are read off
the worker's progress board: jobs that ended are recorded as they ended, the job
that was running fails with the reason (it goes to retry, or dead when exhausted),
jobs that never started go back to the queue; then a new worker takes the slot.
Restart strategy: one_for_one per worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from typing import Any

import attrs
from thespian.actors import ChildActorExited

from verk_actors.actors._job_events import outcome_events, started_events
from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import (
    AttachWorkersManager,
    CheckBatches,
    CheckDeadlines,
    CheckStandby,
    ChildFailed,
    ChildReady,
    DescribeTree,
    DrainQueue,
    DrainTimeout,
    EndStandby,
    Event,
    EventsApplied,
    EventsWanted,
    FlushOutcomes,
    InitWorker,
    InitWorkersManager,
    JobsDequeued,
    JobsDone,
    PublishEvents,
    QueueEvent,
    QueueState,
    RecordOutcomes,
    ReplaceWorkers,
    RunJobs,
    Standby,
    StopQueueManager,
    TreeNode,
)
from verk_actors.actors.queue import _board as boards
from verk_actors.actors.queue._batches import BatchSizer, bounded_batch, jobs_wanted, share
from verk_actors.actors.queue._board import Board
from verk_actors.actors.queue._cpu_gauge import CpuGauge, machine_cores
from verk_actors.actors.queue.worker_actor import WorkerActor
from verk_actors.actors.supervisor import RestartIntensity
from verk_actors.jobs.retry import FailureRecord
from verk_actors.jobs.running import died_failure
from verk_actors.store import running_jobs
from verk_actors.store.running_jobs import Running, RunningJobs

log = logging.getLogger(__name__)

FLUSH_OUTCOMES = 500
"""Outcomes that are sent to the QueueManager at once, without waiting for more."""

FLUSH_AFTER = 0.005
"""Seconds outcomes may wait to be sent with others (acks are not urgent)."""

STANDBY_FLUSH_AFTER = 0.05
"""The same while a worker is on standby: its jobs come one at a time. On a queue
trickling 100 jobs a second, a look for a backlog and a ``RecordOutcomes`` per job
cost the two managers 2.7 ms of CPU a job; with this and ``BACKLOG_PROBE_EVERY``,
1.2 ms."""

STANDBY_CHECK = 0.05
"""Seconds between looks at the standby worker's board: one job seen running at two
looks in a row is a long one, and another worker takes over the waiting."""

BACKLOG_PROBE_EVERY = 0.05
"""While a worker is on standby, the most often the queue is looked at for a backlog
(a take that brings batches back if jobs are waiting). A job the standby takes hints
at one, but looking after every job cost a take on an empty queue and two actor
messages per job: on a queue trickling 100 jobs a second, 2.7 ms of the two managers'
CPU per job (27 % of a core)."""

BACKLOG_AT_LEAST = 8
"""A look for a backlog beside a worker on standby takes jobs only if this many wait:
fewer, the standby runs them one by one within a few milliseconds, sooner than a
batch through the two managers. At 1,000 jobs a second the pickup p99 was 4.2-13 ms
(median 4.8) with it against 6.4-38 (median 7.4) without, 4 interleaved runs each."""

REPLACE_AFTER = 0.05
"""Seconds between a worker's death and its replacement."""

DEADLINE_CHECK = 0.25
"""Seconds between looks at the boards for jobs past their time limit."""

ASK_AGAIN_AFTER = 2.0
"""Seconds without an answer to a request for jobs before it is sent again (a request
replaces the one before, so asking twice takes no more jobs)."""

TAKE_BACK_AFTER = 0.2
"""Seconds a job runs before the jobs waiting behind it in its worker's batch are taken
back and handed to other workers. A batch holds about 0.1 s of work, so a job this
long is not one of the quick jobs it was sized for."""

BATCH_CHECK = 0.05
"""Seconds between looks at the boards for batches held up behind a long job (only
while some worker holds jobs it has not started)."""

QUIET_AFTER = 0.25
"""A busy worker silent this long is inside one long job (workers report at least every
``REPORT_EVERY`` between jobs): it stops counting against the active-worker limit,
so a few long jobs never hold up the rest of the queue."""

STARTING = "starting"
FREE = "free"
BUSY = "busy"
BROKEN = "broken"


@attrs.define(eq=False)
class Slot:
    """One worker of the pool."""

    index: int
    address: Any
    board: Board
    state: str = STARTING
    pid: int | None = None
    batch: int = 0
    jobs: list[tuple[int, bytes]] = attrs.field(factory=list)
    reported: set[int] = attrs.field(factory=set)
    kill_reason: str | None = None
    requeue_running: bool = False
    heard_at: float = 0.0
    standby: bool = False
    """Its batch is a standby: it takes jobs itself, numbered from ``first_ref`` down."""
    first_ref: int = 0
    reports: int = 0
    """Reports of the current batch received so far."""
    last_report: int | None = None
    """The number of the batch's ``finished`` report, once it has come."""
    taken_back: set[int] = attrs.field(factory=set)
    """Jobs of the batch taken back from behind a long job (others run them)."""
    take_back_tried: bool = False

    def begin(self, batch: int, jobs: list[tuple[int, bytes]], now: float) -> None:
        """A new batch (or standby) goes to this worker."""
        self.state = BUSY
        self.batch = batch
        self.jobs = jobs
        self.reported = set()
        self.reports = 0
        self.last_report = None
        self.heard_at = now
        self.taken_back = set()
        self.take_back_tried = False

    def in_hand(self) -> int:
        """Jobs of its batch it has not reported and that were not taken back."""
        return len(self.jobs) - len(self.reported) - len(self.taken_back)

    def note_report(self, seq: int, *, finished: bool) -> bool:
        """Count one report of the current batch; True once the batch is over: its
        ``finished`` report (number ``seq``) and every report before it have come, in
        whatever order Thespian delivered them."""
        self.reports += 1
        if finished:
            self.last_report = seq
        return self.last_report is not None and self.reports >= self.last_report


class WorkersManager(VerkActor):
    """Dispatcher and supervisor of one queue's workers."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitWorkersManager | None = None
        self.slots: list[Slot] = []
        self.by_address: dict[str, Slot] = {}
        self.held: list[tuple[int, bytes]] = []
        self.asked = 0
        """Jobs the QueueManager still owes the newest request (as far as we know)."""
        self.request = 0
        """The number of the newest request for jobs."""
        self.asked_at = 0.0
        self.next_batch = 1
        self.sizer = BatchSizer(100)
        self.gauge = CpuGauge(machine_cores())
        self.acked: list[int] = []
        self.failed: list[tuple[int, FailureRecord]] = []
        self.requeued: list[int] = []
        self.draining = False
        self.drain_reply: Any = None
        self.drain_token = 0
        self.idle_restarts = RestartIntensity(5, 10.0)
        self.replace: list[tuple[int, int | None]] = []
        self.exiting = False
        self.flush_armed = False
        self.drain_requeued = 0
        self.paused = False
        self.events: Any = None
        self.job_events = False
        self.events_told = False
        self.standby: Slot | None = None
        self.standby_idle = False
        self.standby_seen: tuple[int, int] | None = None
        self.probed_at = 0.0
        """When jobs taken on standby last sent a look for a backlog (monotonic)."""
        self.next_adopted_ref = -1
        self.adopted: list[tuple[int, bytes]] = []
        self.reconcile = False
        self.worker_retries: dict[str, bool | int] = {}
        """Each worker class's ``retry`` option, as the workers report it (``ChildReady``)."""
        self.batch_check_armed = False
        self.running_jobs: RunningJobs | None = None
        """Shows in Redis which jobs the workers run (for Sidekiq's Busy page)."""
        self.handed_again: set[int] = set()
        """Jobs taken back and not handed out again yet (their start was announced)."""

    @property
    def queue(self) -> str:
        assert self.init is not None
        return self.init.queue.name

    # --- start ----------------------------------------------------------------------------

    def receiveMsg_InitWorkersManager(self, message: InitWorkersManager, sender: Any) -> None:
        self.init = message
        if not self.events_told:
            # An EventsWanted the supervisor sent after this init may come first
            # (Thespian does not keep the order of messages): it is the newer word.
            self.events = message.events
            self.job_events = message.job_events
        self.sizer = BatchSizer(max(1, min(message.settings.max_batch, boards.MAX_JOBS)))
        for index in range(message.queue.concurrency):
            self._start_worker(index)
        if self.running_jobs is None:
            self.running_jobs = RunningJobs(message.settings, message.node_id, self.queue)
        self.send(message.queue_manager, AttachWorkersManager())
        self.send(sender, ChildReady(os.getpid()))
        self.after(DEADLINE_CHECK, CheckDeadlines())

    def _start_worker(self, index: int) -> None:
        assert self.init is not None
        board = Board.create()
        address = self.createActor(WorkerActor)
        self.slots.append(Slot(index, address, board))
        self.send(
            address,
            InitWorker(self.init.settings, self.queue, index, str(board.path), self.init.node_id),
        )

    def tree_node(self, message: DescribeTree) -> TreeNode:
        workers = tuple(
            TreeNode(
                0,
                f"worker {slot.index}",
                "WorkerActor",
                slot.pid,
                state=slot.state,
                detail=(
                    "on standby: waits on the queue itself"
                    if slot is self.standby
                    else f"{slot.in_hand()} jobs in hand"
                    if slot.state == BUSY
                    else ""
                ),
            )
            for slot in sorted(self.slots, key=lambda s: s.index)
        )
        busy = sum(1 for s in self.slots if s.state == BUSY)
        return TreeNode(
            message.request,
            message.name or "workers_manager",
            type(self).__name__,
            os.getpid(),
            strategy="one_for_one",
            detail=f"{busy} busy, {len(self.held)} jobs held{self.gauge.detail(len(self.slots))}"
            + (", paused" if self.paused else ""),
            children=workers,
        )

    def _slot(self, address: Any) -> Slot | None:
        # ActorAddress is not hashable and its == is slow; the address createActor
        # returned may print differently from the one a message comes from, so each
        # sender's text is matched with == once, then remembered.
        key = str(address)
        slot = self.by_address.get(key)
        if slot is None:
            slot = next((s for s in self.slots if s.address == address), None)
            if slot is not None:
                self.by_address[key] = slot
        return slot

    def receiveMsg_ChildReady(self, message: ChildReady, sender: Any) -> None:
        slot = self._slot(sender)
        if slot is None:
            return
        slot.pid = message.pid
        self.worker_retries = dict(message.worker_retries) or self.worker_retries
        slot.board.unlink()
        if slot.state == STARTING:
            slot.state = FREE
        self._run()

    def receiveMsg_ChildFailed(self, message: ChildFailed, sender: Any) -> None:
        slot = self._slot(sender)
        if slot is None:
            return
        slot.state = BROKEN
        log.error(
            "queue %s: worker %d cannot start (%s: %s); its slot stays empty until the "
            "queue restarts",
            self.queue,
            slot.index,
            message.error_class,
            message.message,
        )

    # --- jobs -----------------------------------------------------------------------------

    def receiveMsg_QueueState(self, message: QueueState, sender: Any) -> None:
        self.paused = message.paused
        if message.paused:
            self._end_standby()
        if not message.paused:
            self._queue_event("running")
        elif any(s.state == BUSY for s in self.slots):
            self._queue_event("pausing")
        else:
            self._queue_event("paused")

    def receiveMsg_EventsWanted(self, message: EventsWanted, sender: Any) -> None:
        self.events = message.manager
        self.job_events = message.jobs
        self.events_told = True
        if message.token and message.manager is not None:
            self.send(message.manager, EventsApplied(message.token))

    def _publish(self, events: list[Event]) -> None:
        if self.events is not None and events:
            self.send(self.events, PublishEvents(tuple(events)))

    def _queue_event(self, state: str) -> None:
        self._publish([QueueEvent(self.queue, state, time.time())])

    def receiveMsg_JobsDequeued(self, message: JobsDequeued, sender: Any) -> None:
        if message.request == self.request:
            # Only ever lower it: Thespian may deliver an earlier answer after a later
            # one (the queue's "empty" before its last jobs).
            self.asked = min(self.asked, message.remaining)
        if not message.jobs:
            self._queue_is_empty()
            return
        if self.standby is not None and not message.remaining:
            # The whole request was there: a backlog, which batches move faster than
            # one BLMOVE a job. A request the queue could not fill found only the jobs
            # that came since the last look: another worker runs them and the standby
            # goes on (ending it for them, then starting it again, made a queue of
            # 1,000 jobs a second cost the node 1.3 cores).
            self._end_standby()
        self.sizer.observe_texts(len(message.jobs), sum(len(text) for _, text in message.jobs))
        self.held.extend(message.jobs)
        if self.draining:
            self.drain_requeued += len(self.held)
            self.requeued.extend(ref for ref, _ in self.held)
            self.held.clear()
        self._run()

    def receiveMsg_JobsDone(self, message: JobsDone, sender: Any) -> None:
        slot = self._slot(sender)
        if slot is None or slot.batch != message.batch:
            return
        self.gauge.observe(*message.load)
        slot.heard_at = time.monotonic()
        if message.taken:
            self._adopt(slot, message.taken)
        if message.succeeded:
            slot.reported.update(message.succeeded)
            self.acked.extend(message.succeeded)
            self.sizer.observe_many(len(message.succeeded), message.seconds)
        for outcome in message.failures:
            slot.reported.add(outcome.ref)
            self.sizer.observe(outcome.duration)
            assert outcome.failure is not None
            self.failed.append((outcome.ref, outcome.failure))
            log.info(
                "queue %s: job %s (%s) failed: %s: %s",
                self.queue,
                outcome.jid,
                outcome.class_name,
                outcome.error_class,
                outcome.error_message,
            )
        if message.details and self.job_events and self.events is not None:
            self._publish(outcome_events(self.queue, message))
        if slot.note_report(message.seq, finished=message.finished):
            if self.paused and not any(s.state == BUSY for s in self.slots if s is not slot):
                self._queue_event("paused")
            # A job the worker did not report did not run: it goes back to the queue
            # (unless it was taken back: another worker has it).
            if slot.in_hand():
                self.requeued.extend(
                    ref
                    for ref, _ in slot.jobs
                    if ref not in slot.reported and ref not in slot.taken_back
                )
            slot.state = FREE
            slot.jobs = []
            slot.reported = set()
            slot.standby = False
            if slot is self.standby:
                self.standby = None
        self._run()

    # --- standby ---------------------------------------------------------------------------

    def _queue_is_empty(self) -> None:
        """The QueueManager found the queue empty: a free worker waits on it itself."""
        self.standby_idle = True
        if self.standby is not None or self.draining or self.paused:
            return
        slot = next((s for s in self.slots if s.state == FREE), None)
        if slot is None:
            self.standby_idle = False
            self._run()  # every worker is busy: the QueueManager waits instead
            return
        slot.begin(self.next_batch, [], time.monotonic())
        self.next_batch += 1
        slot.first_ref = self.next_adopted_ref
        slot.standby = True
        self.next_adopted_ref -= boards.MAX_JOBS
        self.standby = slot
        self.standby_seen = None
        self.send(slot.address, Standby(slot.batch, slot.first_ref))
        self.after(STANDBY_CHECK, CheckStandby(slot.batch))

    def receiveMsg_CheckStandby(self, message: CheckStandby, sender: Any) -> None:
        slot = self.standby
        if slot is None or slot.batch != message.batch or self.exiting:
            return
        batch, index, _, _ = slot.board.running()
        running = (batch, index) if batch == slot.batch and index >= 0 else None
        if running is not None and running == self.standby_seen:
            # A long job: this worker stops waiting after it; another one takes over.
            self._end_standby()
            self.standby = None
            self.standby_idle = False
            self._run()
            return
        self.standby_seen = running
        self.after(STANDBY_CHECK, message)

    def _end_standby(self) -> None:
        slot = self.standby
        if slot is not None:
            self.send(slot.address, EndStandby(slot.batch))

    def _adopt(self, slot: Slot, taken: tuple[tuple[int, bytes], ...]) -> None:
        """Jobs the worker on standby took: the QueueManager learns their texts."""
        slot.jobs.extend(taken)
        self.adopted.extend(taken)
        now = time.monotonic()
        if now - self.probed_at >= BACKLOG_PROBE_EVERY:
            self.probed_at = now
            self.standby_idle = False  # jobs arrive: look for a backlog
        if self.job_events:
            self._publish(started_events(self.queue, list(taken)))

    def _run(self) -> None:
        """Hand held jobs to free workers, report outcomes, ask for more."""
        if self.init is None:
            return
        # The first free slots in pool order: the same few processes stay warm.
        free = [s for s in self.slots if s.state == FREE]
        now = time.monotonic()
        busy = quiet = 0
        for slot in self.slots:
            if slot.state == BUSY:
                if now - slot.heard_at < QUIET_AFTER and not slot.taken_back:
                    busy += 1
                else:
                    quiet += 1  # inside a long job
        active = self.gauge.active_limit(len(self.slots), long_jobs=quiet > 0)
        size = bounded_batch(self.sizer.size, active)
        del free[max(0, active - busy) :]
        # No more jobs than free slots that may take some: one each, never two queued
        # behind each other (a job may be slower than the average says); the rest wait
        # for the next slot.
        few = len(self.held) <= len(free)
        while self.held and free:
            count = 1 if few else share(len(self.held), len(free), size)
            self._hand_out(free.pop(0), count)
        want = 0
        if not (
            self.draining or self.asked or (self.standby is not None and self.standby_idle)
        ):
            # One request at a time: a bigger one sent while jobs of the last are on
            # their way would bring both. Fast jobs: keep batches ready, so a worker
            # that finishes gets its next one without waiting for Redis. Slow jobs:
            # no prefetch.
            want = jobs_wanted(
                len(free),
                size,
                len(self.held),
                prefetch=min(active, len(self.slots)) * size if size > 1 else 0,
                in_workers=sum(s.in_hand() for s in self.slots if s.state == BUSY),
            )
        outcomes = len(self.acked) + len(self.failed) + len(self.requeued)
        if want or self.failed or self.draining or outcomes >= FLUSH_OUTCOMES:
            self._send_outcomes(want)
        elif outcomes and not self.flush_armed:
            self.flush_armed = True
            self.after(
                FLUSH_AFTER if self.standby is None else STANDBY_FLUSH_AFTER, FlushOutcomes()
            )
        if self.draining:
            self._finish_drain_if_idle()

    def _hand_out(self, slot: Slot, count: int) -> None:
        """Give the next ``count`` held jobs to ``slot``, a free worker."""
        jobs, self.held = self.held[:count], self.held[count:]
        slot.begin(self.next_batch, jobs, time.monotonic())
        self.next_batch += 1
        self.send(slot.address, RunJobs(slot.batch, tuple(jobs), detail=self.job_events))
        if self.job_events:
            self._announce(jobs)
        if count > 1:
            self._arm_batch_check()  # a long job may hold the others up

    def _announce(self, jobs: list[tuple[int, bytes]]) -> None:
        """Job events: these jobs are handed to a worker (once per job, even if it is
        taken back and handed out again)."""
        if self.handed_again:
            again = self.handed_again
            jobs = [job for job in jobs if job[0] not in again]
            again.difference_update(ref for ref, _ in jobs)
        self._publish(started_events(self.queue, jobs))

    def receiveMsg_FlushOutcomes(self, message: FlushOutcomes, sender: Any) -> None:
        self.flush_armed = False
        if self.acked or self.failed or self.requeued or self.adopted:
            self._send_outcomes(0)

    def _send_outcomes(self, want: int) -> None:
        """One message to the QueueManager: every outcome so far, and the new demand."""
        assert self.init is not None
        if not (
            self.acked or self.failed or self.requeued or self.adopted or want or self.reconcile
        ):
            return
        self.send(
            self.init.queue_manager,
            RecordOutcomes(
                acked=tuple(self.acked),
                failed=tuple(self.failed),
                requeued=tuple(self.requeued),
                dequeue=want,
                adopted=tuple(self.adopted),
                # Not waiting lets a free worker go on standby when the queue is empty.
                wait=self.draining or self.paused,
                standby=any(s.standby for s in self.slots),
                reconcile=self.reconcile,
                request=self.request + 1 if want else self.request,
                least=BACKLOG_AT_LEAST if self.standby is not None else 1,
            ),
        )
        self.reconcile = False
        self.acked, self.failed, self.requeued, self.adopted = [], [], [], []
        if want:
            self.request += 1
            self.asked = want
            self.asked_at = time.monotonic()

    # --- watching workers -----------------------------------------------------------------

    def receiveMsg_CheckDeadlines(self, message: CheckDeadlines, sender: Any) -> None:
        if self.exiting:
            return
        now = time.monotonic()
        for slot in self.slots:
            if slot.state != BUSY or slot.pid is None or slot.kill_reason is not None:
                continue
            batch, index, deadline, _ = slot.board.running()
            if batch == slot.batch and index >= 0 and deadline and now > deadline:
                self._kill(slot, "timed out: it ran past its time limit and its worker was killed")
        self.after(DEADLINE_CHECK, CheckDeadlines())
        self._show_running(now)
        if self.asked and not self.held and now - self.asked_at > ASK_AGAIN_AFTER:
            self.asked = 0  # no answer for long (a lost word): ask anew, it replaces
        if self.held or not self.asked:
            self._run()  # workers gone quiet in long jobs no longer hold the others back

    # --- batches behind a long job -----------------------------------------------------------

    def _arm_batch_check(self) -> None:
        if not self.batch_check_armed:
            self.batch_check_armed = True
            self.after(BATCH_CHECK, CheckBatches())

    def receiveMsg_CheckBatches(self, message: CheckBatches, sender: Any) -> None:
        self.batch_check_armed = False
        if self.exiting:
            return
        now = time.monotonic()
        waiting = False
        taken = 0
        for slot in self.slots:
            if (
                slot.state != BUSY
                or slot.standby
                or slot.take_back_tried
                or slot.kill_reason is not None
                or len(slot.jobs) < 2
            ):
                continue
            waiting = True
            running = slot.board.running()
            if (
                running.batch == slot.batch
                and 0 <= running.job < len(slot.jobs) - 1
                and now - running.started >= TAKE_BACK_AFTER
            ):
                taken += self._take_back(slot, running.job + 1)
        if waiting:
            self.after(BATCH_CHECK, message)
            self.batch_check_armed = True
        if taken:
            self._run()

    def _take_back(self, slot: Slot, first: int) -> int:
        """Take back the jobs of ``slot``'s batch from ``first`` on that it has not
        started (it is inside a long job); they go first to the next free workers."""
        slot.take_back_tried = True
        indexes = slot.board.take_back(slot.batch, first, len(slot.jobs))
        if not indexes:
            return 0
        jobs = [slot.jobs[i] for i in indexes]
        slot.taken_back.update(ref for ref, _ in jobs)
        if self.draining:  # stopping: they go back to the queue, as held jobs do
            self.requeued.extend(ref for ref, _ in jobs)
            self.drain_requeued += len(jobs)
            return len(jobs)
        self.held[:0] = jobs
        if self.job_events:
            self.handed_again.update(ref for ref, _ in jobs)
        log.info(
            "queue %s: worker %d is inside a long job; %d jobs waiting behind it in its "
            "batch go to other workers",
            self.queue,
            slot.index,
            len(jobs),
        )
        return len(jobs)

    def _show_running(self, now: float) -> None:
        """Write which jobs the workers run now, read off their boards (jobs handed
        to a worker and not started yet are not running)."""
        shown = self.running_jobs
        if shown is None or not shown.due(now):
            return
        wall = time.time()
        running: dict[str, Running] = {}
        for slot in self.slots:
            if slot.state != BUSY:
                continue
            job = slot.board.running()
            if job.batch != slot.batch or job.job < 0:
                continue
            text = self._text_of(slot, job.job)
            if text is not None:
                running[running_jobs.field(self.queue, slot.index)] = Running(
                    (slot.batch, job.job), text, wall - (now - job.started)
                )
        shown.publish(running, now)

    def _text_of(self, slot: Slot, index: int) -> bytes | None:
        """The text of job ``index`` of ``slot``'s batch (a standby's: the ``index``-th
        it took, reported or still on its board)."""
        if not slot.standby:
            return slot.jobs[index][1] if index < len(slot.jobs) else None
        ref = slot.first_ref - index
        for taken, text in reversed(slot.jobs):
            if taken == ref:
                return text
        return next((text for at, text in slot.board.held_texts() if at == index), None)

    def _kill(self, slot: Slot, reason: str, *, requeue_running: bool = False) -> None:
        slot.kill_reason = reason
        slot.requeue_running = requeue_running
        if slot.pid is None:
            return
        log.warning(
            "queue %s: killing worker %d (pid %d): %s", self.queue, slot.index, slot.pid, reason
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(slot.pid, signal.SIGKILL)

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Any) -> None:
        slot = self._slot(message.childAddress)
        if slot is None or self.exiting:
            # Exiting: the boards are closed and the jobs stay in progress; the
            # QueueManager gives them back when it stops or starts again.
            return
        self.slots.remove(slot)
        self.by_address = {k: v for k, v in self.by_address.items() if v is not slot}
        if slot is self.standby:
            self.standby = None
        if slot.standby:
            self._adopt_from_board(slot)
            self.reconcile = True
        if slot.state == BUSY:
            self._settle_dead_batch(slot)
            self.replace.append((slot.index, None))
        else:
            self.replace.append((slot.index, slot.pid))
        slot.board.close()
        # Replace it a moment later: when the whole node stops, Thespian stops the
        # workers before this manager hears its own ActorExitRequest.
        self.after(REPLACE_AFTER, ReplaceWorkers())
        self._run()

    def receiveMsg_ReplaceWorkers(self, message: ReplaceWorkers, sender: Any) -> None:
        replace, self.replace = self.replace, []
        if self.exiting or self.draining:
            return
        for index, idle_pid in replace:
            if idle_pid is not None:
                log.warning("queue %s: idle worker %d (pid %d) exited", self.queue, index, idle_pid)
                if not self.idle_restarts.allow(time.monotonic()):
                    log.error(
                        "queue %s: workers keep dying while idle; not restarting worker %d",
                        self.queue,
                        index,
                    )
                    continue
            self._start_worker(index)

    def _adopt_from_board(self, slot: Slot) -> None:
        """A worker on standby died: adopt the jobs it took and whose report has not come.

        A job its board does not show started was never run: it died between its
        BLMOVE and its board, and the QueueManager's reconcile gives it back.
        """
        held = slot.board.held_texts()
        if not held:
            return
        statuses = slot.board.statuses(slot.batch, held[-1][0] + 1)
        known = {ref for ref, _ in slot.jobs}
        taken = tuple(
            (slot.first_ref - index, text)
            for index, text in held
            if slot.first_ref - index not in known and statuses[index] != boards.NOT_STARTED
        )
        if taken:
            self._adopt(slot, taken)

    def _settle_dead_batch(self, slot: Slot) -> None:
        """Record the batch of a dead worker from its board: ran, died in, or never began."""
        assert self.init is not None
        # A batch's jobs are on its board in order; a standby's by the number it took
        # them in (its reports may come in any order).
        indexes = (
            [slot.first_ref - ref for ref, _ in slot.jobs]
            if slot.standby
            else list(range(len(slot.jobs)))
        )
        on_board = slot.board.statuses(slot.batch, max(indexes, default=-1) + 1)
        statuses = [on_board[index] for index in indexes]
        timed_out = slot.kill_reason is not None and slot.kill_reason.startswith("timed out")
        reason = slot.kill_reason or "the worker process died while running the job"
        error_class = "JobTimeoutError" if timed_out else "WorkerDiedError"
        counts = {"acked": 0, "failed": 0, "requeued": 0}
        for (ref, text), status in zip(slot.jobs, statuses, strict=True):
            if ref in slot.reported or ref in slot.taken_back:
                continue
            if status == boards.SUCCEEDED:
                self.acked.append(ref)
                counts["acked"] += 1
            elif status in (boards.NOT_STARTED, boards.GIVEN_BACK) or (
                status == boards.RUNNING and slot.requeue_running
            ):
                self.requeued.append(ref)
                counts["requeued"] += 1
            else:
                why = (
                    reason
                    if status == boards.RUNNING
                    else "the job failed, and its worker died before reporting why"
                )
                record = died_failure(
                    text,
                    reason=why,
                    error_class=error_class,
                    queue=self.queue,
                    settings=self.init.settings,
                    worker_retries=self.worker_retries,
                )
                self.failed.append((ref, record))
                counts["failed"] += 1
        if self.draining:
            self.drain_requeued += counts["requeued"]
        log.warning(
            "queue %s: worker %d (pid %s) died during batch %d (%s); settled from its "
            "board: %d done, %d failed, %d back to the queue",
            self.queue,
            slot.index,
            slot.pid,
            slot.batch,
            reason,
            counts["acked"],
            counts["failed"],
            counts["requeued"],
        )

    # --- drain and stop --------------------------------------------------------------------

    def receiveMsg_DrainQueue(self, message: DrainQueue, sender: Any) -> None:
        self.draining = True
        self._end_standby()
        self.drain_reply = sender
        self.drain_requeued += len(self.held)
        self.requeued.extend(ref for ref, _ in self.held)
        self.held.clear()
        self.drain_token += 1
        self.after(message.timeout, DrainTimeout(self.drain_token))
        self._run()

    def receiveMsg_DrainTimeout(self, message: DrainTimeout, sender: Any) -> None:
        if message.token != self.drain_token or not self.draining:
            return
        for slot in self.slots:
            if slot.state == BUSY:
                self._kill(slot, "still running at shutdown", requeue_running=True)

    def _finish_drain_if_idle(self) -> None:
        if self.drain_reply is None:
            return
        if any(s.state == BUSY for s in self.slots):
            return
        assert self.init is not None
        self.send(
            self.init.queue_manager,
            StopQueueManager(reply_to=self.drain_reply, requeued=self.drain_requeued),
        )
        self.drain_reply = None

    def stopping(self) -> None:
        self.exiting = True
        for slot in self.slots:
            slot.board.close()
        if self.running_jobs is not None:
            self.running_jobs.close()
            self.running_jobs = None
