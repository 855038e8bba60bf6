"""What happens to a job after it fails: the retry limit, the backoff, retry or dead.

Pure functions, shared by the worker (which builds the failed job after an exception)
and the WorkersManager (which builds it when the worker process died). They decide a
failed job's ``Fate`` and when it is due; where each fate is kept in Redis is the
store's business (``verk_actors.store``).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence

import attrs

from verk_actors.jobs.job import Job, dumps, loads, new_jid

DEFAULT_MAX_RETRIES = 25


class Fate(enum.Enum):
    """What becomes of a failed job (the value is the word events and logs use)."""

    RETRY = "retry"
    """Tried again when its ``score`` comes."""
    DEAD = "dead"
    """Given up on: kept, with the reason, for people to look at or retry by hand."""
    DEFER = "deferred"
    """Not run: a rate or concurrency limiter was full. Back into ``schedule`` when its
    ``score`` comes, with no retry used (``verk_actors.jobs.limits``)."""


def retry_limit(job: Job, default: int = DEFAULT_MAX_RETRIES, worker_retry: object = None) -> int:
    """How many retries ``job`` may have.

    Sidekiq's ``retry`` (true = ``default``, false = none, an integer = that many) and
    Verk's ``max_retry_count`` are both read; when both are set the stricter wins; when
    neither is, ``default`` applies. A job without ``retry`` takes its worker's
    ``retry`` option (``worker_retry``), as Sidekiq's server does.
    """
    retry = job.retry if job.retry is not None else worker_retry
    limits: list[int] = []
    if retry is True:
        limits.append(default)
    elif retry is False:
        limits.append(0)
    elif isinstance(retry, int):
        limits.append(max(retry, 0))
    if job.max_retry_count is not None:
        limits.append(max(job.max_retry_count, 0))
    return min(limits) if limits else default


def backoff_delay(count: int, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``count`` (1 for the first retry), Sidekiq's formula."""
    pick = (rng or random).randint(1, 30)
    return float(count**4 + 15 + pick * (count + 1))


@attrs.frozen
class FailureRecord:
    """A failed job's ``fate`` and ``score``: when it is tried again, or when it died."""

    fate: Fate
    score: float
    text: str | bytes
    """The text to store: JSON, or a malformed job's own bytes when they are not UTF-8."""

    def __deepcopy__(self, memo: dict[int, object]) -> FailureRecord:
        return self  # immutable: Thespian's deep copy of messages need not copy it


def build_failure(
    job: Job,
    *,
    error_class: str,
    error_message: str,
    backtrace: Sequence[str],
    now: float,
    default_max_retries: int = DEFAULT_MAX_RETRIES,
    worker_retry: object = None,
    queue: str | None = None,
    delay_override: float | None = None,
    rng: random.Random | None = None,
) -> FailureRecord:
    """The failed copy of ``job`` and whether it is retried or dead.

    ``worker_retry`` is the ``retry`` option of the job's worker class (see
    ``retry_limit``); ``queue`` the queue it ran from, written into a job that has no
    ``queue`` field so that its retry comes back there (as Sidekiq does)."""
    count = (job.retry_count or 0) + 1
    first = job.failed_at is None
    failed = attrs.evolve(
        job,
        retry_count=count,
        failed_at=now if first else job.failed_at,
        retried_at=None if first else now,
        error_class=error_class,
        error_message=error_message,
        error_backtrace=list(backtrace),
        queue=job.queue or queue,
    )
    if count > retry_limit(job, default_max_retries, worker_retry):
        return FailureRecord(fate=Fate.DEAD, score=now, text=failed.to_json())
    delay = backoff_delay(count, rng) if delay_override is None else max(delay_override, 0.0)
    return FailureRecord(fate=Fate.RETRY, score=now + delay, text=failed.to_json())


MALFORMED_CLASS = "verk_actors.MalformedJob"


def bury_malformed(text: str | bytes, *, reason: str, queue: str, now: float) -> FailureRecord:
    """A dead-set entry for a job text that cannot run, saying why.

    A JSON object keeps all its fields and gains the error fields. Anything else (not
    JSON, not an object) is kept verbatim as the single argument of a
    ``verk_actors.MalformedJob`` entry, so the dead set stays readable by Sidekiq's tools.
    A text that is not UTF-8 cannot be held by any JSON text as it is: it goes to dead
    byte for byte (never decoded and encoded again), and whoever reads it there is told
    why it cannot run (``StoredJob``).
    """
    if isinstance(text, bytes):
        try:
            raw = text.decode("utf-8")
        except UnicodeDecodeError:
            return FailureRecord(fate=Fate.DEAD, score=now, text=text)
    else:
        raw = text
    data: object
    try:
        data = loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict):
        data.setdefault("queue", queue)
        data.update(
            error_class="MalformedJobError", error_message=reason, failed_at=now, retry=False
        )
        return FailureRecord(fate=Fate.DEAD, score=now, text=dumps(data))
    wrapped = {
        "class": MALFORMED_CLASS,
        "args": [raw],
        "queue": queue,
        "jid": new_jid(),
        "retry": False,
        "error_class": "MalformedJobError",
        "error_message": reason,
        "failed_at": now,
    }
    return FailureRecord(fate=Fate.DEAD, score=now, text=dumps(wrapped))
