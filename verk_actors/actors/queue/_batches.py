"""How many jobs to ask for and how to share them among free workers (pure arithmetic).

With a backlog, one message carries a batch of jobs to a worker and one message
carries its results back, so actor messages cost little per job. Batches grow only
for fast jobs: the size aims at ``TARGET_BATCH_SECONDS`` of work, so slow jobs are
handed out one at a time and never wait behind each other. Each message costs the
WorkersManager about a millisecond in Thespian's transport, so a batch aims at a
tenth of a second of work.

How many workers run at once is sized to the machine (``CpuGauge``): jobs that keep
a CPU busy most of their run time gain nothing from more busy worker processes than
cores, and lose to the switching between them; jobs that mostly wait (on the network,
on disk) use every worker of the pool.
"""

from __future__ import annotations

import math
import os

import attrs

TARGET_BATCH_SECONDS = 0.1
MAX_REQUEST = 2000
MAX_IN_PROGRESS = 2000
"""Most jobs of one queue a node holds at once on a backlog: in its workers' batches
(running or waiting their turn), ready for the next free worker, and asked for. It
leaves the rest of a backlog to other nodes."""
EWMA_WEIGHT = 0.2
MAX_BATCH_BYTES = 1024 * 1024
"""About the most bytes of job text in one batch, and so in a worker's share of a take.
Jobs of 100 kB came 500 to a 50 MB message and drained at 360-400 jobs/s; at most
1 MB a batch, 1,320 (10 kB jobs: 9,100-9,500 -> 13,700-13,800; 128 kB batches were
too small, 4,000; measured with 25 workers and no-op jobs)."""


@attrs.define
class BatchSizer:
    """Jobs per worker message, from moving averages of job durations and text sizes."""

    max_batch: int
    average: float | None = None
    text_bytes: float | None = None
    """Moving average of the length of a job's text."""

    def observe_texts(self, count: int, total_bytes: int) -> None:
        """Feed ``count`` job texts of ``total_bytes`` in all."""
        if count > 0:
            self.text_bytes = _moved(self.text_bytes, total_bytes / count, count)

    def observe(self, duration: float) -> None:
        """Feed the duration (seconds) of one finished job."""
        self.average = _moved(self.average, duration, 1)

    def observe_many(self, count: int, seconds: float) -> None:
        """Feed ``count`` finished jobs that took ``seconds`` in all."""
        if count > 0:
            self.average = _moved(self.average, seconds / count, count)

    @property
    def size(self) -> int:
        """Jobs to hand one worker at once."""
        if self.average is None:
            return 1
        most = self.max_batch
        if self.text_bytes:
            most = max(1, min(most, int(MAX_BATCH_BYTES / self.text_bytes)))
        if self.average <= 0:
            return most
        return max(1, min(most, int(TARGET_BATCH_SECONDS / self.average)))


def _moved(average: float | None, mean: float, count: int) -> float:
    """A moving average after ``count`` samples whose mean is ``mean`` (each weighs
    ``EWMA_WEIGHT``, up to 50 of them)."""
    if average is None:
        return mean
    weight = 1.0 - (1.0 - EWMA_WEIGHT) ** min(count, 50)
    return average + weight * (mean - average)


def jobs_wanted(
    free_workers: int, batch_size: int, held: int, *, prefetch: int = 0, in_workers: int = 0
) -> int:
    """Jobs to ask the QueueManager for: a batch per free worker and ``prefetch`` more,
    less the ``held`` ones; at most ``MAX_REQUEST``, and no more than keeps the jobs
    in hand (``in_workers``, not yet done in the workers' batches, and ``held``)
    within ``MAX_IN_PROGRESS``."""
    wanted = free_workers * batch_size + prefetch - held
    room = MAX_IN_PROGRESS - in_workers - max(held, 0)
    return max(0, min(MAX_REQUEST, wanted, room))


def bounded_batch(size: int, active: int) -> int:
    """The batch size that lets ``active`` busy workers each hold a batch, with one
    more batch ready, within ``MAX_IN_PROGRESS`` (many busy workers: smaller batches)."""
    return max(1, min(size, MAX_IN_PROGRESS // (max(active, 1) + 1)))


def share(held: int, free_workers: int, batch_size: int) -> int:
    """How many of ``held`` jobs the next free worker gets (spread over all free ones)."""
    if held <= 0 or free_workers <= 0:
        return 0
    return max(1, min(batch_size, math.ceil(held / free_workers)))


CPU_WEIGHT = 0.3
"""Weight of the newest report in the moving average of the jobs' CPU share."""

MIN_SAMPLE = 0.02
"""Seconds of running a sample must cover: the kernel's CPU accounting is coarse, so
short reports are summed until they reach it."""


def machine_cores() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@attrs.define
class CpuGauge:
    """How much of their run time the jobs keep a CPU busy, and so how many workers to use.

    Workers report the wall time of their work, the CPU time it took and the time it
    spent ready but waiting for a CPU (Linux ``/proc/self/schedstat``). The share is
    ``cpu / (wall - waiting)``: waiting for a CPU is left out, so the share does not
    fall (and ask for yet more workers) when the machine is already busy.
    """

    cores: int
    share: float | None = None
    running: float = 0.0
    cpu: float = 0.0

    def observe(self, wall: float, cpu: float, waiting: float) -> None:
        """Feed one report's span: seconds of wall, CPU and run-queue waiting."""
        if cpu <= 0:  # no CPU accounting here (not Linux)
            return
        self.running += max(0.0, wall - waiting)
        self.cpu += cpu
        if self.running < MIN_SAMPLE:
            return
        sample = min(1.0, self.cpu / self.running)
        self.running = self.cpu = 0.0
        if self.share is None:
            self.share = sample
        else:
            self.share += CPU_WEIGHT * (sample - self.share)

    def active_limit(self, pool: int, *, long_jobs: bool = False) -> int:
        """Workers of a ``pool`` that should run batches at once: enough to keep every
        core busy while some jobs wait, never fewer than the cores, never more than
        the pool.

        Unknown share (nothing measured yet): one worker per core, until the first
        reports tell, a few milliseconds later for quick jobs; so a backlog at start
        warms two processes, not the whole pool at once. Once jobs still unmeasured
        have run long (``long_jobs``: busy workers gone quiet), the whole pool: they
        may be waiting, not computing.
        """
        if self.share is None or self.share <= 0:
            return pool if long_jobs else min(pool, self.cores)
        return max(1, min(pool, max(self.cores, round(self.cores / self.share))))
