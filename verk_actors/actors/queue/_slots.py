"""The worker pool of a WorkersManager: one slot per worker, and the states it goes through.

A slot is ``starting`` until its worker says it is ready, then ``free`` or ``busy``
(a batch or a standby in hand); ``broken`` if its worker cannot start (its slot stays
empty until the queue restarts); ``retiring`` once asked to exit for a recycle
(``_recycle``). A worker is free only when the worker itself says so
(its ``JobsDone`` with ``finished``) or when it has been replaced.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import attrs

from verk_actors.actors.messages import TreeNode
from verk_actors.actors.queue._board import Board
from verk_actors.actors.queue._exits import ExitWatch
from verk_actors.actors.supervisor import RestartIntensity
from verk_actors.store import running_jobs
from verk_actors.store.running_jobs import Running

log = logging.getLogger(__name__)

STARTING = "starting"
FREE = "free"
BUSY = "busy"
BROKEN = "broken"
RETIRING = "retiring"

QUIET_AFTER = 0.25
"""A busy worker silent this long is inside one long job (workers report at least every
``REPORT_EVERY`` between jobs): it stops counting against the active-worker limit,
so a few long jobs never hold up the rest of the queue."""

REPLACE_AFTER = 0.05
"""Seconds between a worker's death and its replacement."""


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
    quota: int | None = None
    """Jobs its worker may run before it is recycled (None: no limit)."""
    retiring: str = ""
    """Why its worker asked to be recycled (``_recycle``); ``retired_at``: when asked to exit."""
    retired_at: float = 0.0

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

    def ready(self, pid: int) -> None:
        """Its worker (process ``pid``) has opened its board and may take jobs."""
        self.pid = pid
        self.board.unlink()
        if self.state == STARTING:
            self.state = FREE

    def broken(self, queue: str, error: str) -> None:
        """Its worker cannot start (``error``): the slot stays empty."""
        self.state = BROKEN
        log.error(
            "queue %s: worker %d cannot start (%s); its slot stays empty until the queue restarts",
            queue,
            self.index,
            error,
        )

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

    def finish(self) -> list[int]:
        """The batch is over: the worker is free. Returns the jobs it did not report
        (they did not run) and that were not taken back (another worker has those)."""
        unrun = (
            [ref for ref, _ in self.jobs if ref not in self.reported and ref not in self.taken_back]
            if self.in_hand()
            else []
        )
        self.state = FREE
        self.jobs = []
        self.reported = set()
        self.standby = False
        return unrun

    def text_of(self, index: int) -> bytes | None:
        """The text of job ``index`` of its batch (a standby's: the ``index``-th it
        took, reported or still on its board)."""
        if not self.standby:
            return self.jobs[index][1] if index < len(self.jobs) else None
        ref = self.first_ref - index
        for taken, text in reversed(self.jobs):
            if taken == ref:
                return text
        return next((text for at, text in self.board.held_texts() if at == index), None)


class Pool:
    """The slots in pool order, each found by the address its worker's messages come from,
    and the workers that exited, to be replaced."""

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self._by_address: dict[str, Slot] = {}
        self.replace: list[tuple[int, int | None]] = []
        """Slots to start a worker in: (index, pid if its worker exited while idle; 0:
        its worker is being recycled)."""
        self.idle_restarts = RestartIntensity(5, 10.0)
        self.restarts: dict[int, int] = {}
        """Workers started in each slot after its first, for the tree view."""
        self.recycles: dict[int, int] = {}
        """Workers recycled in each slot (not counted in ``restarts``)."""
        self.leaving = ExitWatch()
        """Processes of workers asked to exit, until they have ended (``_exits``)."""

    def add(self, slot: Slot) -> None:
        self.slots.append(slot)

    def exited(self, slot: Slot) -> None:
        """``slot``'s worker exited: the slot leaves the pool, to be replaced."""
        self.slots.remove(slot)
        self._by_address = {k: v for k, v in self._by_address.items() if v is not slot}
        if slot.state == RETIRING:
            # Recycled: replaced already; idle above the floor: not replaced. Its actor
            # has stopped; its process is watched until it has ended too.
            self.leaving.watch(slot.pid, f"worker {slot.index}", time.monotonic())
            return
        self.replace.append((slot.index, None if slot.state == BUSY else slot.pid))

    def recycle(self, slot: Slot, now: float) -> None:
        """``slot``'s worker is asked to exit for a recycle: a new one starts in its slot
        at once (both are in the pool until the old one has exited)."""
        slot.state = RETIRING
        slot.retired_at = now
        self.replace.append((slot.index, 0))

    def to_replace(self, queue: str, now: float) -> tuple[list[int], int]:
        """The slots to start a new worker in: each whose worker exited, unless workers
        keep dying while idle (a broken start, not a job); and how many of them were
        recycled."""
        replace, self.replace = self.replace, []
        indexes = []
        recycled = 0
        for index, idle_pid in replace:
            if idle_pid == 0:
                indexes.append(index)
                self.recycles[index] = self.recycles.get(index, 0) + 1
                recycled += 1
                continue
            if idle_pid is not None:
                log.warning("queue %s: idle worker %d (pid %d) exited", queue, index, idle_pid)
                if not self.idle_restarts.allow(now):
                    log.error(
                        "queue %s: workers keep dying while idle; not restarting worker %d",
                        queue,
                        index,
                    )
                    continue
            indexes.append(index)
            self.restarts[index] = self.restarts.get(index, 0) + 1
        return indexes, recycled

    def find(self, address: Any) -> Slot | None:
        """The slot of the worker at ``address`` (None: not one of ours, or gone)."""
        # ActorAddress is not hashable and its == is slow; the address createActor
        # returned may print differently from the one a message comes from, so each
        # sender's text is matched with == once, then remembered.
        key = str(address)
        slot = self._by_address.get(key)
        if slot is None:
            slot = next((s for s in self.slots if s.address == address), None)
            if slot is not None:
                self._by_address[key] = slot
        return slot

    def __len__(self) -> int:
        return len(self.slots)

    def free(self) -> list[Slot]:
        """The free slots, in pool order (the first ones stay warm)."""
        return [s for s in self.slots if s.state == FREE]

    def any_busy(self, *, but: Slot | None = None) -> bool:
        return any(s.state == BUSY for s in self.slots if s is not but)

    def any_standby(self) -> bool:
        """Whether some worker is on standby or has not reported its standby over."""
        return any(s.standby for s in self.slots)

    def busy_and_quiet(self, now: float) -> tuple[int, int]:
        """Busy workers heard from lately, and busy ones gone quiet inside a long job
        (or whose batch was taken back from behind one)."""
        busy = quiet = 0
        for slot in self.slots:
            if slot.state == BUSY:
                if now - slot.heard_at < QUIET_AFTER and not slot.taken_back:
                    busy += 1
                else:
                    quiet += 1
        return busy, quiet

    def in_hand(self) -> int:
        """Jobs the busy workers hold and have not reported."""
        return sum(s.in_hand() for s in self.slots if s.state == BUSY)

    def running(self, queue: str, now: float) -> dict[str, Running]:
        """The job each worker runs now, read off their boards, by running-jobs field
        (a job handed to a worker and not started yet is not running)."""
        wall = time.time()
        running: dict[str, Running] = {}
        for slot in self.slots:
            if slot.state != BUSY:
                continue
            job = slot.board.running()
            if job.batch != slot.batch or job.job < 0:
                continue
            text = slot.text_of(job.job)
            if text is not None:
                running[running_jobs.field(queue, slot.index)] = Running(
                    (slot.batch, job.job), text, wall - (now - job.started)
                )
        return running

    def tree(self, standby: Slot | None) -> tuple[TreeNode, ...]:
        """The workers as the tree view shows them."""
        return tuple(
            TreeNode(
                0,
                f"worker {slot.index}",
                "WorkerActor",
                slot.pid,
                state=slot.state,
                restarts=self.restarts.get(slot.index, 0),
                detail=(
                    "on standby: waits on the queue itself"
                    if slot is standby
                    else f"{slot.in_hand()} jobs in hand"
                    if slot.state == BUSY
                    else ""
                )
                + (
                    f" (recycled {self.recycles[slot.index]}x)"
                    if slot.index in self.recycles
                    else ""
                ),
            )
            for slot in sorted(self.slots, key=lambda s: s.index)
        )

    def close(self) -> None:
        """Unmap every board, stop watching processes (the manager stops)."""
        for slot in self.slots:
            slot.board.close()
        self.leaving.close()
