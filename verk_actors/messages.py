"""Every message the actors exchange, as frozen attrs classes, grouped by receiver.

Commands are imperative (``DequeueJobs``), events and replies past tense
(``JobsDequeued``). Fields hold plain data and actor addresses only: errors travel
as class name and text, never as exception objects.

The messages an embedding application sends to ``VerkRoot`` are the first group;
each gets one reply, or ``RequestFailed`` saying what was wrong.
"""

from __future__ import annotations

from typing import Any

import attrs

from verk_actors.retry import FailureRecord
from verk_actors.running import JobOutcome
from verk_actors.settings import QueueSpec, Settings

# --- To VerkRoot, from applications and other actors -------------------------------


@attrs.frozen
class ConfigureVerk:
    """Start the node: queues, Redis, node id... Reply: ``VerkStarted``.

    ``launcher_pid``: the node stops when this process exits (``verk-actors start``
    passes its own pid so that a killed launcher never leaves a node behind).
    """

    settings: Settings
    launcher_pid: int | None = None


@attrs.frozen
class Enqueue:
    """Enqueue a job (``at``: unix time to run it, None = now). Reply: ``Enqueued``."""

    worker: str
    args: tuple[Any, ...] = ()
    queue: str = "default"
    at: float | None = None
    retry: bool | int | None = True
    jid: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()


@attrs.frozen
class AddQueue:
    """Start working on a queue. Reply: ``QueueAdded``."""

    name: str
    concurrency: int


@attrs.frozen
class RemoveQueue:
    """Stop working on a queue; its unfinished jobs go back to it. Reply: ``QueueRemoved``."""

    name: str


@attrs.frozen
class GetStatus:
    """Ask for the node's state. Reply: ``VerkStatus``."""


@attrs.frozen
class StopVerk:
    """Stop the node gracefully. Reply: ``VerkStopped``."""


# --- Replies from VerkRoot ------------------------------------------------------------


@attrs.frozen
class VerkStarted:
    """The node runs."""

    node_id: str
    queues: tuple[str, ...]


@attrs.frozen
class Enqueued:
    """The job is in Redis."""

    jid: str


@attrs.frozen
class QueueAdded:
    """The queue runs on this node."""

    name: str


@attrs.frozen
class QueueRemoved:
    """The queue stopped on this node; ``requeued`` unfinished jobs went back to it."""

    name: str
    requeued: int


@attrs.frozen
class QueueStatus:
    """One queue of a node."""

    name: str
    concurrency: int
    restarts: int


@attrs.frozen
class VerkStatus:
    """A node's state."""

    node_id: str
    running: bool
    queues: tuple[QueueStatus, ...]


@attrs.frozen
class VerkStopped:
    """The node stopped its queues; every unfinished job is back in Redis."""

    requeued: int


@attrs.frozen
class RequestFailed:
    """A request was refused; ``message`` says why and what to do."""

    request: str
    error_class: str
    message: str


# --- Inside the tree: initialisation (re-sent on every restart) ----------------------


@attrs.frozen
class InitQueueSupervisor:
    """Configure a queue supervisor."""

    settings: Settings
    queue: QueueSpec
    node_id: str


@attrs.frozen
class InitQueueManager:
    """Configure a QueueManager."""

    settings: Settings
    queue: str
    node_id: str


@attrs.frozen
class InitWorkersManager:
    """Configure a WorkersManager."""

    settings: Settings
    queue: QueueSpec
    node_id: str
    queue_manager: Any


@attrs.frozen
class InitWorker:
    """Configure a worker actor."""

    settings: Settings
    queue: str
    index: int
    board_path: str


@attrs.frozen
class InitScheduleManager:
    """Configure the ScheduleManager."""

    settings: Settings
    node_id: str


@attrs.frozen
class ChildReady:
    """A child finished its initialisation (sent to its parent)."""

    pid: int


@attrs.frozen
class ChildFailed:
    """A child could not initialise; ``message`` says why. It stops itself."""

    error_class: str
    message: str


# --- WorkersManager <-> QueueManager ----------------------------------------------------


@attrs.frozen
class AttachWorkersManager:
    """A (new) WorkersManager: the QueueManager gives back jobs handed to the old one."""


@attrs.frozen
class DequeueJobs:
    """Take up to ``max_jobs`` jobs; wait for one if the queue is empty. Reply: JobsDequeued."""

    max_jobs: int


@attrs.frozen
class JobsDequeued:
    """Jobs taken into in-progress, each with the QueueManager's reference number."""

    jobs: tuple[tuple[int, bytes], ...]


@attrs.frozen
class RecordOutcomes:
    """Record what happened to jobs, then (``dequeue`` > 0) take more.

    ``acked``: succeeded; ``failed``: with their retry/dead record; ``requeued``: never
    started, back to the queue.
    """

    acked: tuple[int, ...] = ()
    failed: tuple[tuple[int, FailureRecord], ...] = ()
    requeued: tuple[int, ...] = ()
    dequeue: int = 0


@attrs.frozen
class StopQueueManager:
    """Write what is pending, give every job still in progress back.

    Sent by the WorkersManager after its last outcomes (so none arrives after it);
    the QueueManager replies ``QueueManagerStopped`` to ``reply_to``.
    """

    reply_to: Any


@attrs.frozen
class QueueManagerStopped:
    """The QueueManager has nothing in flight; ``requeued`` jobs went back to the queue."""

    requeued: int


# --- WorkersManager <-> workers ------------------------------------------------------------


@attrs.frozen
class RunJobs:
    """Run these jobs in order; report with ``JobsDone``."""

    batch: int
    jobs: tuple[tuple[int, bytes], ...]


@attrs.frozen
class JobsDone:
    """Outcomes of jobs of a batch; ``finished``: the batch is over and the worker is free."""

    batch: int
    outcomes: tuple[JobOutcome, ...]
    finished: bool


# --- Queue supervisor <-> WorkersManager, VerkRoot <-> queue supervisor ----------------------


@attrs.frozen
class DrainQueue:
    """Stop taking jobs; let running ones finish for ``timeout`` s, then kill them.

    When no job runs, the WorkersManager sends its last outcomes and then
    ``StopQueueManager`` to the QueueManager, which replies to the drain's sender.
    """

    timeout: float


@attrs.frozen
class StopQueue:
    """Drain the queue and give its unfinished jobs back. Reply: ``QueueStopped``."""

    timeout: float


@attrs.frozen
class QueueStopped:
    """The queue stopped cleanly."""

    queue: str
    requeued: int


# --- Timers (wakeupAfter payloads) -----------------------------------------------------------


@attrs.frozen
class RetryRedis:
    """Time to try Redis again."""


@attrs.frozen
class PollBlocking:
    """Time to (re)issue the blocking wait for a job."""


@attrs.frozen
class CheckDeadlines:
    """Time to look for jobs past their time limit."""


@attrs.frozen
class PollSchedule:
    """Time to move due scheduled and retry jobs."""


@attrs.frozen
class DrainTimeout:
    """The drain's time is up."""

    token: int


@attrs.frozen
class StopTimeout:
    """Children asked to stop have had their time."""

    token: int


@attrs.frozen
class CheckLauncher:
    """Time to check that the launcher process is still alive."""


# --- NodeManager ------------------------------------------------------------------------------


@attrs.frozen
class InitNodeManager:
    """Configure the NodeManager."""

    settings: Settings
    node_id: str
    epoch: str
    queues: tuple[QueueSpec, ...]
    admin_port: int | None
    root_pid: int


@attrs.frozen
class NodeQueues:
    """The node's queues changed (sent by VerkRoot to the NodeManager)."""

    queues: tuple[QueueSpec, ...]


@attrs.frozen
class Heartbeat:
    """Time to renew the lease and describe the node."""


@attrs.frozen
class ScanNodes:
    """Time to look for dead nodes."""


@attrs.frozen
class NodeIdTaken:
    """Another process holds this node id's lease: this node must stop."""

    message: str


@attrs.frozen
class LeaveCluster:
    """Clean stop: remove this node's lease and registration. Reply: ``LeftCluster``."""


@attrs.frozen
class LeftCluster:
    """The node's lease and registration are gone."""
