"""Writing unique jobs: the lock taken with the write, one job or many.

``unique_enqueue.lua`` takes a job's lock (``SET NX PX``) and writes the job in the
same step; a duplicate writes nothing and gets the jid of the job holding the lock.
``Client`` calls these for every job that has ``unique_for`` (its class's or given).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import redis

from verk_actors.jobs.job import Job
from verk_actors.jobs.unique import unique_digest, unique_fields, unique_key_of
from verk_actors.store.scripts import Scripts

PIPELINE_CHUNK = 1000
"""Unique jobs written per round trip by ``push_unique_many``."""


def unique_write(
    worker: type | str, job: Job, unique: tuple[float, str], at: float | None
) -> tuple[str, str, int]:
    """``(digest, text, lock ms)`` of a unique ``job``: its text carries the lock's
    fields; the lock lives ``unique_for`` seconds from when the job is due."""
    unique_for, until = unique
    assert job.queue is not None and job.jid is not None
    digest = unique_digest(job.class_name, job.queue, unique_key_of(worker, job.args))
    job = attrs.evolve(job, extra={**job.extra, **unique_fields(unique_for, until, digest)})
    delay = max(0.0, at - time.time()) if at is not None else 0.0
    return digest, job.to_json(), max(1, int((unique_for + delay) * 1000))


class UniquePush:
    """Writes a client's unique jobs (``guarded`` runs a write, turning Redis errors
    into ``RedisUnavailableError``)."""

    def __init__(
        self,
        redis_client: redis.Redis,
        scripts: Scripts,
        guarded: Callable[[Callable[[], object]], None],
    ) -> None:
        self.redis = redis_client
        self.scripts = scripts
        self.guarded = guarded

    def one(
        self, worker: type | str, job: Job, unique: tuple[float, str], at: float | None = None
    ) -> tuple[bool, str]:
        """Take ``job``'s lock and enqueue it (or schedule it at ``at``), in one step:
        ``(True, its jid)``, or ``(False, the holder's jid)`` with nothing written."""
        digest, text, ttl_ms = unique_write(worker, job, unique, at)
        result: list[tuple[bool, str]] = []
        self.guarded(
            lambda: result.append(
                self.scripts.unique_enqueue(
                    self.redis,
                    digest,
                    text,
                    job.queue or "default",
                    jid=job.jid or "",
                    ttl_ms=ttl_ms,
                    at=at,
                )
            )
        )
        return result[0]

    def many(
        self, worker: type | str, jobs: Sequence[Job], unique: tuple[float, str]
    ) -> list[tuple[bool, str]]:
        """``one`` for many jobs to run now, ``PIPELINE_CHUNK`` a round trip, in order:
        a job whose key an earlier one of ``jobs`` took is a duplicate of it."""
        found: list[tuple[bool, str]] = []
        for start in range(0, len(jobs), PIPELINE_CHUNK):
            chunk = [
                (job, *unique_write(worker, job, unique, None))
                for job in jobs[start : start + PIPELINE_CHUNK]
            ]
            replies: list[Any] = []
            self.guarded(functools.partial(self._write, chunk, replies))
            found.extend(
                (bool(written), holder.decode() if isinstance(holder, bytes) else str(holder))
                for written, holder in replies
            )
        return found

    def _write(self, chunk: list[tuple[Job, str, str, int]], replies: list[Any]) -> None:
        replies.clear()
        try:
            replies.extend(self._pipelined(chunk))
        except redis.exceptions.NoScriptError:
            self.scripts.load(self.redis)  # a restarted Redis: no script of it ran
            replies.extend(self._pipelined(chunk))

    def _pipelined(self, chunk: list[tuple[Job, str, str, int]]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for job, digest, text, ttl_ms in chunk:
            self.scripts.queue_unique_enqueue(
                pipe,
                digest,
                text,
                job.queue or "default",
                jid=job.jid or "",
                ttl_ms=ttl_ms,
                at=None,
            )
        return list(pipe.execute())
