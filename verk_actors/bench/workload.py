"""The benchmark's jobs, the queue they run on and the counters they write.

The node of a benchmark run imports this module to register the workers; they find
the counter server in ``VERK_BENCH_COUNTER_URL``, set before the actor system forks.
The Ruby twins used by ``tests/benchmarks/bench_vs_sidekiq.py`` have the same names.
"""

from __future__ import annotations

import functools
import os
import time
from typing import ClassVar

import redis

from verk_actors.errors import ConfigurationError
from verk_actors.jobs.worker import Worker

COUNTER_URL_ENV = "VERK_BENCH_COUNTER_URL"
COUNTER_KEY = "bench:done"
PICKUP_KEY = "bench:pickup"
QUEUE = "verk-bench"
"""The benchmark's own queue, so a run on a shared Redis (``--force``) takes no one's jobs."""


@functools.lru_cache(maxsize=4)
def counter_client(url: str) -> redis.Redis:
    """The worker process's connection to the counter server (one per process, reused).

    A dedicated connection, like the Sidekiq twin's ``Redis.new`` per thread: a worker
    process runs one job at a time, so redis-py's pool would only add a checkout and a
    release to every ``INCR`` (about a quarter of its client CPU, measured).
    """
    return redis.Redis.from_url(url, single_connection_client=True)


def counter() -> redis.Redis:
    """The counter server's client of this process (``VERK_BENCH_COUNTER_URL``)."""
    url = os.environ.get(COUNTER_URL_ENV)
    if not url:
        raise ConfigurationError(
            f"{COUNTER_URL_ENV} is not set: the bench workers run only under `verk-actors bench`"
        )
    return counter_client(url)


class BenchIncr(Worker):
    """The standard job: one INCR of ``bench:done`` on the counter server."""

    queue: ClassVar[str] = QUEUE
    retry: ClassVar[bool | int] = False

    def perform(self) -> None:
        counter().incr(COUNTER_KEY)


class BenchNoop(Worker):
    """The standard job without its INCR (``--no-incr``): does nothing."""

    queue: ClassVar[str] = QUEUE
    retry: ClassVar[bool | int] = False

    def perform(self) -> None:
        return None


class BenchPickup(Worker):
    """Records how long after ``enqueued`` (``time.monotonic()``) it started, in seconds."""

    queue: ClassVar[str] = QUEUE
    retry: ClassVar[bool | int] = False

    def perform(self, enqueued: float) -> None:
        picked = time.monotonic() - enqueued
        counter().rpush(PICKUP_KEY, repr(picked))


class BenchSleep(Worker):
    """Sleeps ``seconds`` (waiting, as on the network), then the standard INCR."""

    queue: ClassVar[str] = QUEUE
    retry: ClassVar[bool | int] = False

    def perform(self, seconds: float) -> None:
        time.sleep(seconds)
        counter().incr(COUNTER_KEY)
