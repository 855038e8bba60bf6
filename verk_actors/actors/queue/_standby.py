"""The WorkersManager's side of the standby path (the worker's: ``_standby_worker``).

When the QueueManager finds the queue empty, one free worker goes on ``Standby``: it
waits on the queue itself and runs each job as it arrives, so an idle queue starts a
job without an actor message in between. The jobs it takes are adopted: reported with
their text, recorded like the others. While it waits, the manager looks for a backlog
now and then (a take that brings batches back if enough jobs are waiting) and looks at
its board: one job seen running at two looks in a row is a long one, and another
worker takes over the waiting. When a backlog appears, a pause or a drain comes, the
standby ends and jobs flow in batches again.
"""

from __future__ import annotations

from typing import Any

from verk_actors.actors.messages import EndStandby, Standby
from verk_actors.actors.queue._board import MAX_JOBS
from verk_actors.actors.queue._slots import Slot

STANDBY_FLUSH_AFTER = 0.05
"""Seconds outcomes may wait to be sent with others while a worker is on standby: its
jobs come one at a time, and a ``RecordOutcomes`` per job costs the two managers more
CPU than the job."""

STANDBY_CHECK = 0.05
"""Seconds between looks at the standby worker's board: one job seen running at two
looks in a row is a long one, and another worker takes over the waiting."""

BACKLOG_PROBE_EVERY = 0.05
"""While a worker is on standby, the most often the queue is looked at for a backlog
(a take that brings batches back if jobs are waiting). A job the standby takes hints
at one, but looking after every job costs a take on an empty queue and two actor
messages per job."""

BACKLOG_AT_LEAST = 8
"""A look for a backlog beside a worker on standby takes jobs only if this many wait:
fewer, the standby runs them one by one within a few milliseconds, sooner than a
batch through the two managers."""


class StandbyKeeper:
    """Which worker is on standby, and when to look for a backlog beside it."""

    def __init__(self) -> None:
        self.slot: Slot | None = None
        """The worker on standby (None: none, or it was told to end)."""
        self.idle = False
        """The queue was last found empty: no request for jobs goes out beside the
        standby until jobs it takes hint at a backlog."""
        self.seen: tuple[int, int] | None = None
        """(batch, job) the last look at the standby's board saw running."""
        self.probed_at = 0.0
        """When jobs taken on standby last sent a look for a backlog (monotonic)."""
        self.next_ref = -1
        """The number of the first job the next standby takes (then down)."""

    def begin(self, slot: Slot, batch: int, now: float) -> Standby:
        """``slot``'s free worker goes on standby as ``batch``: the message to send it."""
        slot.begin(batch, [], now)
        slot.first_ref = self.next_ref
        slot.standby = True
        self.next_ref -= MAX_JOBS
        self.slot = slot
        self.seen = None
        return Standby(slot.batch, slot.first_ref)

    def watches(self, batch: int) -> bool:
        """Whether ``batch`` is the standby going on."""
        return self.slot is not None and self.slot.batch == batch

    def in_long_job(self) -> bool:
        """Look at the standby's board: True once one job is seen running at two looks
        in a row (then ``drop`` it after ending it)."""
        slot = self.slot
        assert slot is not None
        batch, index, _, _ = slot.board.running()
        running = (batch, index) if batch == slot.batch and index >= 0 else None
        if running is not None and running == self.seen:
            return True
        self.seen = running
        return False

    def end_message(self) -> tuple[Any, EndStandby] | None:
        """(address, message) that ends the standby, if one goes on."""
        slot = self.slot
        return None if slot is None else (slot.address, EndStandby(slot.batch))

    def drop(self) -> None:
        """The standby was told to end (a long job): batches take over."""
        self.slot = None
        self.idle = False

    def gone(self, slot: Slot) -> None:
        """``slot``'s standby is over (reported finished, or its worker died)."""
        if slot is self.slot:
            self.slot = None

    def took(self, now: float) -> None:
        """The standby took jobs: they hint at a backlog, looked for at most every
        ``BACKLOG_PROBE_EVERY``."""
        if now - self.probed_at >= BACKLOG_PROBE_EVERY:
            self.probed_at = now
            self.idle = False

    @property
    def waits_idle(self) -> bool:
        """A worker waits on an idle queue: no request for jobs beside it."""
        return self.slot is not None and self.idle

    @property
    def least(self) -> int:
        """Jobs a take must find waiting to take any (beside a standby: a backlog)."""
        return BACKLOG_AT_LEAST if self.slot is not None else 1
