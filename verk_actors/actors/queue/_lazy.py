"""The lazy pool: a queue's worker processes start as work comes and idle ones stop.

With ``min_workers`` (the queue's, else the node's) below the queue's concurrency,
its WorkersManager starts only that many workers. When it holds jobs that no free
worker may take and the CPU gauge (``_cpu_gauge``) would let more workers run than
are busy or starting, it starts more, up to the concurrency. A worker that has been
free for ``worker_idle_timeout`` while more than ``min_workers`` are up is asked to
exit between jobs, as a recycled worker is (``_recycle``), and not replaced. A worker
on standby (``_standby``) is busy, so an idle queue keeps at least that one.

By default ``min_workers`` is the concurrency: the whole pool starts with the node
and stays, as before this existed.
"""

from __future__ import annotations

import logging

from verk_actors.actors.queue._cpu_gauge import CpuGauge
from verk_actors.actors.queue._slots import BROKEN, FREE, RETIRING, STARTING, Pool, Slot
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import Settings

log = logging.getLogger(__name__)


class LazyPool:
    """When to start workers beyond the floor, and when to stop idle ones."""

    def __init__(self, concurrency: int = 0, floor: int | None = None, idle_after: float = 60.0):
        self.concurrency = concurrency
        self.floor = concurrency if floor is None else min(floor, concurrency)
        self.idle_after = idle_after
        self.free_since: dict[int, float] = {}
        """When each free worker, by slot index, was first seen free."""

    @classmethod
    def of(cls, spec: QueueSpec, settings: Settings) -> LazyPool:
        """The lazy pool of a queue: its ``min_workers``, else the node's."""
        floor = spec.min_workers if spec.min_workers is not None else settings.min_workers
        return cls(spec.concurrency, floor, settings.worker_idle_timeout)

    @property
    def lazy(self) -> bool:
        return self.floor < self.concurrency

    def first(self) -> range:
        """The slots started with the queue."""
        return range(self.floor)

    def room(self, pool: Pool, gauge: CpuGauge, now: float) -> int:
        """Workers that may start to run jobs at once: as many more as the CPU gauge
        lets run, beyond those busy, starting or free, up to the concurrency."""
        if not self.lazy:
            return 0
        busy, quiet = pool.busy_and_quiet(now)
        up = sum(1 for s in pool.slots if s.state in (STARTING, FREE))
        active = gauge.active_limit(self.concurrency, long_jobs=quiet > 0)
        return max(0, min(active - busy - up, self.concurrency - len(pool) - len(pool.replace)))

    def to_start(self, pool: Pool, held: int, room: int) -> list[int]:
        """Slots to start a worker in now: ``held`` jobs wait and no worker is free."""
        count = min(held, room)
        if count <= 0 or pool.free():
            return []
        used = {s.index for s in pool.slots} | {index for index, _ in pool.replace}
        return [i for i in range(self.concurrency) if i not in used][:count]

    def to_stop(self, pool: Pool, now: float, queue: str) -> list[Slot]:
        """Free workers idle for ``idle_after`` above the floor: asked to exit, not replaced."""
        if not self.lazy:
            return []
        since = {s.index: self.free_since.get(s.index, now) for s in pool.slots if s.state == FREE}
        self.free_since = since
        up = sum(1 for s in pool.slots if s.state not in (RETIRING, BROKEN)) - self.floor
        idle = [s for s in pool.free() if now - since[s.index] >= self.idle_after]
        # The last slots in pool order go first: the first ones stay warm.
        stopped = sorted(idle, key=lambda s: s.index, reverse=True)[: max(0, up)]
        for slot in stopped:
            slot.state = RETIRING
            slot.retired_at = now
            del self.free_since[slot.index]
        if stopped:
            log.info(
                "queue %s: %d idle worker(s) stopped (idle %.0f s; %d kept)",
                queue,
                len(stopped),
                self.idle_after,
                self.floor,
            )
        return stopped
