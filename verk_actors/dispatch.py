"""How many jobs to ask for and how to share them among free workers (pure arithmetic).

With a backlog, one message carries a batch of jobs to a worker and one message
carries its results back, so actor messages cost little per job. Batches grow only
for fast jobs: the size aims at ``TARGET_BATCH_SECONDS`` of work, so slow jobs are
handed out one at a time and never wait behind each other. Each message costs the
WorkersManager about a millisecond in Thespian's transport, so a batch aims at a
tenth of a second of work.
"""

from __future__ import annotations

import math

import attrs

TARGET_BATCH_SECONDS = 0.1
MAX_REQUEST = 2000
EWMA_WEIGHT = 0.2


@attrs.define
class BatchSizer:
    """Jobs per worker message, from a moving average of job durations."""

    max_batch: int
    average: float | None = None

    def observe(self, duration: float) -> None:
        """Feed the duration (seconds) of one finished job."""
        if self.average is None:
            self.average = duration
        else:
            self.average += EWMA_WEIGHT * (duration - self.average)

    def observe_many(self, count: int, seconds: float) -> None:
        """Feed ``count`` finished jobs that took ``seconds`` in all."""
        if count <= 0:
            return
        mean = seconds / count
        if self.average is None:
            self.average = mean
        else:
            weight = 1.0 - (1.0 - EWMA_WEIGHT) ** min(count, 50)
            self.average += weight * (mean - self.average)

    @property
    def size(self) -> int:
        """Jobs to hand one worker at once."""
        if self.average is None:
            return 1
        if self.average <= 0:
            return self.max_batch
        return max(1, min(self.max_batch, int(TARGET_BATCH_SECONDS / self.average)))


def jobs_wanted(free_workers: int, batch_size: int, held: int) -> int:
    """Jobs to ask the QueueManager for, given free workers and jobs already held
    (``held`` may be negative: the prefetch still missing)."""
    return max(0, min(MAX_REQUEST, free_workers * batch_size - held))


def share(held: int, free_workers: int, batch_size: int) -> int:
    """How many of ``held`` jobs the next free worker gets (spread over all free ones)."""
    if held <= 0 or free_workers <= 0:
        return 0
    return max(1, min(batch_size, math.ceil(held / free_workers)))
