"""The lanes of a worker process that runs many jobs at once (threads or async mode).

A lane is one concurrency slot of its queue, as a whole worker process is in process
mode: the WorkersManager hands it batches, it runs each batch's jobs in order,
writes its own progress board before and after each job (so a killed process's jobs
are settled lane by lane, exactly as a killed process slot's), and reports with a
``JobsDone``. Lanes run as threads, one each (threads mode), or as tasks on one event
loop in a thread of its own (async mode). The actor's thread only passes messages:
the lanes put their reports in an ``Outbox`` and a byte on its pipe, which the actor
watches (``ThespianWatch``), wakes it to send them, every lane's in one message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from verk_actors.actors.messages import JobsDone, RunJobs
from verk_actors.actors.queue._board import Board
from verk_actors.actors.queue._report import Report, note_job_end
from verk_actors.config.queue_modes import ASYNC
from verk_actors.config.settings import Settings
from verk_actors.jobs.chain import Middleware
from verk_actors.jobs.hooks import Hooks
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.jobs.running import JobOutcome, PreparedJob
from verk_actors.jobs.running_lanes import Watchdog, execute_async, run_in_thread

log = logging.getLogger(__name__)

REPORT_EVERY = 0.1
"""Seconds between a lane's reports during a long batch (as a process worker's)."""


class Outbox:
    """Reports of the lanes, waiting for the actor's thread; ``fd`` turns readable
    once for each ``take``: the first report after a take writes a byte to the pipe,
    the others of the same window do not (so one wake of the actor, and one flush,
    serve every report that comes until the flush)."""

    def __init__(self) -> None:
        self.fd, self._write = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write, False)
        self._lock = threading.Lock()
        self._items: collections.deque[tuple[int, JobsDone]] = collections.deque()
        self._signalled = False

    def put(self, lane: int, done: JobsDone) -> None:
        with self._lock:
            self._items.append((lane, done))
            if not self._signalled:
                self._signalled = True
                with contextlib.suppress(BlockingIOError):
                    os.write(self._write, b"!")

    def quiet(self) -> None:
        """Empty the pipe; no report makes ``fd`` readable again before the next
        ``take``."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 4096):
                pass

    def take(self) -> list[tuple[int, JobsDone]]:
        """Every report so far, oldest first; the next report signals anew."""
        with self._lock:
            self.quiet()
            self._signalled = False
            items = list(self._items)
            self._items.clear()
        return items

    def close(self) -> None:
        os.close(self.fd)
        os.close(self._write)


class Lane:
    """One lane: its index in the queue's pool and its board."""

    def __init__(self, index: int, board: Board) -> None:
        self.index = index
        self.board = board
        self.reports = 0
        self.batches: queue.SimpleQueue[RunJobs | None] = queue.SimpleQueue()
        """Threads mode: the batches its thread runs next (None: stop)."""


class LaneRunner:
    """Runs the batches handed to a process's lanes, as threads or coroutines."""

    def __init__(
        self,
        mode: str,
        *,
        boards: dict[int, Board],
        registry: WorkerRegistry,
        hooks: Hooks,
        settings: Settings,
        queue_name: str,
        middleware: tuple[Middleware, ...] | None = None,
    ) -> None:
        self.mode = mode
        self.middleware = middleware
        """Server middleware: around each plain ``def perform`` (not ``async def``)."""
        self.lanes = {index: Lane(index, board) for index, board in boards.items()}
        self.registry = registry
        self.hooks = hooks
        self.settings = settings
        self.queue = queue_name
        self.outbox = Outbox()
        self.watchdog = Watchdog()
        self.tasks: set[asyncio.Task[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.executor: ThreadPoolExecutor | None = None
        if mode == ASYNC:
            self.loop = asyncio.new_event_loop()
            # Plain def perform jobs on an async queue: a thread each, up to one per lane.
            self.executor = ThreadPoolExecutor(len(self.lanes), thread_name_prefix="verk-lane")
            threading.Thread(target=self._run_loop, name="verk-loop", daemon=True).start()
        else:
            for lane in self.lanes.values():
                threading.Thread(
                    target=self._lane_thread,
                    args=(lane,),
                    name=f"verk-lane-{lane.index}",
                    daemon=True,
                ).start()

    # --- handing out ---------------------------------------------------------------------------

    def submit(self, batches: Iterable[tuple[int, RunJobs]]) -> list[tuple[int, RunJobs]]:
        """Start each lane's batch; returns those of lanes this process does not have."""
        unknown, known = [], []
        for index, batch in batches:
            lane = self.lanes.get(index)
            if lane is None:
                unknown.append((index, batch))
            else:
                known.append((lane, batch))
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._spawn, known)
        else:
            for lane, batch in known:
                lane.batches.put(batch)
        return unknown

    def _lane_thread(self, lane: Lane) -> None:
        while (batch := lane.batches.get()) is not None:
            try:
                self._run_batch(lane, batch)
            except Exception:  # a bug here: the batch's end still goes out
                log.exception("lane %d of queue %s failed", lane.index, self.queue)
                self.outbox.put(lane.index, JobsDone(batch.batch, (), 0.0, (), finished=True))

    def _run_loop(self) -> None:
        assert self.loop is not None
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _spawn(self, batches: list[tuple[Lane, RunJobs]]) -> None:
        for lane, batch in batches:
            task = asyncio.get_running_loop().create_task(self._run_batch_async(lane, batch))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    # --- running a batch -----------------------------------------------------------------------

    def _run_batch(self, lane: Lane, message: RunJobs) -> None:
        report, last = self._begin(lane, message)
        for index, job in enumerate(message.jobs):
            prepared = self._start(lane, message.batch, index, job[1])
            if prepared is None:
                break  # taken back, with the rest of the batch: other lanes run them
            started = time.monotonic()
            failure = run_in_thread(prepared, job[0], self.settings, self.watchdog, self.middleware)
            if self._end(lane, message, index, prepared, failure, started, report, last):
                report, last = self._begin_report()
        self._finish(lane, message, report)

    async def _run_batch_async(self, lane: Lane, message: RunJobs) -> None:
        try:
            report, last = self._begin(lane, message)
            for index, job in enumerate(message.jobs):
                prepared = self._start(lane, message.batch, index, job[1])
                if prepared is None:
                    break
                started = time.monotonic()
                failure = await execute_async(prepared, job[0], self.settings, self._in_thread)
                if self._end(lane, message, index, prepared, failure, started, report, last):
                    report, last = self._begin_report()
            self._finish(lane, message, report)
        except Exception:
            log.exception("lane %d of queue %s failed", lane.index, self.queue)
            self.outbox.put(lane.index, JobsDone(message.batch, (), 0.0, (), finished=True))

    async def _in_thread(self, prepared: PreparedJob, ref: int) -> JobOutcome | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor,
            run_in_thread,
            prepared,
            ref,
            self.settings,
            self.watchdog,
            self.middleware,
        )

    def _begin(self, lane: Lane, message: RunJobs) -> tuple[Report, float]:
        lane.board.begin_batch(message.batch, len(message.jobs))
        lane.reports = 0
        return self._begin_report()

    @staticmethod
    def _begin_report() -> tuple[Report, float]:
        """A new report, and when it began. Lanes report no CPU use: the manager lets
        every lane run at once, whatever the jobs' CPU share."""
        return Report(clock=(0.0, 0.0), load=[0.0, 0.0, 0.0]), time.monotonic()

    def _start(self, lane: Lane, batch: int, index: int, text: bytes) -> PreparedJob | None:
        """Job ``index`` begins (None: the manager took it back, it does not run)."""
        prepared = PreparedJob(text, self.registry, self.settings, self.queue)
        started = time.monotonic()
        if not lane.board.job_started(batch, index, prepared.deadline(started), started):
            lane.board.job_given_back(batch, index)
            return None
        return prepared

    def _end(  # noqa: PLR0917 (the state of one job of a lane's batch)
        self,
        lane: Lane,
        message: RunJobs,
        index: int,
        prepared: PreparedJob,
        failure: JobOutcome | None,
        started: float,
        report: Report,
        last: float,
    ) -> bool:
        """Job ``index`` ended: note it on the board and in ``report``; True if the lane
        reported (``REPORT_EVERY`` after ``last``): then start a new report."""
        ref = message.jobs[index][0]
        now = time.monotonic()
        note_job_end(
            lane.board,
            message.batch,
            index,
            report,
            ref,
            prepared,
            failure,
            now - started,
            settings=self.settings,
            hooks=self.hooks,
            queue=self.queue,
            detail=message.detail,
        )
        if index != len(message.jobs) - 1 and now - last >= REPORT_EVERY:
            self._send(lane, message, report, finished=False)
            return True
        return False

    def _finish(self, lane: Lane, message: RunJobs, report: Report) -> None:
        self._send(lane, message, report, finished=True)

    def _send(self, lane: Lane, message: RunJobs, report: Report, *, finished: bool) -> None:
        lane.reports += 1
        self.outbox.put(lane.index, report.message(message.batch, lane.reports, finished=finished))

    # --- stopping ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the lanes' threads or loop (the manager drained them first); the process
        exits next, which unmaps the boards."""
        if self.loop is not None:
            for task in list(self.tasks):
                self.loop.call_soon_threadsafe(task.cancel)
            self.loop.call_soon_threadsafe(self.loop.stop)
        else:
            for lane in self.lanes.values():
                lane.batches.put(None)
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
