"""Workers the test nodes run (imported by the nodes as ``tests.jobs``).

They report what they did into Redis (the URL is an argument), so tests can count
executions without trusting the node.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import Any

import redis

from verk_actors import Worker

_clients: dict[str, redis.Redis] = {}


def client(url: str) -> redis.Redis:
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


class Record(Worker):
    """Appends ``token`` to the list ``key``."""

    def perform(self, url: str, key: str, token: Any) -> None:
        client(url).rpush(key, token)


class Noop(Worker):
    """Does nothing."""

    def perform(self, *args: Any) -> None:
        return None


class Fail(Worker):
    """Records the attempt, then raises."""

    def perform(self, url: str, key: str, token: Any) -> None:
        client(url).rpush(key, token)
        raise ValueError(f"boom {token}")


class Sleep(Worker):
    """Records the start, sleeps, records the end."""

    def perform(self, url: str, key: str, token: Any, seconds: float) -> None:
        client(url).rpush(key, f"start:{token}")
        time.sleep(seconds)
        client(url).rpush(key, f"end:{token}")


class Nap(Worker):
    """Records when it started (``time.time()``) in the hash ``key`` under ``token``,
    then sleeps ``seconds``."""

    def perform(self, url: str, key: str, token: Any, seconds: float) -> None:
        client(url).hset(key, str(token), repr(time.time()))
        time.sleep(seconds)


class Doze(Worker):
    """Sleeps ``seconds`` (a job that waits rather than computes)."""

    def perform(self, seconds: float) -> None:
        time.sleep(seconds)


class Spin(Worker):
    """Keeps a CPU busy for ``seconds`` (a CPU-bound job)."""

    def perform(self, seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass


class Crash(Worker):
    """Records the attempt, then kills its own process."""

    def perform(self, url: str, key: str, token: Any) -> None:
        client(url).rpush(key, token)
        os.kill(os.getpid(), signal.SIGKILL)


class Hang(Worker):
    """Records the start, then never returns (ignores the soft time limit)."""

    timeout = 0.5

    def perform(self, url: str, key: str, token: Any) -> None:
        client(url).rpush(key, token)
        while True:
            try:
                time.sleep(10)
            except BaseException:  # swallow the soft timeout on purpose
                continue


class Slow(Worker):
    """Sleeps past its time limit (the soft limit interrupts it)."""

    timeout = 0.3

    def perform(self, url: str, key: str, token: Any) -> None:
        client(url).rpush(key, token)
        time.sleep(5)


class FirstSlow(Worker):
    """Records each start and end; only the first attempt of a token sleeps ``seconds``."""

    def perform(self, url: str, key: str, token: Any, seconds: float) -> None:
        attempt = client(url).incr(f"{key}:attempts:{token}")
        client(url).rpush(key, f"start:{token}")
        if attempt == 1:
            time.sleep(seconds)
        client(url).rpush(key, f"end:{token}")


class Stamp(Worker):
    """Records how long after ``enqueued`` (time.time() of the enqueuer) it started."""

    def perform(self, url: str, key: str, enqueued: float) -> None:
        started = time.time()
        client(url).rpush(key, started - enqueued)


class Segfault(Worker):
    """Records its process id, then reads address 0 (a crash in C: SIGSEGV)."""

    def perform(self, url: str, key: str) -> None:
        client(url).rpush(key, os.getpid())
        ctypes.string_at(0)


class FailTwice(Worker):
    """Records the attempt and raises; retried at once, at most twice (its own option)."""

    retry = 2

    def perform(self, url: str, key: str, token: Any) -> None:
        client(url).rpush(key, token)
        raise ValueError(f"boom {token}")

    def retry_in(self, retry_count: int, error: BaseException) -> float | None:
        return 0.0


class CrashOnceRetried(Worker):
    """Records the attempt, then kills its own process; retried at most once."""

    retry = 1

    def perform(self, url: str, key: str, token: Any) -> None:
        client(url).rpush(key, token)
        os.kill(os.getpid(), signal.SIGKILL)


async def _record(url: str, key: str, token: Any) -> None:
    client(url).rpush(key, token)


class ReturnsCoroutine(Worker):
    """A plain perform that returns a coroutine (what a sync wrapper of async code may do)."""

    def perform(self, url: str, key: str, token: Any) -> Any:
        return _record(url, key, token)
