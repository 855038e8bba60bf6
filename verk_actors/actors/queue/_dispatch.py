"""Handing held jobs to free workers, and asking the QueueManager for more (prefetch).

The WorkersManager holds the jobs the QueueManager sent and gives each free worker a
batch of them, sized by ``_batches`` to about a tenth of a second of work; only as
many workers run batches at once as the CPU gauge allows (``_cpu_gauge``). It asks
for more jobs one request at a time, enough for every free worker and, for fast jobs,
a batch ahead for each worker that may run, so a worker that finishes gets its next
batch without waiting for Redis.
"""

from __future__ import annotations

from verk_actors.actors.messages import JobsDequeued
from verk_actors.actors.queue._batches import (
    MAX_IN_PROGRESS,
    BatchSizer,
    bounded_batch,
    jobs_wanted,
    share,
)
from verk_actors.actors.queue._cpu_gauge import CpuGauge, machine_cores
from verk_actors.actors.queue._lazy import LazyPool
from verk_actors.actors.queue._slots import Pool, Slot

ASK_AGAIN_AFTER = 2.0
"""Seconds without an answer to a request for jobs before it is sent again (a request
replaces the one before, so asking twice takes no more jobs)."""


class Dispatch:
    """The jobs held for the workers, and the request for more."""

    def __init__(self) -> None:
        self.held: list[tuple[int, bytes]] = []
        self.asked = 0
        """Jobs the QueueManager still owes the newest request (as far as we know)."""
        self.request = 0
        """The number of the newest request for jobs."""
        self.asked_at = 0.0
        self.next_batch = 1
        self.sizer = BatchSizer(100)
        self.gauge = CpuGauge(machine_cores())
        self.lazy = LazyPool()
        self.room = 0
        """Workers the lazy pool may start now (asked for jobs as if they were free)."""
        self.most_in_hand = MAX_IN_PROGRESS
        """Most jobs in hand at once: held, in the workers' batches and asked for."""

    def new_sizer(self, max_batch: int) -> BatchSizer:
        """The batch sizer of a pool whose batches hold at most ``max_batch`` jobs."""
        return BatchSizer(max_batch)

    def answered(self, message: JobsDequeued) -> None:
        """The QueueManager sent jobs (or found none) for a request."""
        if message.request == self.request:
            # Only ever lower it: Thespian may deliver an earlier answer after a later
            # one (the queue's "empty" before its last jobs).
            self.asked = min(self.asked, message.remaining)

    def hold(self, jobs: tuple[tuple[int, bytes], ...]) -> None:
        self.sizer.observe_texts(len(jobs), sum(len(text) for _, text in jobs))
        self.held.extend(jobs)

    def release(self) -> list[int]:
        """Give up the held jobs (stopping: they go back to the queue)."""
        refs = [ref for ref, _ in self.held]
        self.held.clear()
        return refs

    def batch_number(self) -> int:
        """The number of the next batch (or standby) handed to a worker."""
        self.next_batch += 1
        return self.next_batch - 1

    def hand_out(self, slot: Slot, count: int, now: float) -> list[tuple[int, bytes]]:
        """Give the next ``count`` held jobs to ``slot``, a free worker."""
        jobs, self.held = self.held[:count], self.held[count:]
        slot.begin(self.batch_number(), jobs, now)
        return jobs

    def run(
        self, pool: Pool, now: float, *, may_ask: bool
    ) -> tuple[list[tuple[Slot, list[tuple[int, bytes]]]], int]:
        """Hand held jobs to the free workers that may run; returns the batches handed
        out, by slot, and how many jobs to ask for (0: none, or ``may_ask`` is False)."""
        # The first free slots in pool order: the same few processes stay warm.
        free = pool.free()
        busy, quiet = pool.busy_and_quiet(now)
        active = self.gauge.active_limit(len(pool), long_jobs=quiet > 0)
        size = bounded_batch(self.sizer.size, active, self.most_in_hand)
        del free[max(0, active - busy) :]
        # No more jobs than free slots that may take some: one each, never two queued
        # behind each other (a job may be slower than the average says); the rest wait
        # for the next slot.
        few = len(self.held) <= len(free)
        handed = []
        while self.held and free:
            count = 1 if few else share(len(self.held), len(free), size)
            slot = free.pop(0)
            if slot.quota is not None:  # it is recycled after its quota: no more
                count = min(count, slot.quota)
            handed.append((slot, self.hand_out(slot, count, now)))
        self.room = self.lazy.room(pool, self.gauge, now)
        if not may_ask or self.asked:
            return handed, 0
        # One request at a time: a bigger one sent while jobs of the last are on their
        # way would bring both. Fast jobs: keep batches ready. Slow jobs: no prefetch.
        want = jobs_wanted(
            len(free) + self.room,
            size,
            len(self.held),
            prefetch=min(active, len(pool)) * size if size > 1 else 0,
            in_workers=pool.in_hand(),
            most=self.most_in_hand,
        )
        return handed, want

    def lazy_pool(self, lazy: LazyPool) -> range:
        """Start the pool lazily as ``lazy`` says; returns the slots to start now."""
        self.lazy = lazy
        return lazy.first()

    def to_start(self, pool: Pool) -> list[int]:
        """Slots the lazy pool starts a worker in now, for the jobs held."""
        return self.lazy.to_start(pool, len(self.held), self.room)

    def next_request(self, want: int) -> int:
        """The number a request for ``want`` jobs carries (0 jobs: the last one's)."""
        return self.request + 1 if want else self.request

    def asking(self, want: int, now: float) -> None:
        """A request for ``want`` jobs went out."""
        if want:
            self.request += 1
            self.asked = want
            self.asked_at = now

    def unanswered(self, now: float) -> None:
        """No answer to the request for long (a lost word): ask anew, it replaces."""
        if self.asked and not self.held and now - self.asked_at > ASK_AGAIN_AFTER:
            self.asked = 0
