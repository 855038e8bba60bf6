"""``WorkersManager``: hands one queue's jobs to its worker actors and watches them.

It is the parent (so the supervisor) of the queue's worker pool: it creates the
workers, asks the QueueManager for jobs, hands them out in batches to free workers,
and turns the workers' reports into acks, failures and requeues for the QueueManager.
The actor composes its rooms and does the messaging and the timers:

- ``_slots``: the pool, one slot per worker, and the states a slot goes through;
- ``_dispatch``: the jobs held, the batches handed out, the request for more
  (``_batches`` sizes them, ``_cpu_gauge`` says how many workers run at once);
- ``_outcomes``: what the QueueManager has not heard yet, sent a few at a time;
- ``_standby``: on an idle queue one free worker waits on the queue itself;
- ``_settle``: what a worker's progress board says: a job past its time limit, jobs
  held up behind a long job (taken back), the batch of a worker that died;
- ``_recycle``, ``_lazy``: workers recycled after many jobs, started and stopped lazily;
- ``_event_demand``: which queue and job events someone wants;
- ``_history``: the jobs' run times, for the metrics history and the MetricsActor;

Restart strategy: one_for_one per worker; a worker's batch is settled from its board
before a new worker takes the slot.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, ClassVar

from thespian.actors import ActorExitRequest, ChildActorExited

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
    EventsWanted,
    FlushOutcomes,
    InitWorkersManager,
    JobsDequeued,
    JobsDone,
    MetricsAt,
    PublishEvents,
    QueueState,
    ReplaceWorkers,
    ReportFigures,
    RunJobs,
    TreeNode,
)
from verk_actors.actors.queue import _board as boards
from verk_actors.actors.queue import _recycle as recycle
from verk_actors.actors.queue import _settle as settle
from verk_actors.actors.queue._board import Board
from verk_actors.actors.queue._dispatch import Dispatch
from verk_actors.actors.queue._drain import Drain
from verk_actors.actors.queue._event_demand import EventDemand
from verk_actors.actors.queue._history import REPORT_FIGURES, JobCounts
from verk_actors.actors.queue._lazy import LazyPool
from verk_actors.actors.queue._outcomes import Outcomes
from verk_actors.actors.queue._settle import BATCH_CHECK, DEADLINE_CHECK
from verk_actors.actors.queue._slots import BUSY, REPLACE_AFTER, Pool, Slot
from verk_actors.actors.queue._standby import STANDBY_CHECK, StandbyKeeper
from verk_actors.actors.queue.worker_actor import WorkerActor
from verk_actors.actors.supervisor import Strategy
from verk_actors.store.running_jobs import RunningJobs

log = logging.getLogger(__name__)


class WorkersManager(VerkActor):
    """Dispatcher and supervisor of one queue's workers."""

    strategy: ClassVar[Strategy] = Strategy.ONE_FOR_ONE
    """Each dead worker is replaced alone (its batch settled from its board)."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitWorkersManager | None = None
        self.pool = Pool()
        self.dispatch = Dispatch()
        self.outcomes = Outcomes()
        self.standby = StandbyKeeper()
        self.events = EventDemand()
        self.drain = Drain()
        self.exiting = False
        self.paused = False
        self.worker_retries: dict[str, bool | int] = {}
        """Each worker class's ``retry`` option, as the workers report it (``ChildReady``)."""
        self.batch_check_armed = False
        self.running_jobs: RunningJobs | None = None
        """Shows in Redis which jobs the workers run (for Sidekiq's Busy page)."""
        self.tally: JobCounts | None = None
        """The jobs' outcomes and run times; None: neither metrics nor their history."""
        self.metrics: Any = None
        """The MetricsActor's address."""

    @property
    def queue(self) -> str:
        assert self.init is not None
        return self.init.queue.name

    # --- the pool ----------------------------------------------------------------------------

    def receiveMsg_InitWorkersManager(self, message: InitWorkersManager, sender: Any) -> None:
        self.init = message
        self.events.init(message)
        swept = boards.sweep_orphans()
        if swept:
            log.info("queue %s: removed %d board file(s) of managers that died", self.queue, swept)
        self.dispatch.sizer = self.dispatch.new_sizer(
            max(1, min(message.settings.max_batch, boards.MAX_JOBS))
        )
        for index in self.dispatch.lazy_pool(LazyPool.of(message.queue, message.settings)):
            self._start_worker(index)
        if self.running_jobs is None:
            self.running_jobs = RunningJobs(message.settings, message.node_id, self.queue)
        self.send(message.queue_manager, AttachWorkersManager())
        self.send(sender, ChildReady(os.getpid()))
        self.after(DEADLINE_CHECK, CheckDeadlines())
        self.metrics = message.metrics
        if self.tally is None:
            self.tally = JobCounts.start(message.settings, message.node_id, self.queue)
            if self.tally is not None:
                self.after(REPORT_FIGURES, ReportFigures())

    def _start_worker(self, index: int) -> None:
        assert self.init is not None
        board = Board.create()
        try:
            address = self.createActor(WorkerActor)
        except BaseException:
            board.close()  # no worker will ever open it
            raise
        self.send(address, recycle.new_worker(self.pool, self.init, index, address, board))

    def tree_node(self, message: DescribeTree) -> TreeNode:
        busy = sum(1 for s in self.pool.slots if s.state == BUSY)
        held, limit = len(self.dispatch.held), self.dispatch.gauge.detail(len(self.pool))
        return TreeNode(
            message.request,
            message.name or "workers_manager",
            type(self).__name__,
            os.getpid(),
            strategy=self.strategy.value,
            detail=f"{busy} busy, {held} jobs held{limit}" + (", paused" if self.paused else ""),
            children=self.pool.tree(self.standby.slot),
        )

    def receiveMsg_ChildReady(self, message: ChildReady, sender: Any) -> None:
        slot = self.pool.find(sender)
        if slot is None:
            return
        slot.ready(message.pid)
        self.worker_retries = dict(message.worker_retries) or self.worker_retries
        self._run()

    def receiveMsg_ChildFailed(self, message: ChildFailed, sender: Any) -> None:
        slot = self.pool.find(sender)
        if slot is not None:
            slot.broken(self.queue, f"{message.error_class}: {message.message}")

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Any) -> None:
        slot = self.pool.find(message.childAddress)
        if slot is None or self.exiting:
            # Exiting: the boards are closed and the jobs stay in progress; the
            # QueueManager gives them back when it stops or starts again.
            return
        assert self.init is not None
        self.pool.exited(slot)
        self.standby.gone(slot)
        if slot.standby:
            taken = settle.adopt_from_board(slot)
            if taken:
                self._adopt(slot, taken)
            self.outcomes.reconcile = True
        if slot.state == BUSY:
            settled = settle.settle_dead_batch(
                slot, self.queue, self.init.settings, self.worker_retries
            )
            self.outcomes.add_settlement(settled)
            if self.tally is not None:
                self.tally.settled(dict(slot.jobs), settled, settle.kill_kind(slot.kill_reason))
            if self.drain.active:
                self.drain.requeued += len(settled.requeued)
        slot.board.close()
        # Replace it a moment later: when the whole node stops, Thespian stops the
        # workers before this manager hears its own ActorExitRequest.
        self.after(REPLACE_AFTER, ReplaceWorkers())
        self._run()

    def receiveMsg_ReplaceWorkers(self, message: ReplaceWorkers, sender: Any) -> None:
        if self.exiting or self.drain.active:
            self.pool.replace.clear()
            return
        started, recycled = self.pool.to_replace(self.queue, time.monotonic())
        for index in started:
            self._start_worker(index)
        if self.tally is not None:
            self.tally.worker_replaced(len(started) - recycled, recycled)

    # --- metrics -----------------------------------------------------------------------------

    def receiveMsg_MetricsAt(self, message: MetricsAt, sender: Any) -> None:
        self.metrics = message.address
        if self.tally is not None:
            self.tally.changed = True  # a new MetricsActor hears the totals at once

    def receiveMsg_ReportFigures(self, message: ReportFigures, sender: Any) -> None:
        if self.exiting or self.tally is None:
            return
        self.after(REPORT_FIGURES, message)
        busy = sum(1 for s in self.pool.slots if s.state == BUSY and not s.standby)
        figures = self.tally.figures(busy, len(self.pool))
        if self.metrics is not None and figures is not None:
            self.send(self.metrics, figures)

    # --- events ------------------------------------------------------------------------------

    def receiveMsg_QueueState(self, message: QueueState, sender: Any) -> None:
        self.paused = message.paused
        if message.paused:
            self._end_standby()
            self._queue_event("pausing" if self.pool.any_busy() else "paused")
        else:
            self._queue_event("running")

    def receiveMsg_EventsWanted(self, message: EventsWanted, sender: Any) -> None:
        applied = self.events.wanted(message)
        if applied is not None:
            self.send(message.manager, applied)

    def _publish(self, message: PublishEvents | None) -> None:
        if message is not None:
            self.send(self.events.manager, message)

    def _queue_event(self, state: str) -> None:
        self._publish(self.events.queue_state(self.queue, state))

    # --- jobs ----------------------------------------------------------------------------------

    def receiveMsg_JobsDequeued(self, message: JobsDequeued, sender: Any) -> None:
        self.dispatch.answered(message)
        if not message.jobs:
            self._queue_is_empty()
            return
        if self.standby.slot is not None and not message.remaining:
            # The whole request was there: a backlog, which batches move faster than
            # one BLMOVE a job. A request the queue could not fill found only the jobs
            # that came since the last look: another worker runs them and the standby
            # goes on (ending and restarting it for each such look costs more CPU).
            self._end_standby()
        self.dispatch.hold(message.jobs)
        if self.drain.active:
            self._give_back(self.dispatch.release())
        self._run()

    def receiveMsg_JobsDone(self, message: JobsDone, sender: Any) -> None:
        slot = self.pool.find(sender)
        if slot is None or slot.batch != message.batch:
            return
        self.dispatch.gauge.observe(*message.load)
        slot.heard_at = time.monotonic()
        if message.taken:
            self._adopt(slot, message.taken)
        self.outcomes.add_report(slot, message, self.dispatch.sizer, self.queue)
        recycle.noted(slot, message)
        if self.tally is not None:
            self.tally.done(message)
        if message.details:
            self._publish(self.events.done(self.queue, message))
        if slot.note_report(message.seq, finished=message.finished):
            if self.paused and not self.pool.any_busy(but=slot):
                self._queue_event("paused")
            # A job the worker did not report did not run: it goes back to the queue.
            self.outcomes.requeued.extend(slot.finish())
            self.standby.gone(slot)
            if recycle.retiring(slot, self.pool, self.queue):
                self.send(slot.address, ActorExitRequest())
                self.send(self.myAddress, ReplaceWorkers())  # not waiting for its exit
        self._run()

    def _run(self) -> None:
        """Hand held jobs to free workers, report outcomes, ask for more."""
        if self.init is None:
            return
        handed, want = self.dispatch.run(
            self.pool,
            time.monotonic(),
            may_ask=not (self.drain.active or self.standby.waits_idle),
        )
        for index in self.dispatch.to_start(self.pool):
            self._start_worker(index)
        for slot, jobs in handed:
            self.send(slot.address, RunJobs(slot.batch, tuple(jobs), detail=self.events.jobs))
            if self.events.jobs:
                self._publish(self.events.handed(self.queue, jobs))
            if len(jobs) > 1:
                self._arm_batch_check()  # a long job may hold the others up
        if self.outcomes.urgent(want, draining=self.drain.active):
            self._send_outcomes(want)
        else:
            delay = self.outcomes.arm_flush(standby=self.standby.slot is not None)
            if delay is not None:
                self.after(delay, FlushOutcomes())
        if self.drain.active and not self.pool.any_busy():
            stop = self.drain.stop()
            if stop is not None:
                self.send(self.init.queue_manager, stop)

    def receiveMsg_FlushOutcomes(self, message: FlushOutcomes, sender: Any) -> None:
        self.outcomes.flush_armed = False
        if self.outcomes:
            self._send_outcomes(0)

    def _send_outcomes(self, want: int) -> None:
        """One message to the QueueManager: every outcome so far, and the new demand."""
        assert self.init is not None
        message = self.outcomes.message(
            want=want,
            request=self.dispatch.next_request(want),
            # Not waiting lets a free worker go on standby when the queue is empty.
            wait=self.drain.active or self.paused,
            standby=self.pool.any_standby(),
            least=self.standby.least,
        )
        if message is not None:
            self.send(self.init.queue_manager, message)
            self.dispatch.asking(want, time.monotonic())

    # --- standby -------------------------------------------------------------------------------

    def _queue_is_empty(self) -> None:
        """The QueueManager found the queue empty: a free worker waits on it itself."""
        self.standby.idle = True
        if self.standby.slot is not None or self.drain.active or self.paused:
            return
        free = self.pool.free()
        if not free:
            self.standby.idle = False
            self._run()  # every worker is busy: the QueueManager waits instead
            return
        slot = free[0]
        message = self.standby.begin(slot, self.dispatch.batch_number(), time.monotonic())
        self.send(slot.address, message)
        self.after(STANDBY_CHECK, CheckStandby(slot.batch))

    def receiveMsg_CheckStandby(self, message: CheckStandby, sender: Any) -> None:
        if self.exiting or not self.standby.watches(message.batch):
            return
        if self.standby.in_long_job():
            # A long job: this worker stops waiting after it; another one takes over.
            self._end_standby()
            self.standby.drop()
            self._run()
            return
        self.after(STANDBY_CHECK, message)

    def _end_standby(self) -> None:
        ending = self.standby.end_message()
        if ending is not None:
            self.send(*ending)

    def _adopt(self, slot: Slot, taken: tuple[tuple[int, bytes], ...]) -> None:
        """Jobs the worker on standby took: the QueueManager learns their texts."""
        slot.jobs.extend(taken)
        self.outcomes.adopted.extend(taken)
        self.standby.took(time.monotonic())
        if self.events.jobs:
            self._publish(self.events.taken(self.queue, taken))

    # --- watching workers ----------------------------------------------------------------------

    def receiveMsg_CheckDeadlines(self, message: CheckDeadlines, sender: Any) -> None:
        if self.exiting:
            return
        now = time.monotonic()
        settle.kill_past_deadline(self.pool, now, self.queue)
        for slot in self.dispatch.lazy.to_stop(self.pool, now, self.queue):
            self.send(slot.address, ActorExitRequest())
        self.after(DEADLINE_CHECK, CheckDeadlines())
        shown = self.running_jobs
        if shown is not None and shown.due(now):
            shown.publish(self.pool.running(self.queue, now), now)
        self.dispatch.unanswered(now)
        if self.dispatch.held or not self.dispatch.asked:
            self._run()  # workers gone quiet in long jobs no longer hold the others back

    def _arm_batch_check(self) -> None:
        if not self.batch_check_armed:
            self.batch_check_armed = True
            self.after(BATCH_CHECK, CheckBatches())

    def receiveMsg_CheckBatches(self, message: CheckBatches, sender: Any) -> None:
        self.batch_check_armed = False
        if self.exiting:
            return
        waiting, taken = settle.take_back_held_up(self.pool.slots, time.monotonic())
        if waiting:
            self.after(BATCH_CHECK, message)
            self.batch_check_armed = True
        for slot, jobs in taken:
            self._taken_back(slot, jobs)
        if taken:
            self._run()

    def _taken_back(self, slot: Slot, jobs: list[tuple[int, bytes]]) -> None:
        """Jobs taken back from behind a long job in ``slot``'s batch go first to the
        next free workers (stopping: back to the queue, as held jobs do)."""
        if self.drain.active:
            self._give_back([ref for ref, _ in jobs])
            return
        self.dispatch.held[:0] = jobs
        self.events.taken_back(jobs)
        settle.log_taken_back(self.queue, slot.index, len(jobs))

    # --- drain and stop ------------------------------------------------------------------------

    def receiveMsg_DrainQueue(self, message: DrainQueue, sender: Any) -> None:
        timeout = self.drain.begin(sender)
        self._end_standby()
        self._give_back(self.dispatch.release())
        self.after(message.timeout, timeout)
        self._run()

    def _give_back(self, refs: list[int]) -> None:
        """Draining: these jobs go back to the queue (and count in the drain's reply)."""
        self.outcomes.requeued.extend(refs)
        self.drain.requeued += len(refs)

    def receiveMsg_DrainTimeout(self, message: DrainTimeout, sender: Any) -> None:
        if not self.drain.timed_out(message):
            return
        for slot in self.pool.slots:
            if slot.state == BUSY:
                settle.kill(slot, "still running at shutdown", self.queue, requeue_running=True)

    def stopping(self) -> None:
        self.exiting = True
        self.pool.close()
        if self.tally is not None:
            self.tally.close()  # writes the history that waits
        if self.running_jobs is not None:
            self.running_jobs.close()
            self.running_jobs = None
