"""``EventManager``: hands job and queue events to the actors that subscribed.

Subscribers send ``Subscribe`` to VerkRoot, optionally naming the kinds of event
and the queues they want. The tree publishes events here (``PublishEvents``), never
to subscribers directly, so no subscriber can slow a queue down. Each subscriber has
a buffer of bounded size: every ``FLUSH_EVERY`` seconds the buffered events go out
in one ``VerkEvents`` message; when a subscriber falls behind, the oldest events are
dropped and the next batch says how many. Job events are only produced while some
subscriber wants them (the EventManager tells VerkRoot, which tells the queues).
When a subscription switches job events on, its ``Subscribed`` reply waits until
every queue confirms (``EventsApplied``), so no job that starts after the reply goes
unreported; ``CONFIRM_WITHIN`` bounds that wait when a queue is restarting.

Redis is one more subscriber (``_event_sink``): while someone listens to the events
channel (the dashboard's ``/api/events``), the EventManager publishes job events there.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any

import attrs

from verk_actors.actors._event_sink import BUFFER, LISTEN_POLL, SINK, RedisSink
from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import (
    CheckListeners,
    ChildReady,
    DemandBroadcast,
    DemandTimeout,
    Event,
    EventDemand,
    EventsApplied,
    FlushEvents,
    InitEventManager,
    PublishEvents,
    Subscribe,
    Subscribed,
    SubscribeFor,
    Unsubscribed,
    VerkEvents,
)

log = logging.getLogger(__name__)

FLUSH_EVERY = 0.05
CONFIRM_WITHIN = 10.0
JOB_KINDS = frozenset(("job_started", "job_finished", "job_failed"))
KINDS = JOB_KINDS | {"queue"}


@attrs.define
class Subscriber:
    """One subscriber, its filters and its buffer."""

    address: Any
    kinds: frozenset[str]
    queues: frozenset[str]
    buffer: deque[Event]
    dropped: int = 0

    def wants(self, event: Event) -> bool:
        return (not self.kinds or event.kind in self.kinds) and (
            not self.queues or event.queue in self.queues
        )


class EventManager(VerkActor):
    """Buffers events per subscriber and sends them in batches."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.subscribers: list[Subscriber] = []
        self.root: Any = None
        self.flush_armed = False
        self.job_demand = False
        self.token = 0
        self.waiting: list[tuple[Any, Subscribed]] = []
        self.applied = 0
        self.expected: int | None = None
        self.sink: RedisSink | None = None

    def receiveMsg_InitEventManager(self, message: InitEventManager, sender: Any) -> None:
        self.root = sender
        if message.settings is not None and self.sink is None:
            self.sink = RedisSink(message.settings.redis_url, message.node_id)
            self.after(LISTEN_POLL, CheckListeners())
        self.send(sender, ChildReady(os.getpid()))

    def receiveMsg_CheckListeners(self, message: CheckListeners, sender: Any) -> None:
        sink = self.sink
        if sink is None:
            return
        count = sink.poll()
        if count is not None and count != sink.listeners:
            more = count > sink.listeners
            sink.listeners = count
            if count == 0:
                self._subscribe(SINK, None, self.root, reply=False)
            elif more:  # (again) once every queue confirms: the newcomers are told
                self._subscribe(SINK, Subscribe(buffer=BUFFER), self.root)
        self.after(LISTEN_POLL, CheckListeners())

    def receiveMsg_SubscribeFor(self, message: SubscribeFor, sender: Any) -> None:
        self._subscribe(message.subscriber, message.subscribe, sender)

    def _subscribe(
        self, address: Any, request: Subscribe | None, root: Any, *, reply: bool = True
    ) -> None:
        self.root = root
        sender = root
        self.subscribers = [s for s in self.subscribers if s.address != address]
        if request is None:
            if reply:
                self.send(address, Unsubscribed())
        else:
            unknown = sorted(set(request.kinds) - KINDS)
            if unknown:
                log.warning(
                    "subscription asks for unknown event kinds %s; known: %s",
                    unknown,
                    sorted(KINDS),
                )
            self.subscribers.append(
                Subscriber(
                    address,
                    frozenset(request.kinds),
                    frozenset(request.queues),
                    deque(maxlen=max(1, request.buffer)),
                )
            )
            self.waiting.append((address, Subscribed(request.kinds, request.queues)))
        demand = any(not s.kinds or s.kinds & JOB_KINDS for s in self.subscribers)
        if demand != self.job_demand:
            self.job_demand = demand
            self.token += 1
            self.applied = 0
            self.expected = None
            self.send(sender, EventDemand(demand, self.token if demand else 0))
            if demand:
                self.after(CONFIRM_WITHIN, DemandTimeout(self.token))
        if not self.job_demand or (self.expected is not None and self.applied >= self.expected):
            self._answer_waiting()

    def _answer_waiting(self) -> None:
        for address, reply in self.waiting:
            if address is SINK:
                if self.sink is not None:
                    self.sink.announce()
            else:
                self.send(address, reply)
        self.waiting.clear()

    def receiveMsg_DemandBroadcast(self, message: DemandBroadcast, sender: Any) -> None:
        if message.token == self.token:
            self.expected = message.queues
            if self.applied >= self.expected:
                self._answer_waiting()

    def receiveMsg_EventsApplied(self, message: EventsApplied, sender: Any) -> None:
        if message.token == self.token:
            self.applied += 1
            if self.expected is not None and self.applied >= self.expected:
                self._answer_waiting()

    def receiveMsg_DemandTimeout(self, message: DemandTimeout, sender: Any) -> None:
        if message.token == self.token and self.waiting:
            log.warning(
                "%d of %s queues confirmed job events within %.1f s; answering subscribers",
                self.applied,
                "?" if self.expected is None else self.expected,
                CONFIRM_WITHIN,
            )
            self._answer_waiting()

    def receiveMsg_PublishEvents(self, message: PublishEvents, sender: Any) -> None:
        for subscriber in self.subscribers:
            buffer = subscriber.buffer
            for event in message.events:
                if subscriber.wants(event):
                    if len(buffer) == buffer.maxlen:
                        subscriber.dropped += 1
                    buffer.append(event)
        if not self.flush_armed and any(s.buffer or s.dropped for s in self.subscribers):
            self.flush_armed = True
            self.after(FLUSH_EVERY, FlushEvents())

    def receiveMsg_FlushEvents(self, message: FlushEvents, sender: Any) -> None:
        self.flush_armed = False
        for subscriber in self.subscribers:
            if subscriber.address is SINK and self.sink is not None:
                self.sink.publish(subscriber.buffer, subscriber.dropped)
                subscriber.buffer.clear()
                subscriber.dropped = 0
            elif subscriber.buffer or subscriber.dropped:
                self.send(
                    subscriber.address, VerkEvents(tuple(subscriber.buffer), subscriber.dropped)
                )
                subscriber.buffer.clear()
                subscriber.dropped = 0

    def stopping(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None
