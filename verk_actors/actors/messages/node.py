"""Messages of the actor door: what an application (or any actor) sends to a node's
``VerkRoot``, and the replies. Each request gets one reply, or ``RequestFailed`` saying
what was wrong."""

from __future__ import annotations

from typing import Any

import attrs

from verk_actors.actors.messages.base import Message
from verk_actors.config.settings import Settings

# --- To VerkRoot, from applications and other actors -------------------------------


@attrs.frozen
class ConfigureVerk(Message):
    """Start the node: queues, Redis, node id... Reply: ``VerkStarted``.

    ``launcher_pid``: the node stops when this process exits (``verk-actors start``
    passes its own pid so that a killed launcher never leaves a node behind).
    """

    settings: Settings
    launcher_pid: int | None = None


@attrs.frozen
class Enqueue(Message):
    """Enqueue a job (``at``: unix time to run it, None = now). Reply: ``Enqueued``."""

    worker: str
    args: tuple[Any, ...] = ()
    queue: str = "default"
    at: float | None = None
    retry: bool | int | None = None
    """None: the job carries no ``retry``; the worker's option applies where it runs."""
    jid: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()
    unique_for: float | None = None
    """Seconds: a unique job (see ``Worker.unique_for``); None: not unique."""
    unique_until: str | None = None
    """``"success"`` (None: the default) or ``"start"``."""


@attrs.frozen
class AddQueue(Message):
    """Start working on a queue. Reply: ``QueueAdded``. ``mode`` and ``per_process`` as
    on ``QueueSpec`` (``per_process`` 0: the mode's default); ``max_jobs``,
    ``max_memory``: the queue's recycling limits; ``min_workers``: its lazy pool's floor."""

    name: str
    concurrency: int
    mode: str = "process"
    per_process: int = 0
    max_jobs: int | None = None
    max_memory: int | None = None
    min_workers: int | None = None


@attrs.frozen
class RemoveQueue(Message):
    """Stop working on a queue; its unfinished jobs go back to it. Reply: ``QueueRemoved``."""

    name: str


@attrs.frozen
class GetStatus(Message):
    """Ask for the node's state. Reply: ``VerkStatus``."""


@attrs.frozen
class StopVerk(Message):
    """Stop the node gracefully. Reply: ``VerkStopped``.

    ``timeout``: seconds running jobs get to finish (None: ``Settings.shutdown_timeout``);
    then they are killed and go back to their queues. Sent while a stop is under way,
    a StopVerk with a timeout hurries it (``timeout=0``: stop now); both are answered.
    """

    timeout: float | None = None


# --- Replies from VerkRoot ------------------------------------------------------------


@attrs.frozen
class VerkStarted(Message):
    """The node runs."""

    node_id: str
    queues: tuple[str, ...]


@attrs.frozen
class Enqueued(Message):
    """The job is in Redis (its ``jid``); or, ``duplicate``, it was a unique job whose
    lock another job holds: nothing was written and ``jid`` is the holder's; or,
    ``refused``, a client middleware refused it: nothing was written, ``jid`` is None."""

    jid: str | None
    duplicate: bool = False
    refused: bool = False


@attrs.frozen
class QueueAdded(Message):
    """The queue runs on this node."""

    name: str


@attrs.frozen
class QueueRemoved(Message):
    """The queue stopped on this node; ``requeued`` unfinished jobs went back to it."""

    name: str
    requeued: int


@attrs.frozen
class QueueStatus(Message):
    """One queue of a node."""

    name: str
    concurrency: int
    restarts: int


@attrs.frozen
class VerkStatus(Message):
    """A node's state. ``running`` is ``state == "running"``; ``state`` is one of
    ``not configured``, ``running``, ``stopping`` (a ``StopVerk`` is draining the
    queues), ``stopped`` (a ``StopVerk`` finished: a clean stop) or ``failed`` (it
    gave up restarting a child, or its node id is used by another live node)."""

    node_id: str
    running: bool
    queues: tuple[QueueStatus, ...]
    state: str = "running"


@attrs.frozen
class VerkStopped(Message):
    """The node stopped its queues; every unfinished job is back in Redis."""

    requeued: int


@attrs.frozen
class RequestFailed(Message):
    """A request was refused; ``message`` says why and what to do."""

    request: str
    error_class: str
    message: str


# --- Operating the cluster through VerkRoot (the actor door) -------------------------------


@attrs.frozen
class PauseQueue(Message):
    """Pause a queue on every node (the ``verk:paused`` set). Reply: ``QueuePaused``."""

    name: str


@attrs.frozen
class ResumeQueue(Message):
    """Resume a paused queue on every node. Reply: ``QueuePaused`` (paused False)."""

    name: str


@attrs.frozen
class QueuePaused(Message):
    """Whether the queue is now paused, and whether this request changed it."""

    name: str
    paused: bool
    changed: bool


@attrs.frozen
class GetStats(Message):
    """Cluster-wide counters, queues and nodes, as ``verk-actors stats`` shows. Reply:
    ``StatsReport``."""

    days: int = 7


@attrs.frozen
class StatsReport(Message):
    """A ``verk_actors.store.admin.stats.Snapshot``."""

    snapshot: Any
