"""One queue's subtree: the WorkersManager and the QueueManager, the WorkersManager and
its workers, the queue's supervisor and both."""

from __future__ import annotations

from typing import Any

import attrs

from verk_actors.actors.messages.base import BatchMessage, Message
from verk_actors.jobs.retry import FailureRecord
from verk_actors.jobs.running import JobOutcome

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
class RunLanes(BatchMessage):
    """``RunJobs`` for several lanes of one worker process, by lane index."""

    batches: tuple[tuple[int, RunJobs], ...]


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
    n reports are in. ``timings``, only when the node serves metrics or records their
    history: ``(class, seconds)`` of each job that succeeded. ``retire``, on the
    ``finished`` report only: why the worker should be recycled (``_recycle``), "" if
    it should not.
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
    timings: tuple[tuple[str | None, float], ...] = ()
    retire: str = ""


@attrs.frozen(repr=False)
class LanesDone(BatchMessage):
    """``JobsDone`` of several lanes of one worker process, by lane index."""

    reports: tuple[tuple[int, JobsDone], ...]


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
class FlushLanes(Message):
    """Time for a worker process's lanes to send what they reported since the last
    ``LanesDone`` (a few milliseconds of reports go in one message)."""


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
