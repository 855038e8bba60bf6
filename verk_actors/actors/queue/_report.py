"""What a worker has run and not yet reported, gathered into one ``JobsDone``."""

from __future__ import annotations

import time

import attrs

from verk_actors.actors.messages import JobsDone
from verk_actors.actors.queue._board import Board
from verk_actors.actors.queue._cpu_gauge import cpu_clock
from verk_actors.config.settings import Settings
from verk_actors.jobs.hooks import Hooks
from verk_actors.jobs.retry import Fate
from verk_actors.jobs.running import JobOutcome, PreparedJob


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

    timings: list[tuple[str | None, float]] | None = None
    """``(class, seconds)`` of each job that succeeded, when the node counts them."""

    def add(
        self, ref: int, failure: JobOutcome | None, duration: float, class_name: str | None = None
    ) -> None:
        if failure is None:
            self.succeeded.append(ref)
            self.seconds += duration
            if self.timings is not None:
                self.timings.append((class_name, duration))
        else:
            self.failures.append(failure)

    def add_load(self, wall: float, on_cpu: float, waiting: float) -> None:
        if self.load is None:
            self.load = [0.0, 0.0, 0.0]
        self.load[0] += wall
        self.load[1] += on_cpu
        self.load[2] += waiting

    def message(
        self,
        batch: int,
        seq: int,
        *,
        finished: bool,
        taken: tuple[tuple[int, bytes], ...] = (),
        retire: str = "",
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
            timings=tuple(self.timings) if self.timings else (),
            retire=retire,
        )


def note_job_end(  # noqa: PLR0917 (the state of one job at its end)
    board: Board,
    batch: int,
    index: int,
    report: Report,
    ref: int,
    prepared: PreparedJob,
    failure: JobOutcome | None,
    seconds: float,
    *,
    settings: Settings,
    hooks: Hooks,
    queue: str,
    detail: bool,
) -> bool:
    """A job of a worker's (or a lane's) batch ended: note it on its board and in
    ``report``, tell the error handlers of a failure; False if it did not run (a full
    limiter put it back: should the worker die before its report is out, the job goes
    back to the queue, not to retry)."""
    ran = failure is None or failure.failure is None or failure.failure.fate is not Fate.DEFER
    if ran:
        board.job_ended(batch, index, failure is None)
    else:
        board.job_given_back(batch, index)
    if settings.metrics_history or settings.metrics_port is not None:
        if report.timings is None:
            report.timings = []
        report.add(ref, failure, seconds, prepared.class_name)
    else:
        report.add(ref, failure, seconds)
    if failure is not None and failure.failure is not None and prepared.error is not None:
        # After job_ended: the manager no longer holds the job's time limit against
        # this worker, and a handler's time cannot change the job's outcome.
        hooks.after_failure(
            job=prepared.job,
            jid=prepared.jid,
            class_name=prepared.class_name,
            queue=queue,
            worker=prepared.worker,
            error=prepared.error,
            failure=failure.failure,
        )
        prepared.error = None  # its traceback holds the job's frames
    if detail:
        report.details.append(
            (ref, prepared.jid, prepared.class_name, time.time() - seconds, seconds)
        )
    return ran
