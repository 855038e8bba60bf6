"""``LaneWorkersManager``: the WorkersManager of a queue in threads or async mode.

Each concurrency slot of the queue is a lane, and ``per_process`` lanes share one
worker process (a ``LaneWorkerActor``). To all the WorkersManager does (dispatch,
batches, progress boards, settling, events, metrics, pause, drain) a lane is a slot
like any other, with a board of its own; its slot's address is a ``LaneKey``. What
the manager sends to lane keys in one round is gathered into one ``RunLanes`` per
process, and a process's ``LanesDone`` is read as each lane's ``JobsDone``. What
differs:

- a process that dies has the batch of each of its lanes settled from that lane's
  board (each job ran, was running: retry, or never began: back to the queue), and
  is replaced whole;
- no standby: the QueueManager waits on an idle queue itself (every
  ``RecordOutcomes`` goes out with ``wait``);
- every lane may run at once: these jobs wait, the CPU gauge does not limit them;
  and jobs are asked for ahead of the free lanes (``LaneDispatch``);
- a job past its hard deadline (a thread that ignored its timeout, a coroutine that
  blocks its loop) retires its process: no new job goes to it, and it is killed once
  its other lanes are idle, or after ``RETIRE_GRACE``. Its other running jobs then go
  to retry.

Restart strategy: one_for_one per worker process.
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

from verk_actors.actors.messages import (
    CheckDeadlines,
    ChildFailed,
    ChildReady,
    DescribeTree,
    InitLanes,
    LanesDone,
    RecordOutcomes,
    ReplaceWorkers,
    RunJobs,
    RunLanes,
    TreeNode,
)
from verk_actors.actors.queue import _settle as settle
from verk_actors.actors.queue._batches import MAX_IN_PROGRESS, BatchSizer, jobs_wanted
from verk_actors.actors.queue._board import Board
from verk_actors.actors.queue._cpu_gauge import CpuGauge
from verk_actors.actors.queue._dispatch import Dispatch
from verk_actors.actors.queue._slots import BROKEN, BUSY, FREE, REPLACE_AFTER, Pool, Slot
from verk_actors.actors.queue.lane_worker_actor import LaneWorkerActor
from verk_actors.actors.queue.workers_manager import WorkersManager

log = logging.getLogger(__name__)

RETIRE_GRACE = 25.0
"""Seconds a retiring process's other jobs have to end before it is killed anyway."""

PREFETCH = 0.5
"""Jobs held ready for lanes, beyond the free ones, as a share of the lanes."""

LANE_BATCH_SECONDS = 0.5
"""Seconds of work a lane's batch aims at (a process slot's: 0.1). Jobs that wait
cost the worker process little while they run but a report and a new batch each
time a lane runs dry, a Thespian message each way shared by the process's lanes:
longer batches cut those messages per job. Only a backlog fills them: with no more
jobs held than free lanes, each lane takes one."""

LANE_JOBS_IN_HAND = 12
"""Most jobs of a backlog a lane queue holds at once, per lane (at least
``MAX_IN_PROGRESS`` in all): room for a batch running and the next ready in every
lane. A killed process loses none of them (they are in progress in Redis), but other
nodes do not get them until this one runs them."""

LANE_MOST_IN_HAND = 6000
"""But no more than this many in all: their texts live in the QueueManager and the
WorkersManager (12,000 for a queue of 1,000 lanes took a node of 1,000 sleeping
coroutines from 145 to 150 MB PSS, for no more jobs/s)."""

RETIRING = "retiring"
"""The state of a free lane of a retiring process: it takes no job."""

RECYCLED = (
    "its worker process was recycled: another job in it ran past its time limit and did not stop"
)


@attrs.frozen
class LaneKey:
    """The address of a lane's slot: what is sent to it goes to its process."""

    index: int

    def __str__(self) -> str:
        return f"lane-{self.index}"


@attrs.define(eq=False)
class Process:
    """One worker process and its lanes."""

    number: int
    address: Any
    lanes: list[Slot]
    pid: int | None = None
    retire_at: float | None = None
    """Set once a job in it ran past its deadline: it takes no new job."""
    killed: bool = False


class AllLanes(CpuGauge):
    """Every lane runs at once: the jobs of these queues wait, they do not compute."""

    def observe(self, wall: float, cpu: float, waiting: float) -> None:
        return

    def active_limit(self, pool: int, *, long_jobs: bool = False) -> int:
        return pool

    def detail(self, pool: int) -> str:
        return ""


class LaneDispatch(Dispatch):
    """Dispatch that keeps jobs ready for lanes about to free up: a request for jobs
    takes a Redis and two actor round trips, a long time for jobs that mostly wait,
    so each request also asks for ``PREFETCH`` of the pool ahead (process slots ask
    for no more than their free workers' when jobs are slow)."""

    def new_sizer(self, max_batch: int) -> BatchSizer:
        return BatchSizer(max_batch, target=LANE_BATCH_SECONDS)

    def run(
        self, pool: Pool, now: float, *, may_ask: bool
    ) -> tuple[list[tuple[Slot, list[tuple[int, bytes]]]], int]:
        self.most_in_hand = max(
            MAX_IN_PROGRESS, min(LANE_JOBS_IN_HAND * len(pool), LANE_MOST_IN_HAND)
        )
        handed, want = super().run(pool, now, may_ask=may_ask)
        if may_ask and not self.asked:
            ahead = max(1, int(len(pool) * PREFETCH))
            free = len(pool.free())
            want = max(
                want,
                jobs_wanted(
                    free,
                    1,
                    len(self.held),
                    prefetch=ahead,
                    in_workers=pool.in_hand(),
                    most=self.most_in_hand,
                ),
            )
        return handed, want


class LaneWorkersManager(WorkersManager):
    """Dispatcher and supervisor of a threads or async queue's worker processes."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.dispatch = LaneDispatch()
        self.dispatch.gauge = AllLanes(1)
        self.processes: dict[int, Process] = {}
        self._by_address: dict[str, Process] = {}
        self.outgoing: dict[int, list[tuple[int, RunJobs]]] = {}
        """Batches handed to lanes this round, by process number."""
        self.holding = False
        """Reading a ``LanesDone``: one dispatch round after all its reports."""
        self.replace_processes: list[tuple[int, bool]] = []
        """Processes to start again: (number, whether it died while idle)."""

    @property
    def per_process(self) -> int:
        assert self.init is not None
        return self.init.queue.per_process

    # --- messages to lanes -------------------------------------------------------------------

    def send(self, target: Any, message: Any) -> None:
        if isinstance(target, LaneKey):
            if isinstance(message, RunJobs):
                number = target.index // self.per_process
                self.outgoing.setdefault(number, []).append((target.index, message))
            return  # nothing else goes to a lane (no standby)
        if isinstance(message, RecordOutcomes) and not message.wait:
            message = attrs.evolve(message, wait=True)  # the QueueManager waits, not a lane
        super().send(target, message)

    def _run(self) -> None:
        if self.holding:
            return
        super()._run()
        outgoing, self.outgoing = self.outgoing, {}
        for number, batches in outgoing.items():
            process = self.processes.get(number)
            if process is not None:
                super().send(process.address, RunLanes(tuple(batches)))

    def receiveMsg_LanesDone(self, message: LanesDone, sender: Any) -> None:
        self.holding = True
        try:
            for lane, done in message.reports:
                self.receiveMsg_JobsDone(done, LaneKey(lane))
        finally:
            self.holding = False
        for process in self.processes.values():
            if process.retire_at is not None:
                self._hold_free(process)
        self._run()

    # --- the processes ------------------------------------------------------------------------

    def _start_worker(self, index: int) -> None:
        if index % self.per_process == 0:  # a process starts with its first lane
            self._start_process(index // self.per_process)

    def _start_process(self, number: int) -> None:
        assert self.init is not None
        first = number * self.per_process
        indexes = range(first, min(first + self.per_process, self.init.queue.concurrency))
        boards: list[Board] = []
        try:
            for _ in indexes:
                boards.append(Board.create())
            address = self.createActor(LaneWorkerActor)
        except BaseException:
            for board in boards:
                board.close()  # no worker will ever open them
            raise
        lanes = [
            Slot(index, LaneKey(index), board) for index, board in zip(indexes, boards, strict=True)
        ]
        for slot in lanes:
            self.pool.add(slot)
        self.processes[number] = Process(number, address, lanes)
        paths = tuple((slot.index, str(slot.board.path)) for slot in lanes)
        init = InitLanes(self.init.settings, self.queue, self.init.queue.mode, paths)
        super().send(address, attrs.evolve(init, node_id=self.init.node_id))

    def _process_at(self, address: Any) -> Process | None:
        key = str(address)
        process = self._by_address.get(key)
        if process is None:
            process = next((p for p in self.processes.values() if p.address == address), None)
            if process is not None:
                self._by_address[key] = process
        return process

    def receiveMsg_ChildReady(self, message: ChildReady, sender: Any) -> None:
        process = self._process_at(sender)
        if process is None:
            return
        process.pid = message.pid
        for slot in process.lanes:
            slot.ready(message.pid)
        self.worker_retries = dict(message.worker_retries) or self.worker_retries
        self._run()

    def receiveMsg_ChildFailed(self, message: ChildFailed, sender: Any) -> None:
        process = self._process_at(sender)
        if process is not None and process.lanes:
            process.lanes[0].broken(self.queue, f"{message.error_class}: {message.message}")
            for slot in process.lanes:
                slot.state = BROKEN

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Any) -> None:
        process = self._process_at(message.childAddress)
        if process is None or self.exiting:
            return  # exiting: the QueueManager gives the jobs back (as for process slots)
        assert self.init is not None
        del self.processes[process.number]
        self._by_address = {k: p for k, p in self._by_address.items() if p is not process}
        busy = False
        for slot in process.lanes:
            self.pool.exited(slot)
            if slot.state == BUSY:
                busy = True
                settled = settle.settle_dead_batch(
                    slot, self.queue, self.init.settings, self.worker_retries
                )
                self.outcomes.add_settlement(settled)
                if self.tally is not None:
                    kind = settle.kill_kind(slot.kill_reason)
                    self.tally.settled(dict(slot.jobs), settled, kind)
                if self.drain.active:
                    self.drain.requeued += len(settled.requeued)
            slot.board.close()
        self.pool.replace.clear()  # replaced here, by process
        self.replace_processes.append((process.number, not busy and not process.killed))
        self.after(REPLACE_AFTER, ReplaceWorkers())
        self._run()

    def receiveMsg_ReplaceWorkers(self, message: ReplaceWorkers, sender: Any) -> None:
        replace, self.replace_processes = self.replace_processes, []
        if self.exiting or self.drain.active:
            return
        now, started = time.monotonic(), 0
        for number, idle in replace:
            if idle:
                log.warning("queue %s: idle worker process %d exited", self.queue, number)
                if not self.pool.idle_restarts.allow(now):
                    log.error(
                        "queue %s: worker processes keep dying while idle; not restarting %d",
                        self.queue,
                        number,
                    )
                    continue
            self._start_process(number)
            started += 1
            for slot in self.processes[number].lanes:
                self.pool.restarts[slot.index] = self.pool.restarts.get(slot.index, 0) + 1
        if self.tally is not None:
            self.tally.worker_replaced(started)

    def tree_node(self, message: DescribeTree) -> TreeNode:
        """As the WorkersManager's, with one child per worker process (not per lane)."""
        node = super().tree_node(message)
        children = []
        for number, process in sorted(self.processes.items()):
            busy = sum(1 for slot in process.lanes if slot.state == BUSY)
            first, last = process.lanes[0].index, process.lanes[-1].index
            state = "retiring" if process.retire_at is not None else process.lanes[0].state
            children.append(
                TreeNode(
                    0,
                    f"worker process {number}",
                    "LaneWorkerActor",
                    process.pid,
                    state="busy" if busy and state != "retiring" else state,
                    restarts=self.pool.restarts.get(first, 0),
                    detail=f"lanes {first}..{last}: {busy} jobs running",
                )
            )
        return attrs.evolve(node, children=tuple(children))

    # --- jobs past their deadline ---------------------------------------------------------------

    def receiveMsg_CheckDeadlines(self, message: CheckDeadlines, sender: Any) -> None:
        if not self.exiting:
            now = time.monotonic()
            for process in self.processes.values():
                self._retire_if_stuck(process, now)
        # Lanes marked here keep their process: the base check kills no process for them.
        super().receiveMsg_CheckDeadlines(message, sender)

    def _retire_if_stuck(self, process: Process, now: float) -> None:
        """A lane past its job's deadline retires its process; a retiring process is
        killed once its other lanes are idle or its grace is over."""
        for slot in process.lanes:
            if slot.state != BUSY or slot.kill_reason is not None:
                continue
            batch, index, deadline, _ = slot.board.running()
            if batch == slot.batch and index >= 0 and deadline and now > deadline:
                slot.kill_reason = settle.TIMED_OUT
                if process.retire_at is None:
                    process.retire_at = now + RETIRE_GRACE
                    log.warning(
                        "queue %s: a job in worker process %s ran past its time limit and "
                        "did not stop; the process takes no new job and is recycled once "
                        "its other jobs end (at most %g s)",
                        self.queue,
                        process.pid,
                        RETIRE_GRACE,
                    )
        if process.retire_at is None or process.killed:
            return
        self._hold_free(process)
        others = [s for s in process.lanes if s.state == BUSY and s.kill_reason is None]
        if others and now < process.retire_at:
            return
        for slot in others:
            slot.kill_reason = RECYCLED
        process.killed = True
        if process.pid is not None:
            log.warning("queue %s: recycling worker process %d", self.queue, process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)

    @staticmethod
    def _hold_free(process: Process) -> None:
        """A retiring process's free lanes take no job."""
        for slot in process.lanes:
            if slot.state == FREE:
                slot.state = RETIRING
