"""Typed wrappers for the Lua scripts under ``lua/``: one function per script.

Scripts are registered with redis-py's ``register_script``: called by SHA, reloaded
by redis-py when Redis answers ``NOSCRIPT`` (a restarted server has forgotten them).
Every wrapper takes the client or pipeline to run on, so callers can batch them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import redis
from redis.commands.core import Script

from verk_actors.jobs.limits import Concurrent, Limiter
from verk_actors.jobs.retry import Fate
from verk_actors.store import keys

SCRIPT_NAMES = (
    "take_jobs",
    "ack_jobs",
    "fail_jobs",
    "requeue_jobs",
    "requeue_inprogress",
    "enqueue_due",
    "renew_lease",
    "forget_node",
    "cron_enqueue",
    "unique_enqueue",
    "unique_release",
    "batch_update",
    "limit_take_concurrent",
    "limit_take_window",
)

DAY_COUNTER_TTL = 5 * 365 * 86_400  # Sidekiq keeps per-day counters five years

Client = redis.Redis | redis.client.Pipeline

FAIL_TO = {Fate.RETRY: "retry", Fate.DEAD: "dead", Fate.DEFER: "schedule"}
"""``fail_jobs.lua``'s word for where a job that did not succeed goes: ``KEYS[2]``
(``retry``), ``KEYS[3]`` (``dead``) or ``KEYS[10]`` (``schedule``, deferred by a limiter)."""


def lua_dir() -> Path:
    """Where the scripts are: inside the installed wheel, or ``lua/`` of a checkout."""
    packaged = Path(str(resources.files("verk_actors"))) / "lua"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "lua"


@cache
def script_source(name: str) -> str:
    """The text of ``lua/<name>.lua``."""
    return (lua_dir() / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """The scripts, registered on one Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self._scripts: dict[str, Script] = {
            name: client.register_script(script_source(name)) for name in SCRIPT_NAMES
        }

    def _run(self, name: str, on: Client, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        script = self._scripts[name]
        if isinstance(on, redis.client.Pipeline):
            # Straight EVALSHA: redis-py would first ask SCRIPT EXISTS on every
            # execute, a whole round trip. A NOSCRIPT answer (Redis restarted) comes
            # back in the pipeline's results; the caller reloads and writes again.
            return on.evalsha(script.sha, len(keys_), *keys_, *args)
        return script(keys=list(keys_), args=list(args), client=on)

    def load(self, client: redis.Redis) -> None:
        """Load every script into ``client``'s server (after a NOSCRIPT)."""
        for script in self._scripts.values():
            script.sha = client.script_load(script.script)

    def take_jobs(
        self, on: Client, queue: str, node_id: str, count: int, least: int = 1
    ) -> list[bytes] | None:
        """Move up to ``count`` jobs of ``queue`` into this node's in-progress list, if
        at least ``least`` wait (else none); None when the queue is paused."""
        result: list[bytes] | None = self._run(
            "take_jobs",
            on,
            (keys.queue_key(queue), keys.inprogress_key(queue, node_id), keys.PAUSED),
            (count, queue, least),
        )
        return result

    def ack_jobs(
        self, on: Client, queue: str, node_id: str, day: str, texts: Sequence[bytes]
    ) -> int:
        """Remove finished jobs from in-progress and count them as processed."""
        result: int = self._run(
            "ack_jobs",
            on,
            (
                keys.inprogress_key(queue, node_id),
                keys.STAT_PROCESSED,
                keys.processed_day_key(day),
                keys.processed_queue_key(queue),
            ),
            (DAY_COUNTER_TTL, *texts),
        )
        return result

    def fail_jobs(
        self,
        on: Client,
        queue: str,
        node_id: str,
        day: str,
        failures: Sequence[tuple[bytes, Fate, float, str | bytes]],
        *,
        now: float,
        dead_timeout: float,
        dead_max_jobs: int,
    ) -> int:
        """Move failed jobs from in-progress to ``retry`` or ``dead`` by their fate
        (original, fate, score, text); deferred ones (``Fate.DEFER``) to ``schedule``,
        uncounted."""
        flat: list[Any] = [now, dead_timeout, dead_max_jobs, DAY_COUNTER_TTL]
        for original, fate, score, text in failures:
            flat.extend((original, FAIL_TO[fate], repr(float(score)), text))
        result: int = self._run(
            "fail_jobs",
            on,
            (
                keys.inprogress_key(queue, node_id),
                keys.RETRY,
                keys.DEAD,
                keys.STAT_PROCESSED,
                keys.processed_day_key(day),
                keys.processed_queue_key(queue),
                keys.STAT_FAILED,
                keys.failed_day_key(day),
                keys.failed_queue_key(queue),
                keys.SCHEDULE,
            ),
            flat,
        )
        return result

    def requeue_jobs(self, on: Client, queue: str, node_id: str, texts: Sequence[bytes]) -> int:
        """Give jobs still in this node's in-progress list back to the queue, to run next."""
        result: int = self._run(
            "requeue_jobs",
            on,
            (keys.inprogress_key(queue, node_id), keys.queue_key(queue)),
            texts,
        )
        return result

    def requeue_inprogress(
        self,
        on: Client,
        queue: str,
        node_id: str,
        batch: int = 1000,
        *,
        only_if_dead: bool = False,
    ) -> tuple[int, int]:
        """Move a batch of ``node_id``'s in-progress jobs back: ``(moved, remaining)``.

        With ``only_if_dead``, nothing moves while the node's lease exists (moved = -1).
        """
        keys_ = [keys.inprogress_key(queue, node_id), keys.queue_key(queue)]
        if only_if_dead:
            keys_.append(keys.node_lease_key(node_id))
        moved, remaining = self._run("requeue_inprogress", on, keys_, (batch,))
        return int(moved), int(remaining)

    def enqueue_due(
        self,
        on: Client,
        zset: str,
        moves: Sequence[tuple[bytes, str | None, str | bytes]],
        *,
        now: float,
    ) -> int:
        """Move members of ``zset`` to their queues: (member, queue or None for dead, text)."""
        queue_keys: list[str] = []
        flat: list[Any] = [repr(now)]
        for member, queue, text in moves:
            if queue is None:
                dest = 3
            else:
                key = keys.queue_key(queue)
                if key not in queue_keys:
                    queue_keys.append(key)
                dest = 4 + queue_keys.index(key)
            flat.extend((member, dest, text, queue or ""))
        result: int = self._run(
            "enqueue_due", on, (zset, keys.QUEUES, keys.DEAD, *queue_keys), flat
        )
        return result

    def renew_lease(self, on: Client, node_id: str, epoch: str, ttl: float) -> int:
        """Renew ``node_id``'s lease: 1 renewed, 0 had expired (claimed again), -1 not ours."""
        result: int = self._run(
            "renew_lease", on, (keys.node_lease_key(node_id),), (epoch, int(ttl * 1000))
        )
        return result

    def forget_node(self, on: Client, node_id: str, identity: str, queues: Sequence[str]) -> bool:
        """Remove a dead node's registration if its lease is gone and its lists are empty."""
        result: int = self._run(
            "forget_node",
            on,
            (
                keys.node_lease_key(node_id),
                keys.node_queues_key(node_id),
                keys.NODES,
                keys.node_info_key(node_id),
                keys.PROCESSES,
                identity or "verk:none",
                keys.process_workers_key(identity or "verk:none"),
                *(keys.inprogress_key(q, node_id) for q in queues),
            ),
            (node_id, identity),
        )
        return bool(result)

    def cron_enqueue(
        self,
        on: Client,
        name: str,
        tick: int,
        text: str,
        queue: str,
        *,
        jid: str,
        ttl: int,
        mode: str,
        now: float,
    ) -> bool:
        """Claim ``tick`` of cron entry ``name`` and enqueue its job; False if claimed
        already (``mode``: ``due`` or ``catch_up``, see ``lua/cron_enqueue.lua``)."""
        result: int = self._run(
            "cron_enqueue",
            on,
            (
                keys.cron_tick_key(name, tick),
                keys.cron_entry_key(name),
                keys.queue_key(queue),
                keys.QUEUES,
            ),
            (tick, text, queue, ttl, mode, jid, repr(now)),
        )
        return bool(result)

    def unique_enqueue(
        self,
        on: Client,
        digest: str,
        text: str,
        queue: str,
        *,
        jid: str,
        ttl_ms: int,
        at: float | None,
    ) -> tuple[bool, str]:
        """Take a unique job's lock and enqueue it (``at`` None) or schedule it:
        ``(True, jid)``, or ``(False, holder's jid)`` with nothing written. On a
        pipeline, use ``queue_unique_enqueue``."""
        written, holder = self.queue_unique_enqueue(
            on, digest, text, queue, jid=jid, ttl_ms=ttl_ms, at=at
        )
        return bool(written), holder.decode() if isinstance(holder, bytes) else str(holder)

    def queue_unique_enqueue(
        self,
        on: Client,
        digest: str,
        text: str,
        queue: str,
        *,
        jid: str,
        ttl_ms: int,
        at: float | None,
    ) -> Any:
        """``unique_enqueue`` as sent: on a pipeline, its reply ``[written, jid]`` comes
        with the pipeline's results."""
        target = keys.queue_key(queue) if at is None else keys.SCHEDULE
        return self._run(
            "unique_enqueue",
            on,
            (keys.unique_lock_key(digest), target, keys.QUEUES),
            (jid, ttl_ms, text, queue, "" if at is None else repr(float(at))),
        )

    def unique_release(self, on: Client, locks: Sequence[tuple[str, str]]) -> int:
        """Free unique locks ``(digest, jid)``, each only if that jid still holds it."""
        result: int = self._run(
            "unique_release",
            on,
            [keys.unique_lock_key(digest) for digest, _ in locks],
            [jid for _, jid in locks],
        )
        return result

    def batch_update(
        self, on: Client, updates: Mapping[tuple[str, str], str], *, now: float, keep: int
    ) -> int:
        """Tell batches their jobs ``(bid, jid)`` succeeded (``"s"``) or failed
        (``"f"``); returns how many callbacks were enqueued."""
        keys_: list[str] = []
        for bid, _ in updates:
            keys_ += (keys.batch_key(bid), keys.batch_pending_key(bid), keys.batch_failed_key(bid))
        args = [repr(now), keep, *(f"{outcome} {jid}" for (_, jid), outcome in updates.items())]
        result: int = self._run("batch_update", on, keys_, args)
        return result

    def limit_take(self, on: Client, limiter: Limiter, holder: str, lease: float) -> int | None:
        """Take ``limiter`` for ``holder`` (``lease``: seconds a ``Concurrent`` slot is
        held at most): None when taken, else milliseconds until it may have room."""
        if isinstance(limiter, Concurrent):
            name, key, bound = "limit_take_concurrent", keys.limit_slots_key, lease
        else:
            name, key, bound = "limit_take_window", keys.limit_window_key, limiter.per
        taken, wait_ms = self._run(
            name,
            on,
            (keys.LIMITS, keys.limit_key(limiter.name), key(limiter.name)),
            (limiter.name, holder, limiter.limit, repr(float(bound))),
        )
        return None if taken else int(wait_ms)
