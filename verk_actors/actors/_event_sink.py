"""The EventManager's subscriber in Redis: job events for the dashboard's live stream.

Once a second the EventManager asks Redis how many listen to the events channel
(``store.event_stream``). While some do, a ``RedisSink`` is one more subscriber of the
EventManager: it switches job events on in every queue, as an actor subscribing
does, and each flush (every ``FLUSH_EVERY``, 50 ms) publishes the events gathered
meanwhile as one message. Once nobody listens it unsubscribes, and the queues stop
building events. When it starts (and whenever more listeners came) it publishes a
``node`` event saying the node streams, once every queue confirmed it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from verk_actors.actors.messages import Event, JobFailed, JobFinished, JobStarted
from verk_actors.store.event_stream import EventStream
from verk_actors.store.failures import REDIS_ERRORS

log = logging.getLogger(__name__)

LISTEN_POLL = 1.0
"""Seconds between two looks at whether anyone listens."""

MESSAGE_CLIP = 500
"""Characters of an error message an event carries."""

BUFFER = 10_000
"""Events waiting for one flush at most (more are dropped and counted)."""


class RedisSinkAddress:
    """Stands for the Redis sink where the EventManager keeps subscriber addresses."""

    def __repr__(self) -> str:
        return "RedisSink"


SINK = RedisSinkAddress()


def event_dict(event: Event) -> dict[str, Any]:
    """An event as the stream sends it (``class``: the job's class name)."""
    out: dict[str, Any] = {"kind": event.kind, "queue": event.queue}
    if isinstance(event, JobStarted):
        out.update(jid=event.jid, **{"class": event.class_name}, at=event.at)
    elif isinstance(event, JobFinished | JobFailed):
        out.update(
            jid=event.jid,
            **{"class": event.class_name},
            at=event.started_at + event.duration,
            started_at=event.started_at,
            duration=round(event.duration, 6),
        )
        if isinstance(event, JobFailed):
            out.update(
                error_class=event.error_class,
                error_message=event.error_message[:MESSAGE_CLIP],
                target=event.target,
            )
    else:
        out.update(state=event.state, at=event.at)
    return out


class RedisSink:
    """Whether anyone listens in Redis, and publishing batches to them."""

    def __init__(self, url: str, node_id: str) -> None:
        self.node_id = node_id
        self.stream = EventStream(url, node_id)
        self.listeners = 0
        self.failing = False

    def poll(self) -> int | None:
        """How many listen now (None: Redis did not answer; keep what was)."""
        try:
            count = self.stream.listeners()
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return None
        self.failing = False
        return count

    def publish(self, events: Iterable[Event], dropped: int = 0) -> None:
        """One message with these events (nothing when there are none)."""
        batch = [event_dict(e) for e in events]
        if batch or dropped:
            self._send({"node": self.node_id, "events": batch, "dropped": dropped})

    def announce(self) -> None:
        """Tell the listeners this node streams its job events from now on."""
        event = {"kind": "node", "state": "streaming", "at": time.time()}
        self._send({"node": self.node_id, "events": [event], "dropped": 0})

    def _send(self, payload: dict[str, Any]) -> None:
        try:
            self.stream.publish(json.dumps(payload, separators=(",", ":"), default=str))
        except REDIS_ERRORS as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if not self.failing:  # the heartbeat speaks for the node about outages
            log.debug("node %s: job events not published: %s", self.node_id, exc)
        self.failing = True

    def close(self) -> None:
        self.stream.close()
