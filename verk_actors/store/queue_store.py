"""The Redis side of one queue on one node, without actors: what QueueManager calls.

Two connections: one for commands, one that waits (``BLMOVE``) for the next job when
the queue is empty, so an idle node reacts to an enqueue at once without polling.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import attrs
import redis

from verk_actors.config.settings import Settings
from verk_actors.jobs.batch import FAILED, SUCCEEDED, batch_updates
from verk_actors.jobs.retry import Fate
from verk_actors.jobs.unique import locks_to_free
from verk_actors.store import keys
from verk_actors.store.batches import FINISHED_TTL
from verk_actors.store.connection import connect
from verk_actors.store.failures import REDIS_ERRORS
from verk_actors.store.job_wait import Answer, JobWait, client_name, wait_name
from verk_actors.store.scripts import Scripts

log = logging.getLogger(__name__)

RECOVERY_BATCH = 1000


def utc_day(now: float | None = None) -> str:
    """``yyyy-mm-dd`` in UTC, as Sidekiq names its per-day counters."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


@attrs.define
class Pending:
    """Outcomes not yet written to Redis (kept until a write succeeds)."""

    acked: list[bytes] = attrs.field(factory=list)
    failed: list[tuple[bytes, Fate, float, str | bytes]] = attrs.field(factory=list)
    requeued: list[bytes] = attrs.field(factory=list)
    batched: dict[tuple[str, str], str] = attrs.field(factory=dict)
    """Outcomes of batch jobs (``(bid, jid)`` -> ``"s"`` or ``"f"``) to tell their batches."""

    def __bool__(self) -> bool:
        return bool(self.acked or self.failed or self.requeued or self.batched)


def note_batches(pending: Pending) -> None:
    """Add the outcomes of the batch jobs among ``pending``'s acked and failed jobs to
    ``pending.batched`` (texts without a ``bid`` field cost a substring search). A job a
    limiter deferred has not run: its batch is not told."""
    if pending.acked:
        pending.batched.update(batch_updates(pending.acked, SUCCEEDED))
    if pending.failed:
        failed = [text for text, fate, _, _ in pending.failed if fate is not Fate.DEFER]
        pending.batched.update(batch_updates(failed, FAILED))


def finished_locks(pending: Pending) -> list[tuple[str, str]]:
    """The locks of the unique jobs of ``pending`` that succeeded or died (their texts
    hold the lock's digest; the others cost a substring search, and no command)."""
    freed = locks_to_free(pending.acked, "success")
    if pending.failed:
        dead = [text for text, fate, _, _ in pending.failed if fate is Fate.DEAD]
        freed += locks_to_free(dead, "success")
    return freed


def settle(
    pending: Pending, parts: list[str], results: list[Any]
) -> tuple[list[bytes] | None, Exception | None]:
    """What a write's pipeline answered: the jobs taken (None: the queue is paused) and
    the first error; each part of ``pending`` that was written is emptied."""
    error: Exception | None = None
    taken: list[bytes] | None = []
    for part, result in zip(parts, results, strict=True):
        if part == "unlock":
            continue  # a lock not freed expires on its own: not worth a retry
        if isinstance(result, Exception):
            error = error or result
        elif part == "take":
            taken = None if result is None else list(result)
        else:
            getattr(pending, part).clear()
    return taken, error


class QueueStore:
    """One queue's jobs on one node, in Redis."""

    def __init__(self, settings: Settings, queue: str, node_id: str) -> None:
        self.settings = settings
        self.queue = queue
        self.node_id = node_id
        self.inprogress = keys.inprogress_key(queue, node_id)
        """This node's in-progress list of this queue (named in log lines)."""
        name = client_name(node_id, queue)
        self.client = connect(settings.redis_url, name=name)
        self.scripts = Scripts(self.client)
        self._wait = JobWait(
            settings.redis_url,
            queue,
            node_id,
            name=wait_name(name),
            control=self.client,
        )

    def register(self) -> None:
        """Note in Redis that this node may hold in-progress jobs of this queue."""
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(keys.NODES, self.node_id)
        pipe.sadd(keys.node_queues_key(self.node_id), self.queue)
        pipe.sadd(keys.QUEUES, self.queue)
        pipe.execute()

    def recover_leftovers(self) -> int:
        """Move every job this node left in progress back to the queue."""
        total = 0
        while True:
            moved, remaining = self.scripts.requeue_inprogress(
                self.client, self.queue, self.node_id, RECOVERY_BATCH
            )
            total += max(moved, 0)
            if remaining <= 0 or moved <= 0:
                return total

    def write(
        self, pending: Pending, take: int, *, least: int = 1, reloaded: bool = False
    ) -> tuple[list[bytes] | None, Exception | None]:
        """Write ``pending`` outcomes and take up to ``take`` jobs (none if fewer than
        ``least`` wait), in one round trip.

        Returns the jobs taken (None: the queue is paused) and the first error. Each
        part of ``pending`` is emptied only if its write succeeded, so what failed is
        written again next time.
        """
        now = time.time()
        day = utc_day(now)
        pipe = self.client.pipeline(transaction=False)
        parts: list[str] = []
        if pending.acked:
            self.scripts.ack_jobs(pipe, self.queue, self.node_id, day, pending.acked)
            parts.append("acked")
        if pending.failed:
            self.scripts.fail_jobs(
                pipe,
                self.queue,
                self.node_id,
                day,
                pending.failed,
                now=now,
                dead_timeout=self.settings.dead_timeout,
                dead_max_jobs=self.settings.dead_max_jobs,
            )
            parts.append("failed")
        note_batches(pending)
        if pending.batched:
            self.scripts.batch_update(pipe, pending.batched, now=now, keep=FINISHED_TTL)
            parts.append("batched")
        freed = finished_locks(pending)
        if freed:
            self.scripts.unique_release(pipe, freed)
            parts.append("unlock")
        if pending.requeued:
            self.scripts.requeue_jobs(pipe, self.queue, self.node_id, pending.requeued)
            parts.append("requeued")
        if take > 0:
            self.scripts.take_jobs(pipe, self.queue, self.node_id, take, least)
            parts.append("take")
        if not parts:
            return [], None
        try:
            results = pipe.execute(raise_on_error=False)
        except REDIS_ERRORS as exc:
            return [], exc
        if not reloaded and any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
            # Redis restarted and forgot the scripts: no part ran. Load them, go again.
            try:
                self.scripts.load(self.client)
            except REDIS_ERRORS as exc:
                return [], exc
            return self.write(pending, take, least=least, reloaded=True)
        return settle(pending, parts, results)

    def release_started(self, texts: Sequence[bytes]) -> None:
        """Free the locks of the unique jobs among ``texts`` (jobs this node took to
        run) that are unique until they start. Best effort: a lock that Redis did not
        free expires on its own."""
        locks = locks_to_free(texts, "start")
        if locks:
            try:
                self.scripts.unique_release(self.client, locks)
            except REDIS_ERRORS as exc:
                log.warning(
                    "queue %s: could not free %d unique locks of jobs that started (%s: "
                    "%s); they expire on their own",
                    self.queue,
                    len(locks),
                    type(exc).__name__,
                    exc,
                )

    def orphans(self, known: set[bytes]) -> list[bytes]:
        """Jobs in this node's in-progress list that are not in ``known``, oldest first."""
        key = keys.inprogress_key(self.queue, self.node_id)
        texts = cast(list[bytes], self.client.lrange(key, 0, -1))
        return [text for text in reversed(texts) if text not in known]

    def requeue(self, texts: Sequence[bytes]) -> int:
        """Give jobs still in progress back to the queue, the first given to run first."""
        if not texts:
            return 0
        return self.scripts.requeue_jobs(self.client, self.queue, self.node_id, texts)

    # --- the blocking wait -------------------------------------------------------------

    def start_wait(self) -> int:
        """Send a BLMOVE for one job; return the socket to watch for its answer."""
        return self._wait.start()

    def finish_wait(self) -> Answer:
        """Read what the readable wait socket holds (``Answer``: done, job, paused)."""
        return self._wait.finish()

    def is_paused(self) -> bool:
        """Whether the queue is paused cluster-wide now."""
        return bool(self.client.sismember(keys.PAUSED, self.queue))

    def interrupt_wait(self) -> None:
        """Make a pending BLMOVE answer now (nil, or the job it just moved)."""
        self._wait.interrupt()

    def cancel_wait(self) -> None:
        """Drop the waiting connection (a job it moved stays in progress)."""
        self._wait.cancel()

    def close(self) -> None:
        """Close both connections."""
        self._wait.close()
        self.client.close()
