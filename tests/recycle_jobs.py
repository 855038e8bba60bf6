"""Workers for the recycling tests (imported by the nodes as ``tests.recycle_jobs``).

Each records ``jid:pid`` in a Redis list, so a test sees which process ran which job
and that every job ran exactly once.
"""

from __future__ import annotations

import os
import threading
import time

from tests.jobs import client
from verk_actors import Worker

MB = 1024 * 1024

LEAKED: list[bytes] = []
"""What ``Leak`` jobs keep: it lives as long as the worker process."""


class Leak(Worker):
    """Keeps 20 MB (written, so resident) for the life of its process, then records itself."""

    def perform(self, url: str, key: str) -> None:
        LEAKED.append(b"x" * (20 * MB))
        client(url).rpush(key, f"{self.job.jid}:{os.getpid()}")


class WhoRan(Worker):
    """Records its jid and the pid of the process that ran it."""

    def perform(self, url: str, key: str) -> None:
        client(url).rpush(key, f"{self.job.jid}:{os.getpid()}")


class SlowWhoRan(Worker):
    """Sleeps ``seconds`` (a job that waits), then records its jid and pid."""

    def perform(self, url: str, key: str, seconds: float) -> None:
        time.sleep(seconds)
        client(url).rpush(key, f"{self.job.jid}:{os.getpid()}")


STUCK_THREADS: list[threading.Thread] = []


class LeavesThread(Worker):
    """Records its jid and pid, and leaves a non-daemon thread waiting forever (as a
    library's background thread may): its process cannot exit when asked, since
    Python waits for such threads before it ends."""

    def perform(self, url: str, key: str) -> None:
        thread = threading.Thread(target=threading.Event().wait, name="never-ends")
        thread.start()
        STUCK_THREADS.append(thread)
        client(url).rpush(key, f"{self.job.jid}:{os.getpid()}")
