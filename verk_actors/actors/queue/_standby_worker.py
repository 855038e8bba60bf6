"""A worker's side of the standby path (the manager's: ``_standby``).

On ``Standby`` the worker waits on the queue itself (a ``BLMOVE`` into the node's
in-progress list, through the store's ``StandbyTake``) and runs each job the moment
it arrives, with no actor message between the enqueue and the job. It keeps the job's
text on its board before it runs it, and reports the jobs as ``taken`` with their
outcomes, a few at a time (``STANDBY_REPORT_EVERY``).

The ``BLMOVE`` goes out without waiting for its answer and Thespian watches its socket
(``ThespianWatch``), as the QueueManager does: the worker's loop keeps running, so its
reports leave at once and it hears ``EndStandby`` while it waits (then it interrupts
its own ``BLMOVE``). Blocking in the handler instead would starve Thespian's
transport: a report would leave only with the next turns of the loop.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from verk_actors.actors.messages import InitWorker, Standby
from verk_actors.actors.queue._board import MAX_JOBS, Board
from verk_actors.actors.queue._cpu_gauge import cpu_clock
from verk_actors.actors.queue._report import Report
from verk_actors.config.redis_url import redact_url
from verk_actors.store.failures import Outage, reply_code
from verk_actors.store.job_wait import WAITING, Answer
from verk_actors.store.standby_take import StandbyTake

log = logging.getLogger(__name__)

STANDBY_REPORT_EVERY = 0.05
"""Seconds a worker on standby gathers the jobs it ran into one report, sent after the
first job that ends this long after the last report (the first job after a quiet
spell is reported at once: it may start a backlog). A report a job costs the worker
and its manager more CPU than a quick job; the texts of the jobs not reported yet are
on the board meanwhile."""

STANDBY_REPORT_LATEST = 0.5
"""Seconds after which a timer reports the last jobs of a trickle that stopped. Not
shorter: a timer's turn can hold up a job that arrives meanwhile."""

STANDBY_RETRY = 0.5
"""Seconds a worker on standby waits before it waits on the queue again after Redis
refused the wait (``OOM``, ``BUSY``...): the standby goes on, as the queue's other
users wait out an outage, and picks up within this long of Redis recovering."""

Taken = tuple[tuple[int, bytes], ...]
"""Jobs a standby took, with the references its manager knows them by."""


class StandbyRun:
    """The standby a worker is on (if any): its wait on the queue, the jobs it took,
    and what it has not reported yet."""

    def __init__(self) -> None:
        self.current: Standby | None = None
        """The standby going on (None: the worker is not on standby)."""
        self.manager: Any = None
        self.taken = 0
        """Jobs taken so far: the next one's index on the board."""
        self.ending = False
        """``EndStandby`` came: the wait out is interrupted, and the next answer ends it."""
        self.report: Report | None = None
        """What the standby ran and has not reported yet."""
        self.unreported: list[tuple[int, bytes]] = []
        """The jobs (ref, text) the standby took since its last report."""
        self.reported_at = 0.0
        self.flush_for: int | None = None
        """The standby batch a ``FlushStandbyReport`` is on its way for."""
        self.take: StandbyTake | None = None
        self.fd: int | None = None
        """The socket of the BLMOVE out (None: no wait out)."""
        self.retrying = False
        """A ``RetryStandbyWait`` is armed: Redis refused the standby's last wait."""
        self.outage = Outage(log, "worker ?", "?")
        self.wait_clock: tuple[float, float] = (0.0, 0.0)
        """``cpu_clock()`` when the BLMOVE went out: the start of the next job's report,
        read before the job arrives (reading it when the process wakes would add to
        the pickup)."""

    def begin(self, message: Standby, manager: Any, board: Board) -> None:
        self.current, self.manager = message, manager
        self.taken = 0
        self.ending = False
        self.report, self.unreported = None, []
        self.reported_at = 0.0
        board.begin_batch(message.batch, MAX_JOBS)
        board.forget_texts()

    def is_batch(self, batch: int) -> bool:
        return self.current is not None and self.current.batch == batch

    def stranded(self) -> bool:
        """On standby with no wait out and none coming: nothing would ever wake it."""
        return self.current is not None and self.fd is None and not self.retrying

    def wait(self, init: InitWorker) -> None:
        """Send a BLMOVE for the next job (Redis errors raise)."""
        if self.take is None:
            self.take = StandbyTake(init.settings.redis_url, init.queue, init.node_id, init.index)
        self.fd = self.take.start()
        self.wait_clock = cpu_clock()

    def interrupt(self) -> bool:
        """Make the BLMOVE out answer now (nil or a job); False if none is out (Redis
        errors raise)."""
        if self.take is None or self.fd is None:
            return False
        self.take.interrupt()
        return True

    def answer(self, ready: list[int]) -> Answer:
        """Read what the wait's socket holds if it is in ``ready`` (``Answer``: whether
        the BLMOVE answered, the job it moved, whether the queue was paused). Redis
        errors raise."""
        if self.fd is None or self.fd not in ready or self.take is None:
            return WAITING
        answer = self.take.finish()
        if answer.done:
            self.fd = None
        self.outage.ok()
        return answer

    def wait_failed(self, exc: BaseException, init: InitWorker) -> bool:
        """Redis failed the wait: True to wait again a little later (an error reply moved
        nothing), False to end the standby (a lost connection may have lost the answer
        of a BLMOVE that moved a job: the QueueManager gives such jobs back)."""
        self.fd = None
        url = redact_url(init.settings.redis_url)
        if reply_code(exc) is None or self.current is None or self.ending:
            log.info(
                "worker %s/%d: standby ends, Redis at %s: %s", init.queue, init.index, url, exc
            )
            return False
        if not self.outage.active:
            self.outage = Outage(log, f"worker {init.queue}/{init.index} on standby", url)
        self.outage.failed(exc, "waiting on the queue")
        self.retrying = True
        return True

    def retry_due(self, batch: int) -> bool:
        """A ``RetryStandbyWait`` for ``batch`` came: whether to wait again now."""
        if not self.is_batch(batch) or not self.retrying:
            return False
        self.retrying = False
        return True

    def next_job(self) -> tuple[int, int]:
        """(ref, index on the board) of the job the BLMOVE just took."""
        assert self.current is not None
        ref, index = self.current.first_ref - self.taken, self.taken
        self.taken += 1
        return ref, index

    def running(self, ref: int, text: bytes) -> Report:
        """Job ``ref`` runs now: the report it goes in."""
        report = self.report = self.report or Report(clock=self.wait_clock)
        self.unreported.append((ref, text))
        return report

    def full(self) -> bool:
        """The standby has taken as many jobs as its board can number."""
        return self.taken >= MAX_JOBS

    def report_due(self) -> bool:
        """Whether to report now; else a ``FlushStandbyReport`` may be armed."""
        return self.reported_at + STANDBY_REPORT_EVERY - time.monotonic() <= 0

    def flush_to_arm(self) -> int | None:
        """The batch to arm a ``FlushStandbyReport`` for (None: one is on its way)."""
        assert self.current is not None
        if self.flush_for == self.current.batch:
            return None
        self.flush_for = self.current.batch
        return self.flush_for

    def flushed(self, batch: int) -> bool:
        """The ``FlushStandbyReport`` for ``batch`` came: whether to report now."""
        if batch == self.flush_for:
            self.flush_for = None
        return self.is_batch(batch)

    def pending(self) -> tuple[Report, Taken] | None:
        """What to report now (None: nothing ran since the last report)."""
        report, taken = self.report, tuple(self.unreported)
        if self.current is None or report is None:
            return None
        self.report, self.unreported = None, []
        self.reported_at = time.monotonic()
        return report, taken

    def end(self, taken: Taken = ()) -> tuple[Standby, Report, Taken] | None:
        """The standby ends: its last report (with what it ran and has not reported yet,
        and ``taken``: jobs it took and did not run), None if it was not on."""
        standby, self.current = self.current, None
        self.fd = None
        self.retrying = False
        if self.take is not None:
            self.take.cancel()
        report = self.report or Report()
        taken = (*self.unreported, *taken)
        self.report, self.unreported = None, []
        return None if standby is None else (standby, report, taken)

    def close(self) -> None:
        if self.take is not None:
            self.take.close()
            self.take = None
