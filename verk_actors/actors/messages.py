"""Every message the actors exchange, as frozen attrs classes, grouped by receiver.

Commands are imperative (``RecordOutcomes``), events and replies past tense
(``JobsDequeued``). Fields hold plain data and actor addresses only: errors travel
as class name and text, never as exception objects.

The messages an embedding application sends to ``VerkRoot`` are the first group;
each gets one reply, or ``RequestFailed`` saying what was wrong.
"""

from __future__ import annotations

from typing import Any

import attrs

from verk_actors.config.settings import QueueSpec, Settings
from verk_actors.jobs.retry import FailureRecord
from verk_actors.jobs.running import JobOutcome


class Message:
    """Base of every message: Thespian's deep copy returns it as it is.

    Thespian deep-copies every message before handing it to the receiving actor; for
    a batch of jobs that copy cost more than running them. Messages are frozen and
    hold immutable values, so the copy is the message itself.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> Message:
        return self


class BatchMessage(Message):
    """A message carrying many jobs: its repr gives counts, not every job text.

    Thespian formats messages into its own log lines; a full repr of a batch of job
    texts cost as much as the rest of the QueueManager's work.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        shown = []
        for field in attrs.fields(type(self)):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            shown.append(
                f"{field.name}=<{len(value)}>"
                if isinstance(value, tuple)
                else f"{field.name}={value!r}"
            )
        return f"{type(self).__name__}({', '.join(shown)})"


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


@attrs.frozen
class AddQueue(Message):
    """Start working on a queue. Reply: ``QueueAdded``."""

    name: str
    concurrency: int


@attrs.frozen
class RemoveQueue(Message):
    """Stop working on a queue; its unfinished jobs go back to it. Reply: ``QueueRemoved``."""

    name: str


@attrs.frozen
class GetStatus(Message):
    """Ask for the node's state. Reply: ``VerkStatus``."""


@attrs.frozen
class StopVerk(Message):
    """Stop the node gracefully. Reply: ``VerkStopped``."""


# --- Replies from VerkRoot ------------------------------------------------------------


@attrs.frozen
class VerkStarted(Message):
    """The node runs."""

    node_id: str
    queues: tuple[str, ...]


@attrs.frozen
class Enqueued(Message):
    """The job is in Redis."""

    jid: str


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


# --- Inside the tree: initialisation (re-sent on every restart) ----------------------


@attrs.frozen
class InitQueueSupervisor(Message):
    """Configure a queue supervisor."""

    settings: Settings
    queue: QueueSpec
    node_id: str
    events: Any = None
    job_events: bool = False


@attrs.frozen
class InitQueueManager(Message):
    """Configure a QueueManager."""

    settings: Settings
    queue: str
    node_id: str


@attrs.frozen
class InitWorkersManager(Message):
    """Configure a WorkersManager."""

    settings: Settings
    queue: QueueSpec
    node_id: str
    queue_manager: Any
    events: Any = None
    job_events: bool = False


@attrs.frozen
class InitWorker(Message):
    """Configure a worker actor."""

    settings: Settings
    queue: str
    index: int
    board_path: str
    node_id: str = ""


@attrs.frozen
class InitScheduleManager(Message):
    """Configure the ScheduleManager."""

    settings: Settings
    node_id: str


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


# --- WorkersManager <-> QueueManager ----------------------------------------------------


@attrs.frozen
class AttachWorkersManager(Message):
    """A (new) WorkersManager: the QueueManager gives back jobs handed to the old one."""


@attrs.frozen(repr=False)
class JobsDequeued(BatchMessage):
    """Jobs taken into in-progress, each with the QueueManager's reference number.

    Empty: the queue was empty and the request said not to wait. ``request`` is the
    number of the request it answers, ``remaining`` how many jobs that request is
    still owed after these (the WorkersManager asks again only beyond them).
    """

    jobs: tuple[tuple[int, bytes], ...]
    request: int = 0
    remaining: int = 0


@attrs.frozen(repr=False)
class RecordOutcomes(BatchMessage):
    """Record what happened to jobs, then (``dequeue`` > 0) take more.

    ``acked``: succeeded; ``failed``: with their retry/dead record; ``requeued``: never
    started, back to the queue. ``adopted``: jobs a standby worker took itself, with
    the reference the outcomes use. With ``wait`` False an empty queue is answered at
    once with an empty ``JobsDequeued`` (a worker goes on standby) instead of a wait;
    ``standby`` says whether a worker is on standby now. ``reconcile``: a worker on
    standby died, perhaps holding a job it took and never noted; once no worker is on
    standby, jobs in progress that nobody knows go back to the queue.

    ``dequeue`` is how many jobs the WorkersManager wants in all, replacing what it
    asked before; ``request`` numbers the asks (an older one that arrives late is
    ignored: Thespian does not keep the order of messages). ``least``: take none unless
    at least this many wait (a look for a backlog beside a worker on standby).
    """

    acked: tuple[int, ...] = ()
    failed: tuple[tuple[int, FailureRecord], ...] = ()
    requeued: tuple[int, ...] = ()
    dequeue: int = 0
    adopted: tuple[tuple[int, bytes], ...] = ()
    wait: bool = True
    standby: bool = False
    reconcile: bool = False
    request: int = 0
    least: int = 1


@attrs.frozen
class QueueState(Message):
    """The queue was paused or resumed cluster-wide (QueueManager to WorkersManager)."""

    paused: bool


@attrs.frozen
class StopQueueManager(Message):
    """Write what is pending, give every job still in progress back.

    Sent by the WorkersManager after its last outcomes (so none arrives after it);
    the QueueManager replies ``QueueManagerStopped`` to ``reply_to``, counting the
    ``requeued`` jobs the drain already gave back.
    """

    reply_to: Any
    requeued: int = 0


@attrs.frozen
class QueueManagerStopped(Message):
    """The QueueManager has nothing in flight; ``requeued`` jobs went back to the queue."""

    requeued: int


# --- WorkersManager <-> workers ------------------------------------------------------------


@attrs.frozen(repr=False)
class RunJobs(BatchMessage):
    """Run these jobs in order; report with ``JobsDone`` (with details if ``detail``)."""

    batch: int
    jobs: tuple[tuple[int, bytes], ...]
    detail: bool = False


@attrs.frozen(repr=False)
class JobsDone(BatchMessage):
    """How jobs of a batch ended; ``finished``: the batch is over and the worker is free.

    ``succeeded`` lists the references of jobs that succeeded and ``seconds`` their
    total run time (plain numbers, cheap to pickle); ``failures`` has one outcome
    per failed job; ``details``, only when the batch asked for it, has
    ``(ref, jid, class, started_at, duration)`` for every job, for job events.
    ``load`` is ``(wall, cpu, waiting)``: seconds since the worker's previous report,
    of CPU it used and of waiting ready for a CPU in that time. ``taken``: jobs a
    worker on standby took from Redis itself (``Standby``), with their references.
    ``seq`` numbers the reports of a batch from 1: Thespian may deliver two messages
    out of order, so a ``finished`` report numbered n ends the batch only once all
    n reports are in.
    """

    batch: int
    succeeded: tuple[int, ...]
    seconds: float
    failures: tuple[JobOutcome, ...]
    finished: bool
    details: tuple[tuple[int, str | None, str | None, float, float], ...] = ()
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    taken: tuple[tuple[int, bytes], ...] = ()
    seq: int = 1


@attrs.frozen
class Standby(Message):
    """Wait on the queue yourself and run each job the moment it arrives (to a free worker).

    The worker takes jobs with ``BLMOVE`` one at a time, numbers them ``first_ref``,
    ``first_ref - 1``... (negative: never a QueueManager number), and reports them in
    ``JobsDone`` of ``batch`` that list them in ``taken``, always with their details (a
    standby lasts long; whether someone wants job events may change meanwhile): the
    first after a quiet spell at once, the next ones gathered for
    ``STANDBY_REPORT_EVERY``. ``finished`` ends the standby.
    """

    batch: int
    first_ref: int


@attrs.frozen
class CheckStandby(Message):
    """Time for the WorkersManager to look at the board of its worker on standby."""

    batch: int


@attrs.frozen
class EndStandby(Message):
    """Stop waiting on the queue and report the standby over (a job taken meanwhile is
    reported taken and not run)."""

    batch: int


@attrs.frozen
class FlushStandbyReport(Message):
    """Time for a worker on standby to report the jobs it ran since its last report."""

    batch: int


@attrs.frozen
class RetryStandbyWait(Message):
    """Time for a worker on standby whose wait Redis refused (``OOM``...) to wait again."""

    batch: int


# --- Queue supervisor <-> WorkersManager, VerkRoot <-> queue supervisor ----------------------


@attrs.frozen
class DrainQueue(Message):
    """Stop taking jobs; let running ones finish for ``timeout`` s, then kill them.

    When no job runs, the WorkersManager sends its last outcomes and then
    ``StopQueueManager`` to the QueueManager, which replies to the drain's sender.
    """

    timeout: float


@attrs.frozen
class StopQueue(Message):
    """Drain the queue and give its unfinished jobs back. Reply: ``QueueStopped``."""

    timeout: float


@attrs.frozen
class QueueStopped(Message):
    """The queue stopped cleanly."""

    queue: str
    requeued: int


# --- Timers (wakeupAfter payloads) -----------------------------------------------------------


@attrs.frozen
class RetryRedis(Message):
    """Time to try Redis again."""


@attrs.frozen
class PollBlocking(Message):
    """Time to (re)issue the blocking wait for a job."""


@attrs.frozen
class FlushOutcomes(Message):
    """Time to send the outcomes gathered meanwhile."""


@attrs.frozen
class ReplaceWorkers(Message):
    """Time to start workers in the place of those that died."""


@attrs.frozen
class CheckPaused(Message):
    """Time to check whether the queue was paused meanwhile."""


@attrs.frozen
class CheckDeadlines(Message):
    """Time to look for jobs past their time limit."""


@attrs.frozen
class CheckBatches(Message):
    """Time to look for jobs waiting in a batch behind a long job."""


@attrs.frozen
class PollSchedule(Message):
    """Time to move due scheduled and retry jobs."""


@attrs.frozen
class DrainTimeout(Message):
    """The drain's time is up."""

    token: int


@attrs.frozen
class StopTimeout(Message):
    """Children asked to stop have had their time."""

    token: int


@attrs.frozen
class CheckLauncher(Message):
    """Time to check that the launcher process is still alive."""


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
    """Configure the EventManager (it needs nothing but to know it started)."""


@attrs.frozen
class FlushEvents(Message):
    """Time to send the buffered events to subscribers."""


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
