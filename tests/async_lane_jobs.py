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
from verk_actors import Worker


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
