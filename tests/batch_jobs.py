"""Workers of the batch tests (imported by the nodes as ``tests.batch_jobs``).

Each records what it did in Redis (the URL is an argument), so a test counts runs and
callbacks without trusting the node.
"""

from __future__ import annotations

import json
from typing import Any

from tests.jobs import client
from verk_actors import Batch, Worker

RUNS = "batch-test:runs"
"""Count of executions of ``Row`` (a job run twice counts twice)."""
DONE = "batch-test:done"
"""Set of the jids of the ``Row`` jobs that ran."""
LOG = "batch-test:log"
"""List of what happened, in order: ``row <n>``, ``child <n>``, ``<event> <bid>``."""
CALLBACKS = "batch-test:callbacks"
"""List of the callbacks run: JSON ``[event, bid, options]``."""


class Row(Worker):
    """One unit of a batch's work."""

    def perform(self, url: str, n: int) -> None:
        redis_client = client(url)
        redis_client.incr(RUNS)
        redis_client.sadd(DONE, self.job.jid or "")


class Child(Worker):
    """A job its parent added to the parent's batch: logs itself."""

    def perform(self, url: str, n: int) -> None:
        client(url).rpush(LOG, f"child {n}")


class Parent(Worker):
    """Adds ``children`` jobs to its own batch, then ends."""

    def perform(self, url: str, children: int) -> None:
        with Batch.reopen(self.job, url=url) as batch:
            for n in range(children):
                batch.enqueue(Child, url, n)
        client(url).rpush(LOG, "parent")


class FailOnce(Worker):
    """Fails its first try (a key marks it), succeeds on the retry, one second later."""

    def perform(self, url: str, key: str) -> None:
        if client(url).set(key, 1, nx=True):
            raise RuntimeError("first try fails")
        client(url).rpush(LOG, f"retried {key}")

    def retry_in(self, retry_count: int, error: BaseException) -> float | None:
        return 1.0


class Hopeless(Worker):
    """Always fails, with no retry: straight to dead."""

    retry = False

    def perform(self, url: str) -> None:
        raise RuntimeError("never works")


class Callback(Worker):
    """A batch callback: logs the event and records its arguments."""

    def perform(self, status: dict[str, Any], options: dict[str, Any]) -> None:
        redis_client = client(options["url"])
        redis_client.rpush(LOG, f"{status['event']} {status['bid']}")
        redis_client.rpush(CALLBACKS, json.dumps([status["event"], status["bid"], options]))
