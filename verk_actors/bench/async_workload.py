"""The benchmark's async job, for ``verk-actors bench --mode async``: a module apart,
because a node refuses ``async def perform`` workers unless a queue runs in async mode."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from verk_actors.bench.workload import COUNTER_KEY, QUEUE, counter
from verk_actors.jobs.worker import Worker


class BenchAsyncSleep(Worker):
    """Awaits ``seconds`` (waiting, as on the network), then the standard INCR."""

    queue: ClassVar[str] = QUEUE
    retry: ClassVar[bool | int] = False

    async def perform(self, seconds: float) -> None:  # type: ignore[override]
        await asyncio.sleep(seconds)
        # One INCR on the process's shared connection (a few µs: the loop barely waits).
        counter().incr(COUNTER_KEY)
