"""The ``retry``, ``schedule`` and ``dead`` sorted sets: look at them and act on their jobs.

::

    retries = JobSet(client, "retry")
    retries.count()
    for entry in retries.page(limit=10): ...
    retries.retry_now("b4a577edbccf1d805744efa9")    # enqueue it now, exactly once

"Retry now" goes through ``enqueue_due.lua``: the member leaves the set and the new
text enters its queue only if this caller removed it, so two people (or a node's
ScheduleManager) moving the same job at once enqueue it once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import redis

from verk_actors.errors import ConfigurationError, MalformedJobError, NotFoundError
from verk_actors.jobs.job import DEFAULT_QUEUE
from verk_actors.jobs.retry import MALFORMED_CLASS
from verk_actors.jobs.stored_job import StoredJob, jid_needle, matches_jid
from verk_actors.store import keys
from verk_actors.store.scripts import Scripts

SET_KEYS = {"retry": keys.RETRY, "schedule": keys.SCHEDULE, "dead": keys.DEAD}
"""The sorted sets by name; ``scheduled`` is accepted for ``schedule``."""

ALIASES = {"scheduled": "schedule", "retries": "retry", "morgue": "dead"}

SCAN_COUNT = 500
DEAD_TIMEOUT = 180 * 24 * 3600.0
"""Seconds a job killed by hand stays in ``dead`` (Sidekiq's and a node's default)."""
DEAD_MAX_JOBS = 10_000
"""Most jobs ``dead`` keeps when a job is killed by hand (Sidekiq's default)."""
RETRY_ALL_BATCH = 100


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a Redis MATCH pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


@attrs.frozen
class SetEntry:
    """One member of a sorted set: its score (a unix time) and the job text it holds."""

    set_name: str
    score: float
    stored: StoredJob

    @property
    def jid(self) -> str | None:
        """The job's jid (None for a malformed member)."""
        return self.stored.jid

    @property
    def at(self) -> datetime:
        """The score as a UTC datetime: when it runs (retry, schedule) or died (dead)."""
        return datetime.fromtimestamp(self.score, UTC)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the entry."""
        return {"set": self.set_name, "score": self.score, **self.stored.to_dict()}


@attrs.frozen
class RetryAllResult:
    """What ``retry_all`` did: jobs enqueued, and malformed members left in the set."""

    moved: int
    skipped: int


def set_name(name: str) -> str:
    """The canonical set name for ``name`` (``retry``, ``schedule`` or ``dead``)."""
    canonical = ALIASES.get(name, name)
    if canonical not in SET_KEYS:
        raise ConfigurationError(
            f"there is no job set named {name!r}; use one of retry, schedule (or scheduled), dead"
        )
    return canonical


def retried_text(entry: SetEntry, now: float) -> tuple[str, str]:
    """The queue and the new text of ``entry`` enqueued now.

    As Sidekiq (``SortedEntry#retry``), a job taken from ``retry`` or ``dead`` has its
    ``retry_count`` lowered by one, so the manual try does not use up a retry; a job
    from ``schedule`` is enqueued as it is (``add_to_queue``).
    """
    job = entry.stored.job
    if job is None or job.class_name == MALFORMED_CLASS:
        reason = entry.stored.error or "it keeps a job text that was not valid JSON"
        raise MalformedJobError(
            f"the {entry.set_name} member {entry.stored.text[:80]!r} is not a job that can "
            f"run ({reason}); delete it instead"
        )
    changes: dict[str, Any] = {"enqueued_at": now}
    if job.queue is None:
        changes["queue"] = DEFAULT_QUEUE
    if entry.set_name != "schedule" and job.retry_count is not None:
        changes["retry_count"] = job.retry_count - 1
    new = attrs.evolve(job, **changes)
    assert new.queue is not None
    return new.queue, new.to_json()


class JobSet:
    """One of the ``retry``, ``schedule`` and ``dead`` sorted sets."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = set_name(name)
        self.key = SET_KEYS[self.name]
        self._scripts: Scripts | None = None

    @property
    def scripts(self) -> Scripts:
        """The Lua scripts, registered on first use."""
        if self._scripts is None:
            self._scripts = Scripts(self.client)
        return self._scripts

    def __repr__(self) -> str:
        return f"JobSet({self.name!r})"

    def _entry(self, member: bytes | str, score: float) -> SetEntry:
        return SetEntry(self.name, float(score), StoredJob.read(member))

    def _entries(self, rows: Any) -> list[SetEntry]:
        """Entries from a ZRANGE ... WITHSCORES reply (member, score pairs)."""
        return [self._entry(member, score) for member, score in rows]

    # --- reading -----------------------------------------------------------------------

    def count(self) -> int:
        """How many members the set holds."""
        return int(self.client.zcard(self.key))

    def page(
        self, offset: int = 0, limit: int = 25, *, newest_first: bool | None = None
    ) -> list[SetEntry]:
        """Up to ``limit`` entries from ``offset``, by score.

        By default ``retry`` and ``schedule`` list the next to run first, and ``dead``
        the latest death first (as Sidekiq's web UI); ``newest_first`` overrides that.
        """
        if offset < 0 or limit < 0:
            raise ConfigurationError(f"offset and limit must be 0 or more, got {offset}, {limit}")
        if limit == 0:
            return []
        desc = (self.name == "dead") if newest_first is None else newest_first
        rows = self.client.zrange(self.key, offset, offset + limit - 1, desc=desc, withscores=True)
        return self._entries(rows)

    def scan(self, jid: str | None = None) -> Iterator[SetEntry]:
        """Every entry (ZSCAN, so the set is not blocked), or those holding ``jid``."""
        needle = jid_needle(jid) if jid is not None else None
        match = f"*{glob_escape(needle)}*" if needle is not None else None
        for member, score in self.client.zscan_iter(self.key, match=match, count=SCAN_COUNT):
            if jid is None:
                yield self._entry(member, score)
            elif (stored := matches_jid(member, jid)) is not None:
                yield SetEntry(self.name, float(score), stored)

    def entries_at(self, score: float, jid: str | None) -> list[SetEntry]:
        """The entries of score ``score`` holding ``jid`` (None: malformed, without one);
        a lookup by score is O(log n), where a jid alone needs a scan."""
        rows = self.client.zrangebyscore(self.key, score, score, withscores=True)
        return [e for e in self._entries(rows) if e.jid == jid]

    def find_all(self, jid: str) -> list[SetEntry]:
        """Every entry whose job has exactly this jid (usually one)."""
        return sorted(self.scan(jid), key=lambda e: e.score)

    def find(self, jid: str) -> SetEntry | None:
        """The entry whose job has this jid, or None."""
        found = self.find_all(jid)
        return found[0] if found else None

    def get(self, jid: str) -> SetEntry:
        """The entry whose job has this jid; NotFoundError if there is none."""
        entry = self.find(jid)
        if entry is None:
            raise self._not_found(jid)
        return entry

    def _not_found(self, jid: str, *, gone: bool = False) -> NotFoundError:
        if gone:
            return NotFoundError(
                f"job {jid} left the {self.name} set before it could be moved (someone else "
                "retried, deleted or ran it first); nothing was done"
            )
        return NotFoundError(
            f"no job with jid {jid!r} in the {self.name} set; list the set to see its jids "
            "(it may have run, been retried or been deleted already)"
        )

    # --- acting ------------------------------------------------------------------------

    def delete(self, jid: str) -> int:
        """Remove the entries holding ``jid`` (by their exact text); how many went."""
        entries = self.find_all(jid)
        if not entries:
            raise self._not_found(jid)
        removed = int(self.client.zrem(self.key, *(e.stored.raw for e in entries)))
        if removed == 0:
            raise self._not_found(jid, gone=True)
        return removed

    def delete_entry(self, entry: SetEntry) -> bool:
        """Remove one entry by its exact text (for malformed members, which have no jid)."""
        return bool(self.client.zrem(self.key, entry.stored.raw))

    def retry_now(self, jid: str, *, now: float | None = None) -> int:
        """Enqueue the job ``jid`` now; NotFoundError if it is not there, or was just taken.

        Atomic per member: when several callers race, exactly one enqueues it.
        """
        entries = self.find_all(jid)
        if not entries:
            raise self._not_found(jid)
        moved = self._move(entries, time.time() if now is None else now)
        if moved == 0:
            raise self._not_found(jid, gone=True)
        return moved

    def retry_entry(self, entry: SetEntry, *, now: float | None = None) -> bool:
        """Enqueue a listed entry now, if it is still in the set (False if someone else
        moved or deleted it first)."""
        return self._move([entry], time.time() if now is None else now) == 1

    def _move(self, entries: list[SetEntry], now: float) -> int:
        moves: list[tuple[bytes, str | None, str]] = []
        for entry in entries:
            queue, text = retried_text(entry, now)
            moves.append((entry.stored.raw, queue, text))
        if not moves:
            return 0
        return self.scripts.enqueue_due(self.client, self.key, moves, now=now)

    def retry_all(self, *, now: float | None = None) -> RetryAllResult:
        """Enqueue every job of the set now; malformed members are left where they are."""
        at = time.time() if now is None else now
        moved = skipped = 0
        while True:
            rows = self.client.zrange(
                self.key, skipped, skipped + RETRY_ALL_BATCH - 1, withscores=True
            )
            if not rows:
                return RetryAllResult(moved, skipped)
            entries = self._entries(rows)
            good = [e for e in entries if self._runnable(e)]
            skipped += len(entries) - len(good)
            moved += self._move(good, at)

    def kill_entry(
        self,
        entry: SetEntry,
        *,
        now: float | None = None,
        dead_timeout: float = DEAD_TIMEOUT,
        dead_max_jobs: int = DEAD_MAX_JOBS,
    ) -> bool:
        """Move a listed entry to ``dead`` now, if it is still in this set (False if
        someone else moved or deleted it first); the dead set is trimmed as a node
        trims it (older than ``dead_timeout``, beyond ``dead_max_jobs``)."""
        if self.name == "dead":
            raise ConfigurationError("a job in the dead set is dead already")
        at = time.time() if now is None else now
        raw = entry.stored.raw

        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.key)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    if pipe.zscore(self.key, raw) is None:
                        return False
                    pipe.multi()
                    pipe.zrem(self.key, raw)
                    pipe.zadd(keys.DEAD, {raw: at})
                    pipe.zremrangebyscore(keys.DEAD, "-inf", at - dead_timeout)
                    pipe.zremrangebyrank(keys.DEAD, 0, -(dead_max_jobs + 1))
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue  # the set changed meanwhile: look again

    @staticmethod
    def _runnable(entry: SetEntry) -> bool:
        job = entry.stored.job
        return job is not None and job.class_name != MALFORMED_CLASS

    def clear(self) -> int:
        """Delete the whole set (as Sidekiq's ``clear``); how many members it held."""
        pipe = self.client.pipeline(transaction=True)
        pipe.zcard(self.key)
        pipe.delete(self.key)
        count, _ = pipe.execute()
        return int(count)
