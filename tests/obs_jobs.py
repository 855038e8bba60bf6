"""Workers and handlers of the observability tests (imported by nodes as ``tests.obs_jobs``).

Handlers report into the test's Redis (the job's first argument is its URL), so the
tests count calls in the worker processes without trusting the node.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from tests.jobs import client
from verk_actors import Job, JobContext, Worker, add_death_handler

log = logging.getLogger("tests.obs_jobs")


class Flaky(Worker):
    """Raises every time, after noting the try; ``retry`` is 1 (two tries, then dead)."""

    retry = 1

    def perform(self, url: str, key: str) -> None:
        client(url).rpush(key, "try")
        raise ValueError(f"flaky {key}")

    def retries_exhausted(self, job: Job, error: BaseException) -> None:
        client(job.args[0]).rpush(
            "exhausted", json.dumps([job.jid, job.retry_count, type(error).__name__])
        )


class Chatty(Worker):
    """Logs a line from inside perform."""

    def perform(self, url: str, key: str) -> None:
        log.warning("inside perform %s", key)
        client(url).rpush(key, "done")


def record_error(exc: BaseException, context: JobContext) -> None:
    """An error handler: the context, as JSON, on the list ``errors``."""
    client(context.args[0]).rpush(
        "errors",
        json.dumps(
            {
                "error": type(exc).__name__,
                "message": str(exc),
                "jid": context.jid,
                "class": context.class_name,
                "queue": context.queue,
                "args": list(context.args),
                "retry_count": context.retry_count,
                "fate": context.fate,
            }
        ),
    )


def raising_handler(exc: BaseException, context: JobContext) -> None:
    """An error handler that raises."""
    client(context.args[0]).rpush("raised", context.jid or "")
    raise RuntimeError("the error handler itself is broken")


def hanging_handler(exc: BaseException, context: JobContext) -> None:
    """An error handler that never returns on its own."""
    client(context.args[0]).rpush("hung", context.jid or "")
    time.sleep(3600)


def hanging_death(job: Job, exc: BaseException) -> None:
    """A death handler that never returns on its own."""
    client(job.args[0]).rpush("deaths", job.jid)
    time.sleep(3600)


@add_death_handler
def _added_death(job: Job, exc: BaseException) -> Any:
    """Registered at import time in each worker (the node imports this module)."""
    client(job.args[0]).rpush("added_deaths", job.jid)


def launcher_handler(exc: BaseException, context: JobContext) -> None:
    """Registered with add_error_handler in the test process before its actor system
    starts: reaches the workers because they are forked from it."""
    client(context.args[0]).rpush("launcher_errors", context.jid or "")
