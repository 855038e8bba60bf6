"""The requests of the embedding API that VerkRoot answers from Redis.

``Enqueue`` → ``Enqueued``, ``PauseQueue``/``ResumeQueue`` → ``QueuePaused``,
``GetStats`` → ``StatsReport``; each gets exactly one reply, ``RequestFailed`` when
the node is not configured yet, the request is bad or Redis fails. The Redis side is
``verk_actors.store.root_store.RootStore``.
"""

from __future__ import annotations

from typing import Any

from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import (
    Enqueue,
    Enqueued,
    GetStats,
    PauseQueue,
    QueuePaused,
    RequestFailed,
    ResumeQueue,
    StatsReport,
)
from verk_actors.errors import ConfigurationError, VerkError
from verk_actors.store.failures import REDIS_ERRORS
from verk_actors.store.root_store import RootStore

NOT_CONFIGURED = "send ConfigureVerk to VerkRoot first"


def failed(request: object, exc: BaseException) -> RequestFailed:
    """The reply to ``request`` when ``exc`` stopped it."""
    return RequestFailed(type(request).__name__, type(exc).__name__, str(exc))


class RedisRequests(VerkActor):
    """Mixin of VerkRoot: the requests it answers from Redis through ``self.store``."""

    store: RootStore | None

    def _configured_store(self) -> RootStore:
        if self.store is None:
            raise ConfigurationError(NOT_CONFIGURED)
        return self.store

    def receiveMsg_Enqueue(self, message: Enqueue, sender: Any) -> None:
        try:
            jid, written = self._configured_store().enqueue(
                message.worker,
                message.args,
                at=message.at,
                queue=message.queue,
                retry=message.retry,
                jid=message.jid,
                extra=dict(message.extra),
                unique_for=message.unique_for,
                unique_until=message.unique_until,
            )
        except Exception as exc:
            # One reply whatever failed (a bad job, Redis, a client middleware), never
            # Thespian's retry of the handler.
            self.send(sender, failed(message, exc))
            return
        if jid is None:
            self.send(sender, Enqueued(None, refused=True))
            return
        self.send(sender, Enqueued(jid, duplicate=not written))

    def receiveMsg_PauseQueue(self, message: PauseQueue, sender: Any) -> None:
        self._pause(message, message.name, paused=True, sender=sender)

    def receiveMsg_ResumeQueue(self, message: ResumeQueue, sender: Any) -> None:
        self._pause(message, message.name, paused=False, sender=sender)

    def _pause(self, request: object, name: str, *, paused: bool, sender: Any) -> None:
        try:
            changed = self._configured_store().set_paused(name, paused)
        except (VerkError, *REDIS_ERRORS) as exc:
            self.send(sender, failed(request, exc))
            return
        self.send(sender, QueuePaused(name, paused, changed))

    def receiveMsg_GetStats(self, message: GetStats, sender: Any) -> None:
        try:
            report = StatsReport(self._configured_store().stats(message.days))
        except (VerkError, *REDIS_ERRORS) as exc:
            self.send(sender, failed(message, exc))
            return
        self.send(sender, report)
