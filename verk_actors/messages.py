"""Every message the actors exchange, as frozen attrs classes, grouped by receiver.

Commands are imperative (``DequeueJobs``), events and replies past tense
(``JobsDequeued``). Fields hold plain data and actor addresses only: errors travel
as class name and text, never as exception objects.

The messages an embedding application sends to ``VerkRoot`` are the first group;
each gets one reply, or ``RequestFailed`` saying what was wrong.
"""

from __future__ import annotations

from typing import Any, TypeVar, dataclass_transform

import attrs

from verk_actors.retry import FailureRecord
from verk_actors.running import JobOutcome
from verk_actors.settings import QueueSpec, Settings

C = TypeVar("C", bound=type)


def _same(self: object, memo: dict[int, Any]) -> object:
    return self


@dataclass_transform(frozen_default=True, field_specifiers=(attrs.field,))
def message(cls: C) -> C:
    """A frozen attrs message class that Thespian's deep copy does not copy.

    Thespian deep-copies every message before handing it to the receiving actor; for
    a batch of jobs that copy cost more than running them. Messages are immutable, so
    the copy is the message itself.
    """
    frozen: C = attrs.frozen(cls)
    frozen.__deepcopy__ = _same  # type: ignore[attr-defined]
    return frozen


def _short_repr(self: Any) -> str:
    fields = []
    for field in attrs.fields(type(self)):
        value = getattr(self, field.name)
        shown = f"<{len(value)}>" if isinstance(value, tuple) else repr(value)
        fields.append(f"{field.name}={shown}")
    return f"{type(self).__name__}({', '.join(fields)})"


@dataclass_transform(frozen_default=True, field_specifiers=(attrs.field,))
def batch_message(cls: C) -> C:
    """A ``message`` carrying many jobs: its repr gives counts, not every job.

    Thespian formats messages into its own log lines; a full repr of a batch of job
    texts cost as much as the rest of the QueueManager's work.
    """
    frozen = message(cls)
    setattr(frozen, "__repr__", _short_repr)  # noqa: B010 - a method set on the class
    return frozen


# --- To VerkRoot, from applications and other actors -------------------------------


@message
class ConfigureVerk:
    """Start the node: queues, Redis, node id... Reply: ``VerkStarted``.

    ``launcher_pid``: the node stops when this process exits (``verk-actors start``
    passes its own pid so that a killed launcher never leaves a node behind).
    """

    settings: Settings
    launcher_pid: int | None = None


@message
class Enqueue:
    """Enqueue a job (``at``: unix time to run it, None = now). Reply: ``Enqueued``."""

    worker: str
    args: tuple[Any, ...] = ()
    queue: str = "default"
    at: float | None = None
    retry: bool | int | None = True
    jid: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()


@message
class AddQueue:
    """Start working on a queue. Reply: ``QueueAdded``."""

    name: str
    concurrency: int


@message
class RemoveQueue:
    """Stop working on a queue; its unfinished jobs go back to it. Reply: ``QueueRemoved``."""

    name: str


@message
class GetStatus:
    """Ask for the node's state. Reply: ``VerkStatus``."""


@message
class StopVerk:
    """Stop the node gracefully. Reply: ``VerkStopped``."""


# --- Replies from VerkRoot ------------------------------------------------------------


@message
class VerkStarted:
    """The node runs."""

    node_id: str
    queues: tuple[str, ...]


@message
class Enqueued:
    """The job is in Redis."""

    jid: str


@message
class QueueAdded:
    """The queue runs on this node."""

    name: str


@message
class QueueRemoved:
    """The queue stopped on this node; ``requeued`` unfinished jobs went back to it."""

    name: str
    requeued: int


@message
class QueueStatus:
    """One queue of a node."""

    name: str
    concurrency: int
    restarts: int


@message
class VerkStatus:
    """A node's state."""

    node_id: str
    running: bool
    queues: tuple[QueueStatus, ...]


@message
class VerkStopped:
    """The node stopped its queues; every unfinished job is back in Redis."""

    requeued: int


@message
class RequestFailed:
    """A request was refused; ``message`` says why and what to do."""

    request: str
    error_class: str
    message: str


# --- Inside the tree: initialisation (re-sent on every restart) ----------------------


@message
class InitQueueSupervisor:
    """Configure a queue supervisor."""

    settings: Settings
    queue: QueueSpec
    node_id: str


@message
class InitQueueManager:
    """Configure a QueueManager."""

    settings: Settings
    queue: str
    node_id: str


@message
class InitWorkersManager:
    """Configure a WorkersManager."""

    settings: Settings
    queue: QueueSpec
    node_id: str
    queue_manager: Any


@message
class InitWorker:
    """Configure a worker actor."""

    settings: Settings
    queue: str
    index: int
    board_path: str


@message
class InitScheduleManager:
    """Configure the ScheduleManager."""

    settings: Settings
    node_id: str


@message
class ChildReady:
    """A child finished its initialisation (sent to its parent)."""

    pid: int


@message
class ChildFailed:
    """A child could not initialise; ``message`` says why. It stops itself."""

    error_class: str
    message: str


# --- WorkersManager <-> QueueManager ----------------------------------------------------


@message
class AttachWorkersManager:
    """A (new) WorkersManager: the QueueManager gives back jobs handed to the old one."""


@message
class DequeueJobs:
    """Take up to ``max_jobs`` jobs; wait for one if the queue is empty. Reply: JobsDequeued."""

    max_jobs: int


@batch_message
class JobsDequeued:
    """Jobs taken into in-progress, each with the QueueManager's reference number."""

    jobs: tuple[tuple[int, bytes], ...]


@batch_message
class RecordOutcomes:
    """Record what happened to jobs, then (``dequeue`` > 0) take more.

    ``acked``: succeeded; ``failed``: with their retry/dead record; ``requeued``: never
    started, back to the queue.
    """

    acked: tuple[int, ...] = ()
    failed: tuple[tuple[int, FailureRecord], ...] = ()
    requeued: tuple[int, ...] = ()
    dequeue: int = 0


@message
class QueueState:
    """The queue was paused or resumed cluster-wide (QueueManager to WorkersManager)."""

    paused: bool


@message
class StopQueueManager:
    """Write what is pending, give every job still in progress back.

    Sent by the WorkersManager after its last outcomes (so none arrives after it);
    the QueueManager replies ``QueueManagerStopped`` to ``reply_to``.
    """

    reply_to: Any


@message
class QueueManagerStopped:
    """The QueueManager has nothing in flight; ``requeued`` jobs went back to the queue."""

    requeued: int


# --- WorkersManager <-> workers ------------------------------------------------------------


@batch_message
class RunJobs:
    """Run these jobs in order; report with ``JobsDone`` (with details if ``detail``)."""

    batch: int
    jobs: tuple[tuple[int, bytes], ...]
    detail: bool = False


@batch_message
class JobsDone:
    """How jobs of a batch ended; ``finished``: the batch is over and the worker is free.

    ``succeeded`` lists the references of jobs that succeeded and ``seconds`` their
    total run time (plain numbers, cheap to pickle); ``failures`` has one outcome
    per failed job; ``details``, only when the batch asked for it, has
    ``(ref, jid, class, started_at, duration)`` for every job, for job events.
    """

    batch: int
    succeeded: tuple[int, ...]
    seconds: float
    failures: tuple[JobOutcome, ...]
    finished: bool
    details: tuple[tuple[int, str | None, str | None, float, float], ...] = ()


# --- Queue supervisor <-> WorkersManager, VerkRoot <-> queue supervisor ----------------------


@message
class DrainQueue:
    """Stop taking jobs; let running ones finish for ``timeout`` s, then kill them.

    When no job runs, the WorkersManager sends its last outcomes and then
    ``StopQueueManager`` to the QueueManager, which replies to the drain's sender.
    """

    timeout: float


@message
class StopQueue:
    """Drain the queue and give its unfinished jobs back. Reply: ``QueueStopped``."""

    timeout: float


@message
class QueueStopped:
    """The queue stopped cleanly."""

    queue: str
    requeued: int


# --- Timers (wakeupAfter payloads) -----------------------------------------------------------


@message
class RetryRedis:
    """Time to try Redis again."""


@message
class PollBlocking:
    """Time to (re)issue the blocking wait for a job."""


@message
class FlushOutcomes:
    """Time to send the outcomes gathered meanwhile."""


@message
class ReplaceWorkers:
    """Time to start workers in the place of those that died."""


@message
class CheckPaused:
    """Time to check whether the queue was paused meanwhile."""


@message
class CheckDeadlines:
    """Time to look for jobs past their time limit."""


@message
class PollSchedule:
    """Time to move due scheduled and retry jobs."""


@message
class DrainTimeout:
    """The drain's time is up."""

    token: int


@message
class StopTimeout:
    """Children asked to stop have had their time."""

    token: int


@message
class CheckLauncher:
    """Time to check that the launcher process is still alive."""


# --- NodeManager ------------------------------------------------------------------------------


@message
class InitNodeManager:
    """Configure the NodeManager."""

    settings: Settings
    node_id: str
    epoch: str
    queues: tuple[QueueSpec, ...]
    admin_port: int | None
    root_pid: int


@message
class NodeQueues:
    """The node's queues changed (sent by VerkRoot to the NodeManager)."""

    queues: tuple[QueueSpec, ...]


@message
class Heartbeat:
    """Time to renew the lease and describe the node."""


@message
class ScanNodes:
    """Time to look for dead nodes."""


@message
class NodeIdTaken:
    """Another process holds this node id's lease: this node must stop."""

    message: str


@message
class LeaveCluster:
    """Clean stop: remove this node's lease and registration. Reply: ``LeftCluster``."""


@message
class LeftCluster:
    """The node's lease and registration are gone."""
