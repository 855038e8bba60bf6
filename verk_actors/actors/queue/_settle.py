"""Dealing with a worker from what its progress board says (see ``_board``).

A worker runs its batch in order, and while it is inside a job it hears no message.
When a job has run ``TAKE_BACK_AFTER``, the jobs behind it in its batch that have not
started are taken back through the board and go to other workers: no job waits for
another job's run time while a worker is free. A job past its time limit gets its
worker killed.

Worker deaths (SIGKILL, OOM, ``os._exit``, a job past its time limit) are read off
the worker's board: jobs that ended are recorded as they ended, the job that was
running fails with the reason (it goes to retry, or dead when exhausted), jobs that
never started go back to the queue. A worker on standby that died leaves on its board
the texts of the jobs it took and had not reported: they are adopted first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal

import attrs

from verk_actors.actors.queue import _board as boards
from verk_actors.actors.queue._slots import BUSY, RETIRING, Pool, Slot
from verk_actors.config.settings import Settings
from verk_actors.jobs.retry import FailureRecord
from verk_actors.jobs.running import died_failure

log = logging.getLogger(__name__)

RETIRE_GRACE = 10.0
"""Seconds a worker asked to exit for a recycle (``_recycle``) gets before it is killed."""

TAKE_BACK_AFTER = 0.2
"""Seconds a job runs before the jobs waiting behind it in its worker's batch are taken
back and handed to other workers. A batch holds about 0.1 s of work, so a job this
long is not one of the quick jobs it was sized for."""

DEADLINE_CHECK = 0.25
"""Seconds between looks at the boards for jobs past their time limit."""

BATCH_CHECK = 0.05
"""Seconds between looks at the boards for batches held up behind a long job (only
while some worker holds jobs it has not started)."""

TIMED_OUT = "timed out: it ran past its time limit and its worker was killed"


def kill_past_deadline(pool: Pool, now: float, queue: str) -> None:
    """Kill each worker that runs a job of its batch past the job's time limit (and has
    not been killed for something already), each asked to exit for a recycle that has
    not within ``RETIRE_GRACE``, and each process whose actor stopped but that has not
    ended (``_exits``)."""
    pool.leaving.check(now, queue)
    for slot in pool.slots:
        if slot.state == RETIRING and now - slot.retired_at > RETIRE_GRACE:
            if slot.kill_reason is None:
                kill(slot, "did not exit when recycled", queue)
            continue
        if slot.state != BUSY or slot.pid is None or slot.kill_reason is not None:
            continue
        batch, index, deadline, _ = slot.board.running()
        if batch == slot.batch and index >= 0 and deadline and now > deadline:
            kill(slot, TIMED_OUT, queue)


def kill_kind(reason: str | None) -> str:
    """How a busy worker's end is counted in the metrics: ``timeout`` (killed at a job's
    time limit), ``died`` (nobody here killed it: a crash, the OOM killer...) or
    ``stopped`` (killed at shutdown)."""
    if reason is None:
        return "died"
    return "timeout" if reason == TIMED_OUT else "stopped"


def kill(slot: Slot, reason: str, queue: str, *, requeue_running: bool = False) -> None:
    """Kill ``slot``'s worker; its batch is settled when its exit is heard, with
    ``reason`` for the job it was running (or that job back to the queue)."""
    slot.kill_reason = reason
    slot.requeue_running = requeue_running
    if slot.pid is None:
        return
    log.warning("queue %s: killing worker %d (pid %d): %s", queue, slot.index, slot.pid, reason)
    with contextlib.suppress(ProcessLookupError):
        os.kill(slot.pid, signal.SIGKILL)


# --- batches behind a long job ---------------------------------------------------------------


def take_back_held_up(
    slots: list[Slot], now: float
) -> tuple[bool, list[tuple[Slot, list[tuple[int, bytes]]]]]:
    """Take back the jobs waiting behind a long job in each worker's batch. Returns
    whether some worker still holds jobs it has not started (look again later), and
    the jobs taken back, by slot."""
    waiting = False
    taken = []
    for slot in slots:
        if not may_take_back(slot):
            continue
        waiting = True
        first = held_up_from(slot, now)
        if first is not None:
            jobs = take_back(slot, first)
            if jobs:
                taken.append((slot, jobs))
    return waiting, taken


def may_take_back(slot: Slot) -> bool:
    """Whether ``slot`` holds jobs a long job may hold up, not taken back yet."""
    return (
        slot.state == BUSY
        and not slot.standby
        and not slot.take_back_tried
        and slot.kill_reason is None
        and len(slot.jobs) >= 2
    )


def held_up_from(slot: Slot, now: float) -> int | None:
    """The index of the first job of ``slot``'s batch waiting behind a job that has run
    ``TAKE_BACK_AFTER`` (None: no job runs that long, or none waits behind it)."""
    running = slot.board.running()
    if (
        running.batch == slot.batch
        and 0 <= running.job < len(slot.jobs) - 1
        and now - running.started >= TAKE_BACK_AFTER
    ):
        return running.job + 1
    return None


def take_back(slot: Slot, first: int) -> list[tuple[int, bytes]]:
    """Take back the jobs of ``slot``'s batch from ``first`` on that its worker has not
    started (it is inside a long job); once per batch. Returns them: they are no longer
    the worker's."""
    slot.take_back_tried = True
    indexes = slot.board.take_back(slot.batch, first, len(slot.jobs))
    jobs = [slot.jobs[i] for i in indexes]
    slot.taken_back.update(ref for ref, _ in jobs)
    return jobs


# --- a dead worker -----------------------------------------------------------------------------


def adopt_from_board(slot: Slot) -> tuple[tuple[int, bytes], ...]:
    """A worker on standby died: the jobs it took whose report has not come, to adopt.

    A job its board does not show started was never run: it died between its BLMOVE
    and its board, and the QueueManager's reconcile gives it back.
    """
    held = slot.board.held_texts()
    if not held:
        return ()
    statuses = slot.board.statuses(slot.batch, held[-1][0] + 1)
    known = {ref for ref, _ in slot.jobs}
    return tuple(
        (slot.first_ref - index, text)
        for index, text in held
        if slot.first_ref - index not in known and statuses[index] != boards.NOT_STARTED
    )


@attrs.define
class Settlement:
    """How the jobs of a dead worker's batch ended, as its board tells."""

    acked: list[int] = attrs.field(factory=list)
    failed: list[tuple[int, FailureRecord]] = attrs.field(factory=list)
    requeued: list[int] = attrs.field(factory=list)


def settle_dead_batch(
    slot: Slot, queue: str, settings: Settings, worker_retries: dict[str, bool | int]
) -> Settlement:
    """Settle the batch of ``slot``'s dead worker from its board: each job ran, died
    in, or never began (jobs reported or taken back are settled already)."""
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
    settled = Settlement()
    for (ref, text), status in zip(slot.jobs, statuses, strict=True):
        if ref in slot.reported or ref in slot.taken_back:
            continue
        if status == boards.SUCCEEDED:
            settled.acked.append(ref)
        elif status in (boards.NOT_STARTED, boards.GIVEN_BACK) or (
            status == boards.RUNNING and slot.requeue_running
        ):
            settled.requeued.append(ref)
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
                queue=queue,
                settings=settings,
                worker_retries=worker_retries,
            )
            settled.failed.append((ref, record))
    log.warning(
        "queue %s: worker %d (pid %s) died during batch %d (%s); settled from its "
        "board: %d done, %d failed, %d back to the queue",
        queue,
        slot.index,
        slot.pid,
        slot.batch,
        reason,
        len(settled.acked),
        len(settled.failed),
        len(settled.requeued),
    )
    return settled


def log_taken_back(queue: str, index: int, count: int) -> None:
    """Jobs waiting behind a long job in worker ``index``'s batch go to other workers."""
    log.info(
        "queue %s: worker %d is inside a long job; %d jobs waiting behind it in its "
        "batch go to other workers",
        queue,
        index,
        count,
    )
