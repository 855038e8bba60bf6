"""Worker process hooks and jobs for tests (imported by test nodes as
``tests.lifecycle_jobs``): each hook records in Redis (``VERK_TEST_LIFECYCLE_URL``,
list ``lifecycle``) what ran, in which queue and process."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from tests.jobs import client
from verk_actors import Worker, WorkerProcess, on_worker_start, on_worker_stop

KEY = "lifecycle"

session: dict[str, Any] = {}
"""What the async start hook made, as a job module's HTTP client would be."""


def _note(what: str, process: WorkerProcess) -> None:
    assert process.pid == os.getpid()
    client(os.environ["VERK_TEST_LIFECYCLE_URL"]).rpush(
        KEY, f"{what} {process.queue} {process.mode} {process.pid}"
    )


@on_worker_start
def started(process: WorkerProcess) -> None:
    _note("start", process)


@on_worker_start
async def open_session(process: WorkerProcess) -> None:
    session["loop"] = asyncio.get_running_loop()
    _note("astart", process)


@on_worker_stop
async def close_session(process: WorkerProcess) -> None:
    _note("astop", process)


@on_worker_stop
def stopped(process: WorkerProcess) -> None:
    _note("stop", process)


class UsesSession(Worker):
    """Records ``pid ok``: ok when the start hook's loop is the one it runs on."""

    async def perform(self, url: str, key: str) -> None:  # type: ignore[override]
        ok = session.get("loop") is asyncio.get_running_loop()
        client(url).rpush(key, f"{os.getpid()} {ok}")


class PlainRun(Worker):
    """Records ``pid plain``."""

    def perform(self, url: str, key: str) -> None:
        client(url).rpush(key, f"{os.getpid()} plain")
