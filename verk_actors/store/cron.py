"""Periodic jobs in Redis: claiming each tick once across the cluster, and listing entries.

Every node runs every entry it knows (``CronStore``, called by its ScheduleManager):
at each tick it calls ``cron_enqueue.lua``, which claims the tick with a key of its
own (``SET NX``) and enqueues the job in the same step, so one job is enqueued per
tick however many nodes race, start or die. A node remembers which ticks it has
handled; a node that starts handles the ticks from its start on, and a tick no node
was up to enqueue is *missed*: with ``catch_up = "latest"`` the starting node enqueues
the most recent missed tick of each entry once (claimed like any tick), with
``"skip"`` none.

Each entry's hash (``verk:cron:<name>``) keeps its spec and when a node last had it
(for ``verk-actors cron list``), the first time a node had it (``since``: the missed
ticks of an entry that never ran are counted from then), and its last tick enqueued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import attrs
import redis

from verk_actors.errors import ConfigurationError
from verk_actors.jobs.cron import CATCH_UP_MODES, CronEntry
from verk_actors.jobs.job import new_job
from verk_actors.store import keys
from verk_actors.store.connection import connect
from verk_actors.store.scripts import Scripts

log = logging.getLogger(__name__)

TICK_TTL = 600
"""Seconds a tick's claim is kept: a node whose clock is late by less than half of
this still finds a tick claimed by another node."""

SEEN_EVERY = 30.0
"""Seconds between a node's notes that it has an entry (``seen_at``)."""

MAX_WAIT = 5.0
"""Most seconds between two polls, also when no tick is near."""


def cron_job_text(entry: CronEntry, tick: int, now: float) -> tuple[str, str]:
    """The job of ``entry`` for ``tick``: ``(jid, text)``; it carries ``cron_entry``
    and ``cron_tick`` (extra fields: other readers keep them)."""
    job = new_job(
        entry.worker,
        entry.args,
        queue=entry.target_queue,
        now=now,
        retry=entry.retry,
        extra={"cron_entry": entry.name, "cron_tick": tick},
    )
    assert job.jid is not None
    return job.jid, job.to_json()


def claim_tick(
    client: redis.Redis, scripts: Scripts, entry: CronEntry, tick: int, *, mode: str, now: float
) -> bool:
    """Enqueue ``entry``'s job for ``tick`` unless another call did (``mode``: ``due``
    or ``catch_up``, see ``lua/cron_enqueue.lua``); True if this call did."""
    jid, text = cron_job_text(entry, tick, now)
    return scripts.cron_enqueue(
        client,
        entry.name,
        tick,
        text,
        entry.target_queue,
        jid=jid,
        ttl=TICK_TTL,
        mode=mode,
        now=now,
    )


class CronStore:
    """One node's cron entries: what its ScheduleManager calls."""

    def __init__(
        self, url: str, node_id: str, entries: Sequence[CronEntry], catch_up: str = "latest"
    ) -> None:
        if catch_up not in CATCH_UP_MODES:
            raise ConfigurationError(
                f"cron_catch_up must be one of {', '.join(CATCH_UP_MODES)}, got {catch_up!r}"
            )
        self.entries = tuple(entries)
        self.catch_up = catch_up
        self.client = connect(url, name=f"verk:{node_id}:cron")
        self.scripts = Scripts(self.client)
        self.handled: dict[str, float] = {}
        """Each entry's time up to which this node has handled its ticks."""
        self.seen_at = -SEEN_EVERY

    def _note_seen(self, now: float) -> None:
        pipe = self.client.pipeline(transaction=False)
        for entry in self.entries:
            key = keys.cron_entry_key(entry.name)
            pipe.sadd(keys.CRON_ENTRIES, entry.name)
            pipe.hset(key, mapping={"spec": entry.spec(), "seen_at": repr(now)})
            pipe.hsetnx(key, "since", repr(now))
        pipe.execute()
        self.seen_at = now

    def poll(self, now: float | None = None) -> int:
        """Enqueue the ticks of every entry since the last poll (at the first, the
        missed tick to catch up, if any); how many jobs this call enqueued. A Redis
        error is raised as it comes; the ticks not handled are tried at the next poll."""
        now = time.time() if now is None else now
        if not self.entries:
            return 0
        if now - self.seen_at >= SEEN_EVERY:
            self._note_seen(now)
        enqueued = 0
        for entry in self.entries:
            handled = self.handled.get(entry.name)
            if handled is None:
                if self.catch_up == "latest":
                    tick = entry.latest(now)
                    if tick is not None and claim_tick(
                        self.client, self.scripts, entry, tick, mode="catch_up", now=now
                    ):
                        enqueued += 1
                        log.info(
                            "cron %s: caught up the missed tick of %s UTC (no node was up "
                            "to enqueue it; cron_catch_up = latest)",
                            entry.name,
                            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(tick)),
                        )
                self.handled[entry.name] = now
                continue
            for tick in entry.ticks_between(max(handled, now - TICK_TTL / 2), now):
                enqueued += claim_tick(self.client, self.scripts, entry, tick, mode="due", now=now)
                self.handled[entry.name] = tick
            self.handled[entry.name] = now
        return enqueued

    def wait(self, now: float | None = None) -> float:
        """Seconds until the next tick of any entry is due (at most ``MAX_WAIT``)."""
        now = time.time() if now is None else now
        ticks = [t for t in (e.next_after(now) for e in self.entries) if t is not None]
        if not ticks:
            return MAX_WAIT
        return min(max(min(ticks) - now + 0.005, 0.005), MAX_WAIT)

    def close(self) -> None:
        self.client.close()


STALE = 120.0
"""Seconds after which an entry no live node has noted shows as ``no node``."""


@attrs.frozen
class CronStatus:
    """A cron entry as ``verk-actors cron list`` shows it."""

    name: str
    entry: CronEntry | None
    """None when the published spec cannot be read (written by another version)."""
    seen_at: float | None
    last_tick: int | None
    last_jid: str | None
    last_at: float | None

    def next_tick(self, now: float) -> int | None:
        """The entry's next tick after ``now``."""
        return self.entry.next_after(now) if self.entry is not None else None

    def state(self, now: float) -> str:
        """``running`` (a live node noted it lately), ``no node`` or ``unreadable``."""
        if self.entry is None:
            return "unreadable"
        if self.seen_at is None or now - self.seen_at > STALE:
            return "no node"
        return "running"

    def to_dict(self, now: float) -> dict[str, Any]:
        """A JSON-ready view (``verk-actors cron --json``, the dashboard's API)."""
        entry = self.entry
        return {
            "name": self.name,
            "class": entry.worker if entry else None,
            "cron": entry.schedule if entry else None,
            "tz": entry.tz if entry else None,
            "queue": entry.target_queue if entry else None,
            "args": list(entry.args) if entry else None,
            "next_run": self.next_tick(now),
            "last_run": self.last_tick,
            "last_jid": self.last_jid,
            "last_enqueued_at": self.last_at,
            "seen_at": self.seen_at,
            "state": self.state(now),
        }


def _number(value: bytes | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def cron_statuses(client: redis.Redis) -> list[CronStatus]:
    """Every cron entry a node has published, by name."""
    names = sorted(n.decode() for n in cast(set[bytes], client.smembers(keys.CRON_ENTRIES)))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.cron_entry_key(name))
    result = []
    for name, fields in zip(names, pipe.execute(), strict=True):
        entry: CronEntry | None
        try:
            entry = CronEntry.from_spec(name, fields[b"spec"])
        except (KeyError, ValueError, TypeError, ConfigurationError):
            entry = None
        last = _number(fields.get(b"last_tick"))
        jid = fields.get(b"last_jid")
        result.append(
            CronStatus(
                name,
                entry,
                _number(fields.get(b"seen_at")),
                int(last) if last is not None else None,
                jid.decode() if jid is not None else None,
                _number(fields.get(b"last_at")),
            )
        )
    return result
