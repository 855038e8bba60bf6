"""``WorkerActor``: runs jobs, one at a time, in its own process.

It registers the workers of the node's ``imports`` when initialised, then runs each
``RunJobs`` batch in order. Before and after each job it writes its progress board;
it reports in few messages: at the end of a batch and at least every ``REPORT_EVERY``
seconds during a long batch, failures with the rest (a worker that dies before it
reports leaves them marked failed on its board).

On an idle queue the WorkersManager puts one free worker on ``Standby``: the worker
waits on the queue itself and runs each job the moment it arrives. Its state and
decisions are in ``_standby_worker``; this actor does the messaging and the timers.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from thespian.actors import ThespianWatch, WatchMessage

from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import (
    ChildFailed,
    ChildReady,
    EndStandby,
    FlushStandbyReport,
    InitWorker,
    JobsDone,
    RetryStandbyWait,
    RunJobs,
    Standby,
)
from verk_actors.actors.queue._board import MAX_TEXT, Board
from verk_actors.actors.queue._cpu_gauge import cpu_clock
from verk_actors.actors.queue._recycle import Lifetime
from verk_actors.actors.queue._report import Report, note_job_end
from verk_actors.actors.queue._standby_worker import (
    STANDBY_REPORT_LATEST,
    STANDBY_RETRY,
    StandbyRun,
    Taken,
)
from verk_actors.config.queue_modes import PROCESS
from verk_actors.jobs.chain import Middleware
from verk_actors.jobs.hooks import Hooks
from verk_actors.jobs.job_log import attach_job_to_records
from verk_actors.jobs.lifecycle import WorkerProcess, run_start_hooks, run_stop_hooks
from verk_actors.jobs.limits import install_gate
from verk_actors.jobs.middleware import server_chain
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.jobs.running import PreparedJob, execute
from verk_actors.store.failures import REDIS_ERRORS
from verk_actors.store.limits import RedisLimitGate

log = logging.getLogger(__name__)

REPORT_EVERY = 0.1


class WorkerActor(VerkActor):
    """One worker of a queue's pool."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        if multiprocessing.parent_process() is not None:  # a process of its own
            # Everything inherited from the forking WorkersManager is frozen, so the
            # garbage collector never walks it and copies its pages into this process
            # (what that saves grows with what the forking process holds).
            gc.freeze()
        super().__init__(capabilities)
        attach_job_to_records()  # records logged inside a job carry its jid
        self.init: InitWorker | None = None
        self.registry = WorkerRegistry()
        self.hooks = Hooks()
        self.middleware: tuple[Middleware, ...] | None = None
        self.board: Board | None = None
        self.standby = StandbyRun()
        self.lifetime = Lifetime()
        self.limits: RedisLimitGate | None = None
        self.process: WorkerProcess | None = None
        """Set once its start hooks ran: its stop hooks run when it stops."""
        self.reports = 0
        """Reports sent for the current batch (each ``JobsDone`` carries its number)."""

    def _report(
        self, to: Any, report: Report, batch: int, *, finished: bool, taken: Taken = ()
    ) -> None:
        self.reports += 1
        retire = self.lifetime.retire if finished else ""
        self.send(
            to, report.message(batch, self.reports, finished=finished, taken=taken, retire=retire)
        )

    def receiveMsg_InitWorker(self, message: InitWorker, sender: Any) -> None:
        self.init = message
        try:
            # Async workers register on every queue (the node's queues change at run
            # time); on this one their jobs fail with AsyncWorkerError, not awaited.
            self.registry = WorkerRegistry.from_modules(message.settings.imports, allow_async=True)
            self.hooks = Hooks(message.settings.error_handlers, message.settings.death_handlers)
            self.middleware = server_chain(message.settings.server_middleware)
            self.board = Board(Path(message.board_path))
            self.board.allow_take_back()
            self.lifetime = Lifetime(message.max_jobs, message.max_memory)
            # Limiters are taken through it; it connects when a job first takes one.
            self.limits = RedisLimitGate(message.settings.redis_url, message.node_id)
            install_gate(self.limits)
            process = WorkerProcess(message.queue, PROCESS, os.getpid())
            run_start_hooks(process, None)
            self.process = process  # its stop hooks run when it stops
        except Exception as exc:
            log.error("worker %s/%d cannot start: %s", message.queue, message.index, exc)
            self.send(sender, ChildFailed(type(exc).__name__, str(exc)))
            return
        self.send(sender, ChildReady(os.getpid(), self.registry.retry_options()))

    def receiveMsg_RunJobs(self, message: RunJobs, sender: Any) -> None:
        init, board = self.init, self.board
        if init is None or board is None:
            log.error("worker got jobs before it was initialised; they go back unrun")
            self.send(sender, JobsDone(message.batch, (), 0.0, (), finished=True))
            return
        batch, jobs = message.batch, message.jobs
        board.begin_batch(batch, len(jobs))
        self.reports = 0
        report = Report()
        last_report = time.monotonic()
        last = len(jobs) - 1
        for index, job in enumerate(jobs):
            if self.lifetime.retire:
                break  # to be recycled: the jobs it did not start go back to the queue
            now = self._run_one(
                board, batch, job, index=index, report=report, detail=message.detail
            )
            if now is None:
                break  # taken back, with the rest of the batch: other workers run them
            if index != last and now - last_report >= REPORT_EVERY:
                self._report(sender, report, batch, finished=False)
                report = Report()
                last_report = now
        self._report(sender, report, batch, finished=True)

    def _run_one(
        self,
        board: Board,
        batch: int,
        job: tuple[int, bytes],
        *,
        index: int,
        report: Report,
        detail: bool,
    ) -> float | None:
        """Run job ``index`` of ``batch``, note it on the board and in ``report``; return
        the monotonic time it ended (None: the manager took it back, it did not run)."""
        assert self.init is not None
        ref, text = job
        settings = self.init.settings
        prepared = PreparedJob(text, self.registry, settings, self.init.queue)
        started = time.monotonic()
        if not board.job_started(batch, index, prepared.deadline(started), started):
            board.job_given_back(batch, index)
            return None
        failure = execute(prepared, ref, settings, self.middleware)
        now = time.monotonic()
        ran = note_job_end(
            board,
            batch,
            index,
            report,
            ref,
            prepared,
            failure,
            now - started,
            settings=settings,
            hooks=self.hooks,
            queue=self.init.queue,
            detail=detail,
        )
        if ran:
            self.lifetime.job_ran()
        return now

    # --- standby ---------------------------------------------------------------------------

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        try:
            super().receiveMessage(message, sender)
        finally:
            if self.standby.stranded():
                # Nothing would ever wake this standby (a handler failed half-way):
                # end it; its manager starts another one when the queue is empty.
                log.error(
                    "worker on standby had no wait out after %s; standby ended",
                    type(message).__name__,
                )
                self._end_standby()
        if self.standby.fd is not None:
            return ThespianWatch([self.standby.fd])  # the BLMOVE's answer wakes us
        return None

    def receiveMsg_Standby(self, message: Standby, sender: Any) -> None:
        if self.init is None or self.board is None or self.standby.current or self.lifetime.retire:
            self.send(sender, JobsDone(message.batch, (), 0.0, (), finished=True))
            return
        self.reports = 0
        self.standby.begin(message, sender, self.board)
        self._wait_for_job()

    def receiveMsg_EndStandby(self, message: EndStandby, sender: Any) -> None:
        if not self.standby.is_batch(message.batch):
            return
        self.standby.ending = True
        try:
            if self.standby.interrupt():
                return  # the BLMOVE answers at once: nil or a job
        except REDIS_ERRORS:
            pass
        self._end_standby()

    def _wait_for_job(self) -> None:
        assert self.init is not None
        try:
            self.standby.wait(self.init)
        except REDIS_ERRORS as exc:
            self._wait_failed(exc)

    def _wait_failed(self, exc: BaseException) -> None:
        assert self.init is not None
        if self.standby.wait_failed(exc, self.init):
            assert self.standby.current is not None
            self.after(STANDBY_RETRY, RetryStandbyWait(self.standby.current.batch))
        else:
            self._end_standby()

    def receiveMsg_RetryStandbyWait(self, message: RetryStandbyWait, sender: Any) -> None:
        if self.standby.retry_due(message.batch):
            self._wait_for_job()

    def receiveMsg_WatchMessage(self, message: WatchMessage, sender: Any) -> None:
        try:
            answered, text, paused = self.standby.answer(message.ready)
        except REDIS_ERRORS as exc:
            self._wait_failed(exc)
            return
        if not answered or self.standby.current is None or self.board is None:
            return
        if paused:
            # The queue was paused when this BLMOVE went out: a job it took goes back.
            taken = () if text is None else ((self.standby.next_job()[0], text),)
            self._end_standby(taken=taken)
        elif text is not None:
            self._run_standby_job(self.board, text)
        elif self.standby.ending:
            self._end_standby()
        else:
            self._wait_for_job()

    def _run_standby_job(self, board: Board, text: bytes) -> None:
        """Run a job the standby's BLMOVE took, then wait for the next one."""
        standby = self.standby
        assert standby.current is not None
        batch = standby.current.batch
        began = time.monotonic()
        ref, index = standby.next_job()
        if standby.ending or not self._hold(board, index, text):
            # Not run (ending, or too long for the board): the manager gives it back.
            self._end_standby(taken=((ref, text),))
            return
        report = standby.running(ref, text)
        self._run_one(board, batch, (ref, text), index=index, report=report, detail=True)
        wall, clock = time.monotonic() - began, standby.wait_clock
        if standby.ending or standby.full() or self.lifetime.retire:
            on_cpu, waiting = cpu_clock()
            report.add_load(wall, on_cpu - clock[0], waiting - clock[1])
            self._end_standby()
            return
        self._wait_for_job()  # the next BLMOVE goes out first; it reads the CPU clock
        if standby.current is None:
            return  # Redis failed: the standby ended and reported
        after = standby.wait_clock
        report.add_load(wall, after[0] - clock[0], after[1] - clock[1])
        if standby.report_due():
            self._report_standby()
        else:
            flush = standby.flush_to_arm()
            if flush is not None:
                self.after(STANDBY_REPORT_LATEST, FlushStandbyReport(flush))

    def _hold(self, board: Board, index: int, text: bytes) -> bool:
        """Put job ``index``'s text on the board; False if it can never fit there."""
        if board.hold_text(index, text):
            return True
        if len(text) > MAX_TEXT:
            return False
        # The board is full of texts: report them and keep only this one.
        self._report_standby()
        board.keep_texts_from(index)
        return board.hold_text(index, text)

    def receiveMsg_FlushStandbyReport(self, message: FlushStandbyReport, sender: Any) -> None:
        if self.standby.flushed(message.batch):
            self._report_standby()

    def _report_standby(self) -> None:
        """Report what the standby ran since its last report (if anything). The board
        keeps the texts of this report until the next one is out, in case this worker
        dies before Thespian has sent it."""
        standby, board = self.standby.current, self.board
        pending = self.standby.pending() if board is not None else None
        if standby is None or board is None or pending is None:
            return
        report, taken = pending
        self._report(self.standby.manager, report, standby.batch, finished=False, taken=taken)
        if taken:
            board.keep_texts_from(standby.first_ref - taken[0][0])

    def _end_standby(self, *, taken: Taken = ()) -> None:
        """Report the standby over, with what it ran and has not reported yet; a job in
        ``taken`` that the report lacks goes back."""
        ended = self.standby.end(taken)
        if ended is not None:
            standby, report, taken = ended
            self._report(self.standby.manager, report, standby.batch, finished=True, taken=taken)

    def stopping(self) -> None:
        if self.process is not None:
            run_stop_hooks(self.process, None)
            self.process = None
        self.standby.close()
        if self.limits is not None:
            self.limits.close()
        if self.board is not None:
            self.board.close()
            self.board = None
