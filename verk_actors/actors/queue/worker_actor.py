"""``WorkerActor``: runs jobs, one at a time, in its own process.

It registers the workers of the node's ``imports`` when initialised, then runs each
``RunJobs`` batch in order. Before and after each job it writes its progress board;
it reports in few messages: at the end of a batch and at least every ``REPORT_EVERY``
seconds during a long batch, failures with the rest (a worker that dies before it
reports leaves them marked failed on its board).

On an idle queue the WorkersManager puts one free worker on ``Standby``: the worker
waits on the queue itself (``BLMOVE`` into the node's in-progress list, its socket
watched by Thespian) and runs each job the moment it arrives, with no actor message
between the enqueue and the job. It keeps the job's text on its board before it runs
it, and reports the jobs as ``taken`` with their outcomes, a few at a time
(``STANDBY_REPORT_EVERY``).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import attrs
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
from verk_actors.actors.queue._board import MAX_JOBS, MAX_TEXT, Board
from verk_actors.actors.queue._cpu_gauge import cpu_clock
from verk_actors.config.redis_url import redact_url
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.jobs.running import JobOutcome, PreparedJob, execute
from verk_actors.store.connection import connect
from verk_actors.store.failures import REDIS_ERRORS, Outage, reply_code
from verk_actors.store.job_wait import JobWait

log = logging.getLogger(__name__)

REPORT_EVERY = 0.1

STANDBY_REPORT_EVERY = 0.05
"""Seconds a worker on standby gathers the jobs it ran into one report, sent after the
first job that ends this long after the last report (the first job after a quiet
spell is reported at once: it may start a backlog). A report a job cost the worker
and its manager half a millisecond of CPU or more each per job; the texts of the jobs
not reported yet are on the board meanwhile."""

STANDBY_REPORT_LATEST = 0.5
"""Seconds after which a timer reports the last jobs of a trickle that stopped. Not
shorter: a timer's turn can hold up a job that arrives meanwhile. With timers of
50-100 ms the pickup p99 was 1.13 ms against 1.04 for a report a job (medians of 7
runs of 300 jobs 10 ms apart); with this one, 0.98-1.23 against 1.07-1.19 (4 runs)."""

STANDBY_RETRY = 0.5
"""Seconds a worker on standby waits before it waits on the queue again after Redis
refused the wait (``OOM``, ``BUSY``...): the standby goes on, as the queue's other
users wait out an outage, and picks up within this long of Redis recovering."""


@attrs.define
class Report:
    """What a worker has not yet reported of its batch."""

    succeeded: list[int] = attrs.field(factory=list)
    seconds: float = 0.0
    failures: list[JobOutcome] = attrs.field(factory=list)
    details: list[tuple[int, str | None, str | None, float, float]] = attrs.field(factory=list)
    began: float = attrs.field(factory=time.monotonic)
    clock: tuple[float, float] = attrs.field(factory=cpu_clock)
    load: list[float] | None = None
    """Wall, CPU and CPU-wait seconds of the jobs only, summed job by job (standby:
    the waits between its jobs are not load); None = all since ``began``."""

    def add(self, ref: int, failure: JobOutcome | None, duration: float) -> None:
        if failure is None:
            self.succeeded.append(ref)
            self.seconds += duration
        else:
            self.failures.append(failure)

    def add_load(self, wall: float, on_cpu: float, waiting: float) -> None:
        if self.load is None:
            self.load = [0.0, 0.0, 0.0]
        self.load[0] += wall
        self.load[1] += on_cpu
        self.load[2] += waiting

    def message(
        self, batch: int, seq: int, *, finished: bool, taken: tuple[tuple[int, bytes], ...] = ()
    ) -> JobsDone:
        if self.load is not None:
            load = (self.load[0], self.load[1], self.load[2])
        else:
            on_cpu, waiting = cpu_clock()
            load = (time.monotonic() - self.began, on_cpu - self.clock[0], waiting - self.clock[1])
        return JobsDone(
            batch,
            tuple(self.succeeded),
            self.seconds,
            tuple(self.failures),
            finished,
            tuple(self.details),
            load=load,
            taken=taken,
            seq=seq,
        )


class WorkerActor(VerkActor):
    """One worker of a queue's pool."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        if multiprocessing.parent_process() is not None:  # a process of its own
            # Everything inherited from the forking WorkersManager is frozen, so the
            # garbage collector never walks it and copies its pages into this process.
            # What that saves grows with what the node's first process holds: under
            # `verk-actors bench`, 1.3 MB a worker (PSS 12.5 -> 11.2 MB a slot).
            gc.freeze()
        super().__init__(capabilities)
        self.init: InitWorker | None = None
        self.registry = WorkerRegistry()
        self.board: Board | None = None
        self.standby: Standby | None = None
        self.standby_to: Any = None
        self.standby_taken = 0
        self.standby_ending = False
        self.standby_report: Report | None = None
        """What the standby ran and has not reported yet."""
        self.standby_unreported: list[tuple[int, bytes]] = []
        """The jobs (ref, text) the standby took since its last report."""
        self.standby_reported_at = 0.0
        self.standby_flush_for: int | None = None
        """The standby batch a ``FlushStandbyReport`` is on its way for."""
        self.wait: JobWait | None = None
        self.wait_fd: int | None = None
        self.standby_retrying = False
        """A ``RetryStandbyWait`` is armed: Redis refused the standby's last wait."""
        self.outage = Outage(log, "worker ?", "?")
        self.wait_clock: tuple[float, float] = (0.0, 0.0)
        """``cpu_clock()`` when the standby's BLMOVE went out: the start of the next
        job's report, read before the job arrives (reading it costs 40-50 us when the
        process wakes, a tenth of a pickup; measured in place)."""
        self.reports = 0
        """Reports sent for the current batch (each ``JobsDone`` carries its number)."""

    def _report(
        self,
        to: Any,
        report: Report,
        batch: int,
        *,
        finished: bool,
        taken: tuple[tuple[int, bytes], ...] = (),
    ) -> None:
        self.reports += 1
        self.send(to, report.message(batch, self.reports, finished=finished, taken=taken))

    def receiveMsg_InitWorker(self, message: InitWorker, sender: Any) -> None:
        self.init = message
        try:
            self.registry = WorkerRegistry.from_modules(message.settings.imports)
            self.board = Board(Path(message.board_path))
            self.board.allow_take_back()
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
        failure = execute(prepared, ref, settings)
        now = time.monotonic()
        board.job_ended(batch, index, failure is None)
        report.add(ref, failure, now - started)
        if detail:
            report.details.append(
                (
                    ref,
                    prepared.jid,
                    prepared.class_name,
                    time.time() - (now - started),
                    now - started,
                )
            )
        return now

    # --- standby ---------------------------------------------------------------------------
    # The BLMOVE goes out without waiting for its answer and Thespian watches its socket
    # (ThespianWatch), as the QueueManager does: the worker's loop keeps running, so its
    # reports leave at once and it hears EndStandby while it waits (then it interrupts
    # its own BLMOVE). Blocking in the handler instead starved Thespian's transport:
    # each report took three turns of the loop, one per BLMOVE, to leave (0.3 s).

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        try:
            super().receiveMessage(message, sender)
        finally:
            if self.standby is not None and self.wait_fd is None and not self.standby_retrying:
                # Nothing would ever wake this standby (a handler failed half-way):
                # end it; its manager starts another one when the queue is empty.
                log.error(
                    "worker on standby had no wait out after %s; standby ended",
                    type(message).__name__,
                )
                self._end_standby()
        if self.wait_fd is not None:
            return ThespianWatch([self.wait_fd])
        return None

    def receiveMsg_Standby(self, message: Standby, sender: Any) -> None:
        init, board = self.init, self.board
        if init is None or board is None or self.standby is not None:
            self.send(sender, JobsDone(message.batch, (), 0.0, (), finished=True))
            return
        self.standby, self.standby_to = message, sender
        self.standby_taken = 0
        self.standby_ending = False
        self.standby_report, self.standby_unreported = None, []
        self.standby_reported_at = 0.0
        self.reports = 0
        board.begin_batch(message.batch, MAX_JOBS)
        board.forget_texts()
        self._wait_for_job()

    def receiveMsg_EndStandby(self, message: EndStandby, sender: Any) -> None:
        if self.standby is None or self.standby.batch != message.batch:
            return
        self.standby_ending = True
        if self.wait is not None and self.wait_fd is not None:
            try:
                self.wait.interrupt()  # the BLMOVE answers at once: nil or a job
            except REDIS_ERRORS:
                self._end_standby()
        else:
            self._end_standby()

    def _wait_for_job(self) -> None:
        init = self.init
        assert init is not None
        try:
            if self.wait is None:
                name = f"verk:{init.node_id}:{init.queue}:worker{init.index}"
                control = connect(init.settings.redis_url, name=name)
                self.wait = JobWait(
                    init.settings.redis_url,
                    init.queue,
                    init.node_id,
                    name=f"{name}:wait",
                    control=control,
                )
            self.wait_fd = self.wait.start()
            self.wait_clock = cpu_clock()
        except REDIS_ERRORS as exc:
            self._wait_failed(exc)

    def _wait_failed(self, exc: BaseException) -> None:
        """Redis failed the standby's wait. An error reply moved nothing: wait again a
        little later. A lost connection may have lost the answer of a BLMOVE that moved
        a job: the standby ends, and the QueueManager gives such jobs back."""
        init, standby = self.init, self.standby
        assert init is not None
        self.wait_fd = None
        if reply_code(exc) is None or standby is None or self.standby_ending:
            log.info(
                "worker %s/%d: standby ends, Redis at %s: %s",
                init.queue,
                init.index,
                redact_url(init.settings.redis_url),
                exc,
            )
            self._end_standby()
            return
        if not self.outage.active:
            self.outage = Outage(
                log,
                f"worker {init.queue}/{init.index} on standby",
                redact_url(init.settings.redis_url),
            )
        self.outage.failed(exc, "waiting on the queue")
        self.standby_retrying = True
        self.after(STANDBY_RETRY, RetryStandbyWait(standby.batch))

    def receiveMsg_RetryStandbyWait(self, message: RetryStandbyWait, sender: Any) -> None:
        standby = self.standby
        if standby is None or standby.batch != message.batch or not self.standby_retrying:
            return
        self.standby_retrying = False
        self._wait_for_job()

    def receiveMsg_WatchMessage(self, message: WatchMessage, sender: Any) -> None:
        if self.wait_fd is None or self.wait_fd not in message.ready or self.wait is None:
            return
        self.wait_fd = None
        try:
            text = self.wait.finish()
        except REDIS_ERRORS as exc:
            self._wait_failed(exc)
            return
        self.outage.ok()
        standby, board = self.standby, self.board
        if standby is None or board is None:
            return
        if text is None:
            if self.standby_ending:
                self._end_standby()
            else:
                self._wait_for_job()
            return
        self._run_standby_job(standby, board, text)

    def _run_standby_job(self, standby: Standby, board: Board, text: bytes) -> None:
        """Run a job the standby's BLMOVE took, then wait for the next one."""
        began = time.monotonic()
        ref, index = standby.first_ref - self.standby_taken, self.standby_taken
        self.standby_taken += 1
        if self.standby_ending or not self._hold(board, index, text):
            # Not run (ending, or too long for the board): the manager gives it back.
            self._end_standby(taken=((ref, text),))
            return
        report = self.standby_report = self.standby_report or Report(clock=self.wait_clock)
        self.standby_unreported.append((ref, text))
        self._run_one(board, standby.batch, (ref, text), index=index, report=report, detail=True)
        wall, clock = time.monotonic() - began, self.wait_clock
        if self.standby_ending or self.standby_taken >= MAX_JOBS:
            on_cpu, waiting = cpu_clock()
            report.add_load(wall, on_cpu - clock[0], waiting - clock[1])
            self._end_standby()
            return
        self._wait_for_job()  # the next BLMOVE goes out first; it reads the CPU clock
        if self.standby is None:
            return  # Redis failed: the standby ended and reported
        report.add_load(wall, self.wait_clock[0] - clock[0], self.wait_clock[1] - clock[1])
        wait = self.standby_reported_at + STANDBY_REPORT_EVERY - time.monotonic()
        if wait <= 0:
            self._report_standby()
        elif self.standby_flush_for != standby.batch:
            self.standby_flush_for = standby.batch
            self.after(STANDBY_REPORT_LATEST, FlushStandbyReport(standby.batch))

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
        if message.batch == self.standby_flush_for:
            self.standby_flush_for = None
        if self.standby is not None and self.standby.batch == message.batch:
            self._report_standby()

    def _report_standby(self) -> None:
        """Report what the standby ran since its last report (if anything). The board
        keeps the texts of this report until the next one is out, in case this worker
        dies before Thespian has sent it."""
        standby, report, taken = self.standby, self.standby_report, tuple(self.standby_unreported)
        if standby is None or report is None or self.board is None:
            return
        self.standby_report, self.standby_unreported = None, []
        self.standby_reported_at = time.monotonic()
        self._report(self.standby_to, report, standby.batch, finished=False, taken=taken)
        if taken:
            self.board.keep_texts_from(standby.first_ref - taken[0][0])

    def _end_standby(self, *, taken: tuple[tuple[int, bytes], ...] = ()) -> None:
        """Report the standby over, with what it ran and has not reported yet; a job in
        ``taken`` that the report lacks goes back."""
        standby, self.standby = self.standby, None
        self.wait_fd = None
        self.standby_retrying = False
        if self.wait is not None:
            self.wait.cancel()
        report = self.standby_report or Report()
        taken = (*self.standby_unreported, *taken)
        self.standby_report, self.standby_unreported = None, []
        if standby is not None:
            self._report(self.standby_to, report, standby.batch, finished=True, taken=taken)

    def stopping(self) -> None:
        if self.wait is not None:
            self.wait.close()
            self.wait.control.close()
            self.wait = None
        if self.board is not None:
            self.board.close()
            self.board = None
