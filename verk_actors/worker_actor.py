"""``WorkerActor``: runs jobs, one at a time, in its own process.

It registers the workers of the node's ``imports`` when initialised, then runs each
``RunJobs`` batch in order. Before and after each job it writes its progress board;
it reports in few messages: at the end of a batch, at once after a failure, and at
least every ``REPORT_EVERY`` seconds during a long batch.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import attrs

from verk_actors.base import VerkActor
from verk_actors.board import Board
from verk_actors.messages import ChildFailed, ChildReady, InitWorker, JobsDone, RunJobs
from verk_actors.registry import WorkerRegistry
from verk_actors.running import JobOutcome, PreparedJob, execute

log = logging.getLogger(__name__)

REPORT_EVERY = 0.1

SCHEDSTAT = Path("/proc/self/schedstat")


def cpu_clock() -> tuple[float, float]:
    """Seconds this process has run on a CPU and waited ready for one (0, 0 off Linux)."""
    try:
        on_cpu, waiting, _ = SCHEDSTAT.read_bytes().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on_cpu) / 1e9, int(waiting) / 1e9


@attrs.define
class Report:
    """What a worker has not yet reported of its batch."""

    succeeded: list[int] = attrs.field(factory=list)
    seconds: float = 0.0
    failures: list[JobOutcome] = attrs.field(factory=list)
    details: list[tuple[int, str | None, str | None, float, float]] = attrs.field(factory=list)
    began: float = attrs.field(factory=time.monotonic)
    clock: tuple[float, float] = attrs.field(factory=cpu_clock)

    def add(self, ref: int, failure: JobOutcome | None, duration: float) -> None:
        if failure is None:
            self.succeeded.append(ref)
            self.seconds += duration
        else:
            self.failures.append(failure)

    def message(self, batch: int, *, finished: bool) -> JobsDone:
        on_cpu, waiting = cpu_clock()
        return JobsDone(
            batch,
            tuple(self.succeeded),
            self.seconds,
            tuple(self.failures),
            finished,
            tuple(self.details),
            load=(time.monotonic() - self.began, on_cpu - self.clock[0], waiting - self.clock[1]),
        )


class WorkerActor(VerkActor):
    """One worker of a queue's pool."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitWorker | None = None
        self.registry = WorkerRegistry()
        self.board: Board | None = None

    def receiveMsg_InitWorker(self, message: InitWorker, sender: Any) -> None:
        self.init = message
        try:
            self.registry = WorkerRegistry.from_modules(message.settings.imports)
            self.board = Board(Path(message.board_path))
        except Exception as exc:
            log.error("worker %s/%d cannot start: %s", message.queue, message.index, exc)
            self.send(sender, ChildFailed(type(exc).__name__, str(exc)))
            return
        self.send(sender, ChildReady(os.getpid()))

    def receiveMsg_RunJobs(self, message: RunJobs, sender: Any) -> None:
        init, board = self.init, self.board
        if init is None or board is None:
            log.error("worker got jobs before it was initialised; they go back unrun")
            self.send(sender, JobsDone(message.batch, (), 0.0, (), finished=True))
            return
        batch, jobs, settings, queue = message.batch, message.jobs, init.settings, init.queue
        registry, monotonic = self.registry, time.monotonic
        board.begin_batch(batch, len(jobs))
        report = Report()
        last_report = monotonic()
        last = len(jobs) - 1
        for index, (ref, text) in enumerate(jobs):
            prepared = PreparedJob(text, registry, settings, queue)
            started = monotonic()
            board.job_started(batch, index, prepared.deadline(started))
            failure = execute(prepared, ref, settings)
            now = monotonic()
            board.job_ended(batch, index, failure is None)
            report.add(ref, failure, now - started)
            if message.detail:
                job = prepared.job
                report.details.append(
                    (
                        ref,
                        job.jid if job else None,
                        job.class_name if job else None,
                        time.time() - (now - started),
                        now - started,
                    )
                )
            if index != last and (failure is not None or now - last_report >= REPORT_EVERY):
                self.send(sender, report.message(batch, finished=False))
                report = Report()
                last_report = now
        self.send(sender, report.message(batch, finished=True))

    def stopping(self) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None
