"""Job and queue events for subscribers, and how the EventManager gathers them."""

from __future__ import annotations

from typing import Any

import attrs

from verk_actors.actors.messages.base import BatchMessage, Message

# --- Events (to subscribers) -----------------------------------------------------------------


@attrs.frozen
class Subscribe(Message):
    """Subscribe the sender to events (send to VerkRoot). Reply: ``Subscribed``.

    ``kinds``: any of ``job_started``, ``job_finished``, ``job_failed``, ``queue``
    (empty: all); ``queues``: only these queues (empty: all). Events come in
    ``VerkEvents`` batches; at most ``buffer`` wait for a slow subscriber, older
    ones are dropped and counted.
    """

    kinds: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    buffer: int = 10_000


@attrs.frozen
class Subscribed(Message):
    """The subscription is active."""

    kinds: tuple[str, ...]
    queues: tuple[str, ...]


@attrs.frozen
class Unsubscribe(Message):
    """Stop sending events to the sender. Reply: ``Unsubscribed``."""


@attrs.frozen
class Unsubscribed(Message):
    """No more events will be sent."""


@attrs.frozen
class JobStarted(Message):
    """A worker was handed the job (``at``: unix time)."""

    queue: str
    jid: str | None
    class_name: str | None
    at: float
    kind: str = "job_started"


@attrs.frozen
class JobFinished(Message):
    """The job succeeded after ``duration`` seconds."""

    queue: str
    jid: str | None
    class_name: str | None
    started_at: float
    duration: float
    kind: str = "job_finished"


@attrs.frozen
class JobFailed(Message):
    """The job failed; it went to ``target`` (retry or dead)."""

    queue: str
    jid: str | None
    class_name: str | None
    started_at: float
    duration: float
    error_class: str
    error_message: str
    target: str
    kind: str = "job_failed"


@attrs.frozen
class QueueEvent(Message):
    """A queue is ``running``, ``pausing``, ``paused``, ``added`` or ``removed``."""

    queue: str
    state: str
    at: float
    kind: str = "queue"


Event = JobStarted | JobFinished | JobFailed | QueueEvent


@attrs.frozen(repr=False)
class VerkEvents(BatchMessage):
    """A batch of events; ``dropped`` were lost since the last batch (slow subscriber)."""

    events: tuple[Event, ...]
    dropped: int = 0


@attrs.frozen(repr=False)
class PublishEvents(BatchMessage):
    """Events from the tree to the EventManager."""

    events: tuple[Event, ...]


@attrs.frozen
class SubscribeFor(Message):
    """VerkRoot hands a subscription (or, with ``subscribe`` None, its end) to the EventManager."""

    subscriber: Any
    subscribe: Subscribe | None


@attrs.frozen
class EventDemand(Message):
    """Whether any subscriber wants job events (EventManager to VerkRoot).

    A nonzero ``token`` asks VerkRoot to confirm with ``DemandBroadcast`` how many
    queues it told; each queue then confirms with ``EventsApplied``.
    """

    jobs: bool
    token: int = 0


@attrs.frozen
class EventsWanted(Message):
    """Where to publish events, and whether job events are wanted (to queue subtrees).

    With a nonzero ``token``, the queue answers the EventManager with ``EventsApplied``
    once its WorkersManager publishes accordingly.
    """

    manager: Any
    jobs: bool
    token: int = 0


@attrs.frozen
class DemandBroadcast(Message):
    """VerkRoot told ``queues`` queues about the demand ``token`` (to the EventManager)."""

    token: int
    queues: int


@attrs.frozen
class EventsApplied(Message):
    """A queue now publishes events as the demand ``token`` asked (to the EventManager)."""

    token: int


@attrs.frozen
class DemandTimeout(Message):
    """Stop waiting for queues to confirm the demand ``token``: answer subscribers anyway."""

    token: int


@attrs.frozen
class InitEventManager(Message):
    """Configure the EventManager: with ``settings``, it publishes job events into Redis
    while someone listens there (the dashboard's ``/api/events``)."""

    settings: Any = None
    """The node's ``Settings`` (None: no publishing into Redis)."""
    node_id: str = ""


@attrs.frozen
class CheckListeners(Message):
    """Time to ask Redis whether anyone listens to the node's job events."""


@attrs.frozen
class FlushEvents(Message):
    """Time to send the buffered events to subscribers."""
