"""How busy the jobs keep a CPU, and so how many of a queue's workers run at once.

Jobs that keep a CPU busy most of their run time gain nothing from more busy worker
processes than cores, and lose to the switching between them; jobs that mostly wait
(on the network, on disk) use every worker of the pool. Each worker reads its own
CPU clock (``cpu_clock``) and reports the span with its jobs; the WorkersManager feeds
the spans to its ``CpuGauge`` and asks it how many workers may run batches at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

CPU_WEIGHT = 0.3
"""Weight of the newest report in the moving average of the jobs' CPU share."""

MIN_SAMPLE = 0.02
"""Seconds of running a sample must cover: the kernel's CPU accounting is coarse, so
short reports are summed until they reach it."""

SCHEDSTAT = Path("/proc/self/schedstat")


def machine_cores() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def cpu_clock() -> tuple[float, float]:
    """Seconds this process has run on a CPU and waited ready for one (0, 0 off Linux)."""
    try:
        on_cpu, waiting, _ = SCHEDSTAT.read_bytes().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on_cpu) / 1e9, int(waiting) / 1e9


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

    def detail(self, pool: int) -> str:
        """What the gauge decides for a ``pool``, for the tree view ("" unmeasured)."""
        if self.share is None:
            return ""
        limit = self.active_limit(pool)
        return f", jobs busy on CPU {self.share:.0%} of their time: {limit} run at once"
