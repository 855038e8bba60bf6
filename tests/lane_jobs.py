"""Workers for queues in threads mode (imported by test nodes as ``tests.lane_jobs``).

Each records into Redis (the URL is an argument) when it ran, in which process, so
tests can count jobs in flight from the jobs' own records.
"""

from __future__ import annotations

import os
import time
from typing import Any

from tests.jobs import client
from verk_actors import Worker


def span(url: str, key: str, token: Any, began: float) -> None:
    client(url).rpush(key, f"{token} {os.getpid()} {began} {time.time()}")


class ThreadNap(Worker):
    """Sleeps ``seconds`` (a plain def: in a thread), then records its span in ``key``."""

    def perform(self, url: str, key: str, seconds: float, token: Any) -> None:
        began = time.time()
        time.sleep(seconds)
        span(url, key, token, began)


class ThreadHold(Worker):
    """As AsyncHold, in a thread."""

    def perform(self, url: str, key: str, release: str, token: Any) -> None:
        r = client(url)
        r.rpush(key, f"{token} {os.getpid()}")
        while not r.exists(release):
            time.sleep(0.05)
        r.rpush(f"{key}:done", token)


class ThreadStuck(Worker):
    """Records ``token pid`` in ``key``, then sleeps in C past its 0.3 s time limit
    (a thread cannot be interrupted there)."""

    timeout = 0.3

    def perform(self, url: str, key: str, token: Any) -> None:
        client(url).rpush(key, f"{token} {os.getpid()}")
        time.sleep(60)


class ThreadSpin(Worker):
    """Records ``token pid`` in ``key``, then loops in Python past its 0.3 s time limit
    (the timeout raised in its thread stops it)."""

    timeout = 0.3

    def perform(self, url: str, key: str, token: Any) -> None:
        client(url).rpush(key, f"{token} {os.getpid()}")
        while True:
            time.sleep(0.01)
