"""Unique jobs: the options, the lock's name, and which finished jobs free their lock.

A worker with ``unique_for = N`` (or an enqueue with ``unique_for=N``) is enqueued only
if no job of the same class, queue and arguments (or ``unique_key(*args)``) holds the
lock; the lock lives ``N`` seconds at most and is freed earlier when the job starts
(``unique_until = "start"``) or when it succeeds or goes to dead (``"success"``, the
default). The job carries the options and the lock's digest as extra fields, so the
node that runs it can free the lock without knowing the worker class.

Nothing here talks to Redis: ``verk_actors.store.client`` takes the lock with the
enqueue, ``verk_actors.store.queue_store`` frees it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from verk_actors.errors import InvalidJobError, MalformedJobError
from verk_actors.jobs.job import Job, decode_job, dumps

UNTIL = ("success", "start")
"""When a unique job frees its lock: when it succeeds (or dies), or when it starts."""

DIGEST_FIELD = "unique_digest"
MARK = b'"unique_digest"'
"""What a job text holds when it is unique: texts without it are not decoded."""


def check_unique(unique_for: Any, unique_until: Any) -> tuple[float, str]:
    """The options checked: seconds more than 0, and ``start`` or ``success``."""
    if (
        isinstance(unique_for, bool)
        or not isinstance(unique_for, int | float)
        or not (0 < unique_for < math.inf)
    ):
        raise InvalidJobError(
            f"unique_for must be a number of seconds more than 0, got {unique_for!r}"
        )
    if unique_until not in UNTIL:
        raise InvalidJobError(f"unique_until must be 'success' or 'start', got {unique_until!r}")
    return float(unique_for), unique_until


def unique_options(
    worker: type | str, options: Mapping[str, Any]
) -> tuple[dict[str, Any], tuple[float, str] | None]:
    """Enqueue options without the unique ones, and ``(unique_for, unique_until)`` from
    them or the worker class (None: not a unique job)."""
    rest = dict(options)
    unique_for = rest.pop("unique_for", None)
    until = rest.pop("unique_until", None)
    if unique_for is None and until is not None:
        raise InvalidJobError("unique_until needs unique_for (the lock's lifetime in seconds)")
    if isinstance(worker, type):
        unique_for = unique_for if unique_for is not None else getattr(worker, "unique_for", None)
        until = until if until is not None else getattr(worker, "unique_until", None)
    if unique_for is None:
        return rest, None
    return rest, check_unique(unique_for, until or "success")


def unique_digest(class_name: str, queue: str, key: Any) -> str:
    """The lock's name for a job of ``class_name`` on ``queue`` keyed on ``key`` (the
    args, or what the worker's ``unique_key`` returned): a SHA-1 of their JSON."""
    try:
        text = dumps([class_name, queue, key])
    except (TypeError, ValueError) as exc:
        raise InvalidJobError(f"a unique job's key must be JSON values: {exc}") from None
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def unique_key_of(worker: type | str, args: Sequence[Any]) -> Any:
    """What the lock is keyed on besides class and queue: ``worker.unique_key(*args)``
    when the class defines one and it returns something, else the args."""
    hook = getattr(worker, "unique_key", None) if isinstance(worker, type) else None
    key = hook(*args) if callable(hook) else None
    return list(args) if key is None else key


def unique_fields(unique_for: float, unique_until: str, digest: str) -> dict[str, Any]:
    """The extra fields a unique job carries."""
    return {"unique_for": unique_for, "unique_until": unique_until, DIGEST_FIELD: digest}


def locks_to_free(texts: Iterable[bytes], when: str) -> list[tuple[str, str]]:
    """``(digest, jid)`` of each unique job among ``texts`` whose lock is freed ``when``
    (``start``, or ``success``: it succeeded or died). A text without the digest field
    costs one substring search; only the others are decoded."""
    found: list[tuple[str, str]] = []
    for text in texts:
        if MARK not in text:
            continue
        job = _decoded(text)
        digest = job.extra.get(DIGEST_FIELD) if job is not None else None
        if (
            job is not None
            and job.jid
            and isinstance(digest, str)
            and job.extra.get("unique_until", "success") == when
        ):
            found.append((digest, job.jid))
    return found


def _decoded(text: bytes) -> Job | None:
    try:
        return decode_job(text)
    except MalformedJobError:
        return None  # a malformed job frees nothing
