"""The job a worker runs, attached to every log record made while it runs; and the job
start and end lines.

While a job runs, ``CURRENT_JOB`` holds it, and the record factory that
``attach_job_to_records`` installs (in each worker process) gives every record made
then the attributes ``jid``, ``job_class`` and ``job_queue``: the records cross to
Thespian's logger process with them, where the text and JSON formats
(``verk_actors.config.log_format``) show them.

With the ``job_logs`` setting on, each job logs ``start`` and, as it ends, ``done`` or
``fail`` with its ``duration`` and ``outcome`` (``done``, ``retry`` or ``dead``), at
INFO on the logger named ``verk_actors.jobs.job_log``. It is a setting, not just a
logger level, so that off it costs a job nothing (no record is made): on, the two
records cost a no-op drain more than half its speed (``verk-actors bench --job-logs``).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any, Protocol


class JobIds(Protocol):
    """What a record is told of the running job (``PreparedJob`` is one)."""

    @property
    def jid(self) -> str | None: ...

    @property
    def class_name(self) -> str | None: ...

    queue: str


CURRENT_JOB: ContextVar[JobIds | None] = ContextVar("verk_current_job", default=None)
"""The job running in this worker process, or None between jobs."""

log = logging.getLogger(__name__)

_installed: list[bool] = []


def attach_job_to_records() -> None:
    """Have every log record made in this process while a job runs carry its jid,
    class and queue (``jid``, ``job_class``, ``job_queue``). Once per process."""
    if _installed:
        return
    _installed.append(True)
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        job = CURRENT_JOB.get()
        if job is not None:
            record.jid = job.jid
            record.job_class = job.class_name
            record.job_queue = job.queue
        return record

    logging.setLogRecordFactory(factory)


def job_started() -> None:
    """Log the start of the current job."""
    log.info("start")


def job_ended(duration: float, outcome: str, error: str | None = None) -> None:
    """Log the end of the current job: ``outcome`` is done, retry or dead."""
    extra = {"duration": round(duration, 6), "outcome": outcome}
    if error is None:
        log.info("done: %.3f s", duration, extra=extra)
    else:
        log.info("fail: %.3f s: %s (%s)", duration, error, outcome, extra=extra)
