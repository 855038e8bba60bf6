"""Rate and concurrency limiters in Redis: the gate a worker process takes them through.

``RedisLimitGate`` implements ``verk_actors.jobs.limits.LimitGate``. A worker process
installs one when it starts; it connects to Redis the first time a job takes a
limiter, so a node whose workers declare none opens no connection and sends no command
for them. Taking is one script (``limit_take_concurrent.lua``, ``limit_take_window.lua``);
giving a ``Concurrent`` slot back (or a ``Window`` take whose job did not run) is one
``ZREM`` of its holder.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading

import redis

from verk_actors.jobs.limits import Concurrent, Limiter, Window
from verk_actors.store import keys
from verk_actors.store.connection import connect
from verk_actors.store.failures import REDIS_ERRORS, describe, is_transient
from verk_actors.store.scripts import Scripts

log = logging.getLogger(__name__)

OUTAGE_WAIT = 5.0
"""Seconds a job waits (deferred) when Redis cannot be asked for its limiter."""


class RedisLimitGate:
    """Takes and gives back limiters for the jobs of one worker process."""

    def __init__(self, url: str, node_id: str) -> None:
        self.url = url
        self.node_id = node_id
        self._client: redis.Redis | None = None
        self._scripts: Scripts | None = None
        self._takes = itertools.count(1)
        self._connecting = threading.Lock()
        """Jobs of a threads or async queue take limiters from many threads at once."""

    def _connected(self) -> tuple[redis.Redis, Scripts]:
        with self._connecting:
            if self._client is None or self._scripts is None:
                self._client = connect(self.url, name=f"verk:{self.node_id}:limits")
                self._scripts = Scripts(self._client)
            return self._client, self._scripts

    def holder(self, jid: str) -> str:
        """A name for one take by job ``jid``, unique in the cluster."""
        return f"{jid}@{self.node_id}/{os.getpid()}.{next(self._takes)}"

    def acquire(self, limiter: Limiter, jid: str, lease: float) -> tuple[str | None, float]:
        """Take ``limiter`` for job ``jid``: ``(holder, 0)``, or ``(None, seconds to
        wait)`` when it is full. Redis out of reach counts as full (the job waits
        ``OUTAGE_WAIT`` and tries again); any other error reply is raised (the job fails)."""
        holder = self.holder(jid)
        try:
            client, scripts = self._connected()
            wait_ms = scripts.limit_take(client, limiter, holder, lease)
        except REDIS_ERRORS as exc:
            if not is_transient(exc):
                raise
            log.warning(
                "limiter %r: Redis unavailable (%s); job %s waits", limiter.name, describe(exc), jid
            )
            return None, OUTAGE_WAIT
        if wait_ms is None:
            return holder, 0.0
        # A Window knows when it has room; a Concurrent slot comes back when a job ends
        # (its lease's end is only a bound), so its jobs back off from the start.
        return None, max(wait_ms, 0) / 1000 if isinstance(limiter, Window) else 0.0

    def release(self, limiter: Limiter, holder: str) -> None:
        """Give a ``Concurrent`` slot (or a ``Window`` take) back, one ``ZREM``; if
        Redis fails, the slot's lease frees it later (the take leaves its window)."""
        key = keys.limit_slots_key if isinstance(limiter, Concurrent) else keys.limit_window_key
        try:
            client, _ = self._connected()
            client.zrem(key(limiter.name), holder)
        except REDIS_ERRORS as exc:
            log.warning(
                "limiter %r: slot of %s not given back (%s); its lease frees it",
                limiter.name,
                holder,
                describe(exc),
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self._scripts = None
