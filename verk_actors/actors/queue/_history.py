"""The job metrics history of one queue: the WorkersManager adds up, per minute and per
worker class, the jobs its workers report (executions, failures, run time, histogram),
and writes the sums to Redis every ``FLUSH_EVERY`` seconds in one transaction
(``store/metrics_history.py``): never a Redis command per job.

Classes are named as the jobs name them when a worker of this node registered that
name; anything else counts as ``other``, so the history's size does not depend on
what the jobs say. Redis being away costs the history only: what could not be written
waits (at most ``MAX_PENDING`` minutes of it) and is tried again ``RETRY_AFTER`` later.
"""

from __future__ import annotations

import bisect
import logging
import time

from verk_actors.actors._metrics_tally import OTHER, JobTally, class_of
from verk_actors.actors.messages import JobsDone, QueueFigures
from verk_actors.actors.queue._settle import Settlement
from verk_actors.config.redis_url import redact_url
from verk_actors.config.settings import Settings
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.jobs.retry import Fate
from verk_actors.store.metrics_history import (
    BUCKETS,
    ERRORS,
    FLUSH_EVERY,
    SLOTS,
    HistoryWriter,
    minute_of,
    writer_name,
)

log = logging.getLogger(__name__)

REPORT_FIGURES = 1.0
"""Seconds between two reports of running totals to the MetricsActor (and two looks at
whether the history is due a write)."""

RETRY_AFTER = 30.0
"""Seconds to wait after a failed write before the next one."""

MAX_PENDING = 120
"""Minutes of figures kept while Redis is away; older ones are dropped."""


class History:
    """One queue's job figures not yet written to Redis."""

    def __init__(self, settings: Settings, node_id: str, queue: str) -> None:
        self.queue = queue
        self.url = settings.redis_url
        self.name = writer_name(node_id, queue)
        # Names only: every class, async ones too (the node checked them at start).
        self.known = frozenset(
            WorkerRegistry.from_modules(settings.imports, allow_async=True).names()
        )
        self.pending: dict[str, dict[str, list[float]]] = {}
        """minute -> class -> executions, failures, microseconds, bucket counts."""
        self.minute = -1
        """The minute (unix time // 60) whose rows ``rows`` are."""
        self.rows: dict[str, list[float]] = {}
        self.writer: HistoryWriter | None = None
        self.next_write = time.monotonic() + FLUSH_EVERY
        self.failing = False

    def _rows(self) -> dict[str, list[float]]:
        """The rows of the current minute (its name is made once a minute)."""
        minute = int(time.time()) // 60
        if minute != self.minute:
            self.minute = minute
            self.rows = self.pending.setdefault(minute_of(minute * 60), {})
        return self.rows

    def _row(self, rows: dict[str, list[float]], class_name: str | None) -> list[float]:
        label = class_name if class_name in self.known else OTHER
        assert label is not None
        row = rows.get(label)
        if row is None:
            row = rows[label] = [0.0] * SLOTS
        return row

    def done(self, done: JobsDone) -> None:
        """A worker's report: its jobs that succeeded and failed, with their run times."""
        rows = self._rows()
        known = self.known
        for class_name, seconds in done.timings:
            row = rows.get(class_name) if class_name in known else None
            if row is None:
                row = self._row(rows, class_name)
            row[0] += 1
            row[2] += seconds * 1e6
            row[3 + bisect.bisect_left(BUCKETS, seconds)] += 1
        for outcome in done.failures:
            # A job a full limiter put back (DEFER) did not run: not an execution.
            if outcome.failure is not None and outcome.failure.fate is not Fate.DEFER:
                self._failed(rows, outcome.class_name, outcome.duration)

    def _failed(
        self, rows: dict[str, list[float]], class_name: str | None, seconds: float | None
    ) -> None:
        row = self._row(rows, class_name)
        row[0] += 1
        row[1] += 1
        if seconds is not None:
            row[2] += seconds * 1e6
            row[3 + bisect.bisect_left(BUCKETS, seconds)] += 1

    def settled(self, texts: dict[int, bytes], settled: Settlement) -> None:
        """A busy worker died; its batch was settled from its board (run times unknown)."""
        rows = self._rows()
        for ref in settled.acked:
            self._row(rows, class_of(texts.get(ref, b"")))[0] += 1
        for ref, _ in settled.failed:
            self._failed(rows, class_of(texts.get(ref, b"")), None)

    def due(self, now: float) -> bool:
        """Whether figures wait and a write may go out at ``now`` (monotonic)."""
        return bool(self.pending) and now >= self.next_write

    def flush(self, now: float) -> None:
        """Write what waits to Redis (on failure, keep it for the next try)."""
        pending, self.pending, self.minute = self.pending, {}, -1
        try:
            if self.writer is None:
                self.writer = HistoryWriter(self.url, self.name)
            self.writer.write(pending)
        except ERRORS as exc:
            self._failed_write(pending, exc, now)
            return
        self.next_write = now + FLUSH_EVERY
        if self.failing:
            self.failing = False
            log.info("queue %s: job metrics are written to Redis again", self.queue)

    def _failed_write(
        self, pending: dict[str, dict[str, list[float]]], exc: BaseException, now: float
    ) -> None:
        self.next_write = now + RETRY_AFTER
        for minute, rows in pending.items():  # the older figures first, then the newer
            mine = self.pending.setdefault(minute, {})
            for name, row in rows.items():
                have = mine.setdefault(name, [0.0] * SLOTS)
                have[:] = [a + b for a, b in zip(have, row, strict=True)]
        for minute in sorted(self.pending)[:-MAX_PENDING]:
            del self.pending[minute]
        if not self.failing:
            self.failing = True
            log.warning(
                "queue %s: cannot write job metrics to Redis at %s (%s: %s); trying again "
                "every %g s",
                self.queue,
                redact_url(self.url),
                type(exc).__name__,
                exc,
                RETRY_AFTER,
            )

    def close(self) -> None:
        """Write what waits (best effort) and disconnect."""
        if self.pending and not self.failing:
            self.flush(time.monotonic())
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class JobCounts:
    """What a WorkersManager counts of its jobs: running totals for the MetricsActor
    (``tally``, when the node serves metrics) and the history (``history``, unless
    ``metrics_history`` is off)."""

    def __init__(self, tally: JobTally | None, history: History | None) -> None:
        self.tally = tally
        self.history = history

    @classmethod
    def start(cls, settings: Settings, node_id: str, queue: str) -> JobCounts | None:
        """The counts ``settings`` ask for; None if they ask for none."""
        tally = JobTally(queue, settings.imports) if settings.metrics_port is not None else None
        history = History(settings, node_id, queue) if settings.metrics_history else None
        return cls(tally, history) if tally is not None or history is not None else None

    @property
    def changed(self) -> bool:
        return self.tally is not None and self.tally.changed

    @changed.setter
    def changed(self, value: bool) -> None:
        if self.tally is not None:
            self.tally.changed = value

    def done(self, done: JobsDone) -> None:
        if self.tally is not None:
            self.tally.done(done)
        if self.history is not None:
            self.history.done(done)

    def settled(self, texts: dict[int, bytes], settled: Settlement, killed: str) -> None:
        if self.tally is not None:
            self.tally.settled(texts, settled, killed)
        if self.history is not None:
            self.history.settled(texts, settled)

    def worker_replaced(self, count: int, recycled: int = 0) -> None:
        if self.tally is not None:
            self.tally.worker_replaced(count, recycled)

    def figures(self, busy: int, workers: int) -> QueueFigures | None:
        """The MetricsActor's running totals, if it has news; writes the history when due."""
        if self.history is not None:
            now = time.monotonic()
            if self.history.due(now):
                self.history.flush(now)
        return self.tally.figures(busy, workers) if self.tally is not None else None

    def close(self) -> None:
        if self.history is not None:
            self.history.close()
