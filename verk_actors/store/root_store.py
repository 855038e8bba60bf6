"""What VerkRoot asks of Redis for the code that embeds a node, without actors.

Enqueueing (``Enqueue``), pausing and resuming a queue cluster-wide
(``PauseQueue``/``ResumeQueue``) and the stats (``GetStats``) share one connection:
the enqueueing ``Client``'s. Redis errors are raised as they come, for the caller
to turn into a reply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from verk_actors.store.admin.pause import pause_queue, resume_queue
from verk_actors.store.admin.stats import Snapshot, snapshot
from verk_actors.store.client import Client


class RootStore:
    """One node root's connection to Redis and the requests it answers from it."""

    def __init__(self, url: str, client_middleware: Iterable[str] = ()) -> None:
        self.client = Client(url=url, middleware=client_middleware)

    def enqueue(
        self,
        worker: str,
        args: Sequence[Any],
        *,
        at: float | None,
        queue: str | None,
        retry: bool | int | None,
        jid: str | None,
        extra: Mapping[str, Any],
        unique_for: float | None = None,
        unique_until: str | None = None,
    ) -> tuple[str | None, bool]:
        """Enqueue a job now (``at`` None) or at ``at`` (unix seconds): ``(jid, True)``,
        ``(the lock holder's jid, False)`` for a unique job whose lock is held, or
        ``(None, False)`` when a client middleware refused it (nothing written)."""
        options: dict[str, Any] = {
            "queue": queue,
            "retry": retry,
            "jid": jid,
            "extra": dict(extra),
            "unique_for": unique_for,
            "unique_until": unique_until,
        }
        return self.client.enqueue_result(worker, *args, at=at, **options)

    def set_paused(self, queue: str, paused: bool) -> bool:
        """Pause or resume ``queue`` on every node; False if it already was so."""
        change = pause_queue if paused else resume_queue
        return change(self.client.redis, queue)

    def stats(self, days: int) -> Snapshot:
        """The cluster's counts, with ``days`` of history."""
        return snapshot(self.client.redis, days=days)

    def close(self) -> None:
        self.client.close()
