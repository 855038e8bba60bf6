"""VerkRoot's part in events: subscriptions go to its EventManager child, and its queue
subtrees are told where to publish and whether anyone wants job events.

When the EventManager restarts, its subscriptions are gone (subscribers subscribe
again), so job events are switched off in every queue until someone asks again.
"""

from __future__ import annotations

import time
from typing import Any

from verk_actors.actors._requests import NOT_CONFIGURED, failed
from verk_actors.actors.messages import (
    DemandBroadcast,
    EventDemand,
    EventsWanted,
    PublishEvents,
    QueueEvent,
    Subscribe,
    SubscribeFor,
    Unsubscribe,
)
from verk_actors.actors.supervisor import Child, Supervisor
from verk_actors.errors import ConfigurationError

EVENT_MANAGER = "event_manager"
"""The name of the child that keeps subscriptions and sends events."""

QUEUE_PREFIX = "queue:"
"""Names of the queue subtrees: ``queue:<name>``."""


class EventRouting(Supervisor):
    """Mixin of VerkRoot: routes subscriptions and event demand through its children."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.job_events = False
        """Whether a subscriber wants job events (queues started now are told so)."""

    def event_manager(self) -> Any:
        """The EventManager's address (None before the node is configured)."""
        child = self.child(EVENT_MANAGER)
        return child.address if child is not None else None

    def receiveMsg_Subscribe(self, message: Subscribe, sender: Any) -> None:
        self._subscription(sender, message)

    def receiveMsg_Unsubscribe(self, message: Unsubscribe, sender: Any) -> None:
        self._subscription(sender, None)

    def _subscription(self, subscriber: Any, request: Subscribe | None) -> None:
        manager = self.event_manager()
        if manager is None:
            error = ConfigurationError(NOT_CONFIGURED)
            self.send(subscriber, failed(request or Unsubscribe(), error))
            return
        self.send(manager, SubscribeFor(subscriber, request))

    def receiveMsg_EventDemand(self, message: EventDemand, sender: Any) -> None:
        self.job_events = message.jobs
        told = self._broadcast_events(message.token)
        if message.token:
            self.send(sender, DemandBroadcast(message.token, told))

    def _broadcast_events(self, token: int = 0) -> int:
        """Tell every running queue where events go; return how many were told."""
        wanted = EventsWanted(self.event_manager(), self.job_events, token)
        told = 0
        for child in self.children:
            if child.name.startswith(QUEUE_PREFIX) and child.address is not None:
                self.send(child.address, wanted)
                told += 1
        return told

    def child_restarted(self, child: Child) -> None:
        if child.name == EVENT_MANAGER:
            self.job_events = False  # subscriptions died with it: subscribers resubscribe
            self._broadcast_events()

    def queue_event(self, queue: str, state: str) -> None:
        """Publish that ``queue`` was added, removed... on this node."""
        manager = self.event_manager()
        if manager is not None:
            self.send(manager, PublishEvents((QueueEvent(queue, state, time.time()),)))
