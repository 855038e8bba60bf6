"""Async workers for queues in async mode (imported by test nodes as ``tests.async_lane_jobs``).

As ``tests.lane_jobs``, each records into Redis when it ran and in which process.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from tests.jobs import client
from tests.lane_jobs import span
from tests.limit_jobs import COUNT_IN, DONE, MOST, RUNNING
from verk_actors import Concurrent, Worker


class AsyncNap(Worker):
    """Awaits ``seconds``, then records its span (token, pid, start, end) in ``key``."""

    async def perform(self, url: str, key: str, seconds: float, token: Any) -> None:  # type: ignore[override]
        began = time.time()
        await asyncio.sleep(seconds)
        span(url, key, token, began)


class AsyncHold(Worker):
    """Records ``token pid`` in ``key``, then waits until ``release`` exists, then
    records its token in ``key:done``."""

    async def perform(self, url: str, key: str, release: str, token: Any) -> None:  # type: ignore[override]
        r = client(url)
        r.rpush(key, f"{token} {os.getpid()}")
        while not r.exists(release):
            await asyncio.sleep(0.05)
        r.rpush(f"{key}:done", token)


class AsyncForever(Worker):
    """Records ``token pid`` in ``key``, then awaits far past its 0.5 s time limit."""

    timeout = 0.5

    async def perform(self, url: str, key: str, token: Any) -> None:  # type: ignore[override]
        client(url).rpush(key, f"{token} {os.getpid()}")
        await asyncio.sleep(60)


class AsyncLimited(Worker):
    """At most 2 at once ("alim"): counts itself in and out as ``ConcurrentJob`` does."""

    limits = (Concurrent("alim", 2, lease=60),)

    async def perform(self, url: str, seconds: float) -> None:  # type: ignore[override]
        r = client(url)
        r.eval(COUNT_IN, 2, RUNNING, MOST)
        await asyncio.sleep(seconds)
        r.decr(RUNNING)
        r.rpush(DONE, self.job.jid or "")


class AsyncFail(Worker):
    """Records ``token`` in ``key``, then raises ValueError (as ``tests.jobs.Fail``)."""

    async def perform(self, url: str, key: str, token: Any) -> None:  # type: ignore[override]
        client(url).rpush(key, token)
        await asyncio.sleep(0)
        raise ValueError(f"async boom {token}")
