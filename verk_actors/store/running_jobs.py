"""The jobs a node's workers are running now, kept in Redis for Sidekiq's Busy page.

Each WorkersManager reads off its workers' progress boards which job each one runs
and since when: jobs handed to a worker but not started yet are not running. It
writes them into the node's hash ``verk:node:<id>:running``, one field per worker
(``<queue>-<index>``) holding Sidekiq's work JSON (``queue``, ``payload``, and
``run_at``: when the job started), at most every ``PUBLISH_EVERY`` seconds and only
when something changed. The NodeStore copies the hash into Sidekiq's
``<identity>:workers`` hash at each heartbeat, and counts its fields as the node's busy
jobs.

Redis being away costs nothing but the view: a failed write is logged once and tried
again ``RETRY_AFTER`` later, with short timeouts, so the WorkersManager never waits
long on it.
"""

from __future__ import annotations

import contextlib
import json
import logging

import attrs
import redis

from verk_actors.config.redis_url import redact_url
from verk_actors.config.settings import Settings
from verk_actors.store import keys
from verk_actors.store.connection import connect

log = logging.getLogger(__name__)

PUBLISH_EVERY = 1.0
"""Most often (seconds) a WorkersManager writes what its workers run."""

REFRESH_EVERY = 20.0
"""Seconds after which an unchanged view is written again, to renew its expiry."""

TTL = 60
"""Seconds the hash outlives the last write (a node killed leaves nothing for long)."""

RETRY_AFTER = 10.0
"""Seconds to wait after a failed write before the next one."""

TIMEOUT = 0.5
"""Seconds a write (or a connection) may take."""

ERRORS = (redis.RedisError, OSError)


def field(queue: str, worker: int) -> str:
    """The field of worker ``worker`` of ``queue`` (Sidekiq shows it as the thread id)."""
    return f"{queue}-{worker}"


def work_entry(queue: str, text: bytes, started_at: float) -> str:
    """Sidekiq's description of a running job (its ``Sidekiq::Work``)."""
    payload = text.decode("utf-8", errors="replace")
    return json.dumps({"queue": queue, "payload": payload, "run_at": int(started_at)})


@attrs.frozen
class Running:
    """A job one worker runs: ``token`` tells one run from the next (batch, index)."""

    token: tuple[int, int]
    text: bytes
    started_at: float


class RunningJobs:
    """One queue's share of the node's running-jobs hash."""

    def __init__(self, settings: Settings, node_id: str, queue: str) -> None:
        self.queue = queue
        self.key = keys.node_running_key(node_id)
        self.url = settings.redis_url
        self.client = connect(
            settings.redis_url,
            name=f"verk:{node_id}:{queue}:running",
            socket_timeout=TIMEOUT,
            connect_timeout=TIMEOUT,
        )
        self.shown: dict[str, tuple[tuple[int, int], str]] = {}
        """What Redis holds of ours: field -> (token, work JSON)."""
        self.next_write = 0.0
        self.refresh_at = 0.0
        self.failing = False

    def due(self, now: float) -> bool:
        """Whether a write may go out at ``now`` (monotonic)."""
        return now >= self.next_write

    def publish(self, running: dict[str, Running], now: float) -> None:
        """Make the hash show ``running`` (field -> job) for this queue's workers."""
        if not self.due(now):
            return
        gone = [name for name in self.shown if name not in running]
        changed = {
            name: work_entry(self.queue, job.text, job.started_at)
            for name, job in running.items()
            if self.shown.get(name, ((-1, -1), ""))[0] != job.token
        }
        if not gone and not changed and (not running or now < self.refresh_at):
            return
        pipe = self.client.pipeline(transaction=False)
        if gone:
            pipe.hdel(self.key, *gone)
        if changed:
            pipe.hset(self.key, mapping=changed)  # type: ignore[arg-type]  # redis-py: invariant Mapping key
        if running:
            pipe.expire(self.key, TTL)
        try:
            pipe.execute()
        except ERRORS as exc:
            self._failed(exc, now)
            return
        for name in gone:
            del self.shown[name]
        for name, text in changed.items():
            self.shown[name] = (running[name].token, text)
        self.next_write = now + PUBLISH_EVERY
        self.refresh_at = now + REFRESH_EVERY
        if self.failing:
            self.failing = False
            log.info("queue %s: the running jobs are shown in Redis again", self.queue)

    def _failed(self, exc: BaseException, now: float) -> None:
        self.next_write = now + RETRY_AFTER
        self.shown = dict.fromkeys(self.shown, ((-1, -1), ""))  # write it all again
        if not self.failing:
            self.failing = True
            log.warning(
                "queue %s: cannot show its running jobs in Redis at %s (%s: %s); "
                "trying again every %g s",
                self.queue,
                redact_url(self.url),
                type(exc).__name__,
                exc,
                RETRY_AFTER,
            )

    def close(self) -> None:
        """Remove this queue's fields (best effort: they expire anyway) and disconnect."""
        if self.shown and not self.failing:
            with contextlib.suppress(*ERRORS):
                self.client.hdel(self.key, *self.shown)
        self.shown = {}
        self.client.close()
