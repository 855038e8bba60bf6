"""Workers of the unique-job tests (imported by the nodes as ``tests.unique_jobs``).

Each records its start and its end in Redis (the URL is an argument), keyed on its
``name`` argument only (``unique_key``).
"""

from __future__ import annotations

import time
from typing import Any

from tests.jobs import client
from verk_actors import Worker

RUNS = "unique-test:runs"
DONE = "unique-test:done"


class SlowUnique(Worker):
    """Unique until it succeeds: records its start, sleeps, records its end."""

    unique_for = 30

    @classmethod
    def unique_key(cls, *args: Any) -> Any:
        return args[1]  # the name: not the URL, not the duration

    def perform(self, url: str, name: str, seconds: float) -> None:
        client(url).rpush(RUNS, self.job.jid or "")
        time.sleep(seconds)
        client(url).rpush(DONE, self.job.jid or "")


class SlowUniqueUntilStart(SlowUnique):
    """Unique until it starts."""

    unique_until = "start"
