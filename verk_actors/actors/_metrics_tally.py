"""The node's metrics as plain data: counted in each WorkersManager (``JobTally``) and
gathered in the MetricsActor (``NodeTally``). No Prometheus here: the managers that
count never import it.

Outcomes count as Redis's Sidekiq counters do: ``processed`` every job run (success
or not, ``stat:processed``), ``failed`` every failed try (``stat:failed``), each of
those either ``retried`` or ``dead``. Classes are labelled by name only when a worker
of this node registered them; anything else is ``other`` (the label's values stay
few whatever the jobs say).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from typing import Any

from verk_actors.actors.messages import ActorRestarted, JobsDone, QueueFigures
from verk_actors.actors.queue._settle import Settlement
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.jobs.retry import FailureRecord, Fate
from verk_actors.store import metrics_history

BUCKETS = metrics_history.BUCKETS
"""Upper bounds (seconds) of the job duration histogram (the history's too); one more
bucket takes the rest."""

OTHER = "other"
"""The class label of jobs whose class no worker of this node registered."""

PROCESSED, FAILED, RETRIED, DEAD = "processed", "failed", "retried", "dead"

WORKER_KIND = "WorkerActor"


def class_of(text: str | bytes) -> str | None:
    """The ``class`` field of a job text, or None (only for the rare dead-worker path)."""
    try:
        value = json.loads(text).get("class")
    except (ValueError, AttributeError, TypeError):
        return None
    return value if isinstance(value, str) else None


class JobTally:
    """One WorkersManager's running totals, as ``QueueFigures`` carries them."""

    def __init__(self, queue: str, imports: Iterable[str] = ()) -> None:
        self.queue = queue
        self.known = frozenset(WorkerRegistry.from_modules(imports, allow_async=True).names())
        self.jobs: dict[tuple[str, str], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.killed: dict[str, int] = {}
        self.replaced = 0
        self.recycled = 0
        self.changed = True
        self.shown = (-1, -1)

    def label(self, class_name: str | None) -> str:
        return class_name if class_name in self.known else OTHER

    def _count(self, label: str, outcome: str) -> None:
        key = (label, outcome)
        self.jobs[key] = self.jobs.get(key, 0) + 1
        self.changed = True

    def _observe(self, label: str, seconds: float) -> None:
        counts = self.buckets.get(label)
        if counts is None:
            counts = self.buckets[label] = [0] * (len(BUCKETS) + 1)
            self.sums[label] = 0.0
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[label] += seconds

    def done(self, done: JobsDone) -> None:
        """A worker's report: its jobs that succeeded and failed."""
        self.succeeded(done.timings)
        for outcome in done.failures:
            if outcome.failure is not None and outcome.failure.fate is not Fate.DEFER:
                self.failed(outcome.class_name, outcome.failure, outcome.duration)

    def succeeded(self, timings: Iterable[tuple[str | None, float]]) -> None:
        """Jobs that ran and succeeded, with their run times."""
        for class_name, seconds in timings:
            label = self.label(class_name)
            self._count(label, PROCESSED)
            self._observe(label, seconds)

    def failed(self, class_name: str | None, record: FailureRecord, seconds: float | None) -> None:
        """A failed try (``seconds`` None: unknown, its worker died in it)."""
        label = self.label(class_name)
        self._count(label, PROCESSED)
        self._count(label, FAILED)
        self._count(label, DEAD if record.fate is Fate.DEAD else RETRIED)
        if seconds is not None:
            self._observe(label, seconds)

    def settled(self, texts: dict[int, bytes], settled: Settlement, killed: str) -> None:
        """A busy worker ended (``killed``: why, see ``_settle.kill_kind``), its batch
        settled from its board: the jobs' run times are not known."""
        self.worker_killed(killed)
        for ref in settled.acked:
            self._count(self.label(class_of(texts.get(ref, b""))), PROCESSED)
        for ref, record in settled.failed:
            self.failed(class_of(texts.get(ref, b"")), record, None)

    def worker_killed(self, reason: str) -> None:
        self.killed[reason] = self.killed.get(reason, 0) + 1
        self.changed = True

    def worker_replaced(self, count: int, recycled: int = 0) -> None:
        """``count`` workers started again after they died, ``recycled`` after a recycle."""
        self.replaced += count
        self.recycled += recycled
        self.changed = bool(count or recycled) or self.changed

    def figures(self, busy: int, workers: int) -> QueueFigures | None:
        """The running totals, if anything changed since they were last taken."""
        if not self.changed and (busy, workers) == self.shown:
            return None
        self.changed, self.shown = False, (busy, workers)
        return QueueFigures(
            self.queue,
            tuple((c, o, n) for (c, o), n in sorted(self.jobs.items())),
            tuple(
                (c, tuple(counts), self.sums[c], sum(counts))
                for c, counts in sorted(self.buckets.items())
            ),
            tuple(sorted(self.killed.items())),
            busy,
            workers,
            self.replaced,
            self.recycled,
        )


class _Sums:
    """Totals of WorkersManagers that have been replaced (their counts go on)."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], int] = {}
        self.durations: dict[str, tuple[list[int], float, int]] = {}
        self.killed: dict[str, int] = {}
        self.replaced = 0
        self.recycled = 0

    def add(self, figures: QueueFigures) -> None:
        for class_name, outcome, count in figures.jobs:
            key = (class_name, outcome)
            self.jobs[key] = self.jobs.get(key, 0) + count
        for class_name, counts, total, count in figures.durations:
            have = self.durations.get(class_name)
            if have is None:
                self.durations[class_name] = (list(counts), total, count)
            else:
                merged = [a + b for a, b in zip(have[0], counts, strict=True)]
                self.durations[class_name] = (merged, have[1] + total, have[2] + count)
        for reason, count in figures.killed:
            self.killed[reason] = self.killed.get(reason, 0) + count
        self.replaced += figures.replaced
        self.recycled += figures.recycled


class NodeTally:
    """What the MetricsActor knows: each queue's latest totals, restarts, Redis errors."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[str, QueueFigures]] = {}
        """Per queue: who sent the latest totals (a WorkersManager), and them."""
        self.carried: dict[str, _Sums] = {}
        self.restarts: dict[tuple[str, str], int] = {}
        self.redis_errors: dict[str, int] = {}
        """Failed Redis calls by kind of actor."""
        self.redis_reconnects: dict[str, int] = {}
        """Outages come back from, by kind of actor."""
        self.queues: tuple[str, ...] = ()

    def report(self, sender: Any, figures: QueueFigures) -> None:
        """A WorkersManager's totals; a new sender for a queue means the old one is
        gone: its last totals are kept so the counts never go down."""
        key = str(sender)
        before = self.latest.get(figures.queue)
        if before is not None and before[0] != key:
            self.carried.setdefault(figures.queue, _Sums()).add(before[1])
        self.latest[figures.queue] = (key, figures)

    def restarted(self, message: ActorRestarted) -> None:
        key = (message.kind, message.queue)
        self.restarts[key] = self.restarts.get(key, 0) + 1

    def totals(self, queue: str) -> _Sums:
        """Everything counted for ``queue`` so far (replaced managers included)."""
        sums = _Sums()
        carried = self.carried.get(queue)
        if carried is not None:
            sums.add(_as_figures(queue, carried))
        latest = self.latest.get(queue)
        if latest is not None:
            sums.add(latest[1])
        return sums

    def counted_queues(self) -> list[str]:
        return sorted(set(self.latest) | set(self.carried))

    def workers(self, queue: str) -> tuple[int, int] | None:
        """Busy and total workers of a queue this node runs now (None: it does not)."""
        latest = self.latest.get(queue)
        if latest is None or queue not in self.queues:
            return None
        return latest[1].busy, latest[1].workers


def _as_figures(queue: str, sums: _Sums) -> QueueFigures:
    return QueueFigures(
        queue,
        tuple((c, o, n) for (c, o), n in sums.jobs.items()),
        tuple((c, tuple(v[0]), v[1], v[2]) for c, v in sums.durations.items()),
        tuple(sums.killed.items()),
        0,
        0,
        sums.replaced,
        sums.recycled,
    )
