"""Inside the tree: each child's init message (re-sent on every restart), a child's
word that it is ready or failed, the NodeManager's messages, and describing the live
tree."""

from __future__ import annotations

from typing import Any

import attrs

from verk_actors.actors.messages.base import Message
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import Settings

# --- Inside the tree: initialisation (re-sent on every restart) ----------------------


@attrs.frozen
class InitQueueSupervisor(Message):
    """Configure a queue supervisor."""

    settings: Settings
    queue: QueueSpec
    node_id: str
    events: Any = None
    job_events: bool = False
    metrics: Any = None
    """The MetricsActor's address (None: the node serves no metrics)."""
    quiet: bool = False
    """The node is quiet (``QuietNode``): the queue takes no new jobs."""


@attrs.frozen
class InitQueueManager(Message):
    """Configure a QueueManager."""

    settings: Settings
    queue: str
    node_id: str
    metrics: Any = None
    quiet: bool = False


@attrs.frozen
class InitWorkersManager(Message):
    """Configure a WorkersManager."""

    settings: Settings
    queue: QueueSpec
    node_id: str
    queue_manager: Any
    events: Any = None
    job_events: bool = False
    metrics: Any = None


@attrs.frozen
class InitWorker(Message):
    """Configure a worker actor; ``max_jobs``, ``max_memory``: when it is recycled
    (``_recycle``, 0: never)."""

    settings: Settings
    queue: str
    index: int
    board_path: str
    node_id: str = ""
    max_jobs: int = 0
    max_memory: int = 0


@attrs.frozen
class InitLanes(Message):
    """Configure a worker process that runs many jobs at once (``mode`` threads or
    async), one per lane: ``lanes`` pairs each lane's index with its board's path."""

    settings: Settings
    queue: str
    mode: str
    lanes: tuple[tuple[int, str], ...]
    node_id: str = ""


@attrs.frozen
class InitScheduleManager(Message):
    """Configure the ScheduleManager."""

    settings: Settings
    node_id: str
    metrics: Any = None
    """The MetricsActor's address (None: the node serves no metrics)."""


@attrs.frozen
class ChildReady(Message):
    """A child finished its initialisation (sent to its parent)."""

    pid: int
    worker_retries: tuple[tuple[str, bool | int], ...] = ()
    """A worker's: the ``retry`` option of each worker class it can run, by name."""


@attrs.frozen
class ChildFailed(Message):
    """A child could not initialise; ``message`` says why. It stops itself."""

    error_class: str
    message: str


# --- NodeManager ------------------------------------------------------------------------------


@attrs.frozen
class InitNodeManager(Message):
    """Configure the NodeManager."""

    settings: Settings
    node_id: str
    epoch: str
    queues: tuple[QueueSpec, ...]
    admin_port: int | None
    root_pid: int
    metrics: Any = None
    """The MetricsActor's address (None: the node serves no metrics)."""


@attrs.frozen
class NodeQueues(Message):
    """The node's queues changed (sent by VerkRoot to the NodeManager)."""

    queues: tuple[QueueSpec, ...]


@attrs.frozen
class Heartbeat(Message):
    """Time to renew the lease and describe the node."""


@attrs.frozen
class ScanNodes(Message):
    """Time to look for dead nodes."""


@attrs.frozen
class NodeIdTaken(Message):
    """Another process holds this node id's lease: this node must stop."""

    message: str


@attrs.frozen
class NodeSignal(Message):
    """The NodeManager's heartbeat popped a signal sent to this node through Redis
    (Sidekiq's ``<identity>-signals`` list): ``TSTP`` quiet, ``TERM`` stop."""

    signal: str


@attrs.frozen
class QuietNode(Message):
    """The node is quiet: take no new jobs, let running ones finish (VerkRoot to each
    QueueSupervisor, which passes it on to its QueueManager). Quiet lasts until the
    node stops, as in Sidekiq."""


@attrs.frozen
class LeaveCluster(Message):
    """Clean stop: remove this node's lease and registration. Reply: ``LeftCluster``."""


@attrs.frozen
class LeftCluster(Message):
    """The node's lease and registration are gone."""


# --- The live tree (``verk-actors tree``) ---------------------------------------------------


@attrs.frozen
class DescribeTree(Message):
    """Describe yourself and your children. Reply: ``TreeNode`` with ``request``."""

    request: int = 0
    name: str = ""
    timeout: float = 3.0


@attrs.frozen
class TreeNode(Message):
    """One actor of the live tree and, for a supervisor, its children."""

    request: int
    name: str
    kind: str
    pid: int | None
    state: str = "running"
    restarts: int = 0
    strategy: str = ""
    detail: str = ""
    children: tuple[TreeNode, ...] = ()


@attrs.frozen
class TreeTimeout(Message):
    """Children that did not describe themselves in time are shown as not answering."""

    request: int
