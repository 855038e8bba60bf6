"""Workers for the Sidekiq interoperability tests (imported by nodes as ``tests.interop_jobs``).

Their names match the Ruby workers in ``tests/interop/workers.rb``, so a job can run
on either side. Their arguments are the test data and nothing else (a Ruby client
pushes them too), so the Redis they report to comes from the environment variable
``VERK_INTEROP_REDIS_URL``, which the tests set before the actor system forks.

Each run appends one JSON entry to the list ``interop:ran``, in the same shape as the
Ruby workers: ``{"runner", "class", "jid", "args"}``, plus ``"text"``, the job text as
the node read it from Redis.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis

from verk_actors import Worker

URL_ENV = "VERK_INTEROP_REDIS_URL"
RAN = "interop:ran"

_clients: dict[str, redis.Redis] = {}


def _client() -> redis.Redis:
    url = os.environ[URL_ENV]
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


def _record(worker: Worker, args: tuple[Any, ...]) -> None:
    job = worker.job
    entry = {
        "runner": "verk",
        "class": job.class_name,
        "jid": job.jid,
        "args": list(args),
        "text": job.original_json,
    }
    _client().rpush(RAN, json.dumps(entry, ensure_ascii=False))


class InteropRecord(Worker):
    """Records its arguments (Sidekiq's ``InteropRecord`` does the same)."""

    def perform(self, *args: Any) -> None:
        _record(self, args)


class InteropSidekiqFails(Worker):
    """Records its arguments; the Ruby worker of this name raises, this one succeeds."""

    def perform(self, *args: Any) -> None:
        _record(self, args)


class InteropAlwaysFails(Worker):
    """Records its arguments, then raises ValueError (on both sides)."""

    def perform(self, *args: Any) -> None:
        _record(self, args)
        raise ValueError(f"verk refuses ✗ {args[0] if args else ''}")


class InteropFailsFirst(Worker):
    """Records each attempt; the first attempt of a jid raises ValueError, later ones pass."""

    def perform(self, *args: Any) -> None:
        _record(self, args)
        if _client().incr(f"interop:attempts:{self.job.jid}") == 1:
            raise ValueError(f"first try of {self.job.jid} fails ✗")
