"""How many jobs to ask for and how to share them among free workers (pure arithmetic).

With a backlog, one message carries a batch of jobs to a worker and one message
carries its results back, so actor messages cost little per job. Batches grow only
for fast jobs: the size aims at ``TARGET_BATCH_SECONDS`` of work, so slow jobs are
handed out one at a time and never wait behind each other. A message costs the
WorkersManager far more than a quick job, so a batch aims at a tenth of a second of
work (a lane of a threads or async queue: half a second, and its queue may hold more
jobs in hand than ``MAX_IN_PROGRESS``; see ``lane_workers_manager``). How many workers
run at once is the CPU gauge's word (``_cpu_gauge``).
"""

from __future__ import annotations

import math

import attrs

TARGET_BATCH_SECONDS = 0.1
MAX_REQUEST = 2000
MAX_IN_PROGRESS = 2000
"""Most jobs of one queue a node holds at once on a backlog: in its workers' batches
(running or waiting their turn), ready for the next free worker, and asked for. It
leaves the rest of a backlog to other nodes."""
EWMA_WEIGHT = 0.2
MAX_BATCH_BYTES = 1024 * 1024
"""About the most bytes of job text in one batch, and so in a worker's share of a take:
big jobs in batches sized by count alone made messages of tens of megabytes that
drained several times slower, and much smaller batches cost more messages."""


@attrs.define
class BatchSizer:
    """Jobs per worker message, from moving averages of job durations and text sizes."""

    max_batch: int
    target: float = TARGET_BATCH_SECONDS
    """Seconds of work a batch aims at."""
    average: float | None = None
    text_bytes: float | None = None
    """Moving average of the length of a job's text."""

    def observe_texts(self, count: int, total_bytes: int) -> None:
        """Feed ``count`` job texts of ``total_bytes`` in all."""
        if count > 0:
            self.text_bytes = _moved(self.text_bytes, total_bytes / count, count)

    def observe(self, duration: float) -> None:
        """Feed the duration (seconds) of one finished job."""
        self.average = _moved(self.average, duration, 1)

    def observe_many(self, count: int, seconds: float) -> None:
        """Feed ``count`` finished jobs that took ``seconds`` in all."""
        if count > 0:
            self.average = _moved(self.average, seconds / count, count)

    @property
    def size(self) -> int:
        """Jobs to hand one worker at once."""
        if self.average is None:
            return 1
        most = self.max_batch
        if self.text_bytes:
            most = max(1, min(most, int(MAX_BATCH_BYTES / self.text_bytes)))
        if self.average <= 0:
            return most
        return max(1, min(most, int(self.target / self.average)))


def _moved(average: float | None, mean: float, count: int) -> float:
    """A moving average after ``count`` samples whose mean is ``mean`` (each weighs
    ``EWMA_WEIGHT``, up to 50 of them)."""
    if average is None:
        return mean
    weight = 1.0 - (1.0 - EWMA_WEIGHT) ** min(count, 50)
    return average + weight * (mean - average)


def jobs_wanted(
    free_workers: int,
    batch_size: int,
    held: int,
    *,
    prefetch: int = 0,
    in_workers: int = 0,
    most: int = MAX_IN_PROGRESS,
) -> int:
    """Jobs to ask the QueueManager for: a batch per free worker and ``prefetch`` more,
    less the ``held`` ones; at most ``MAX_REQUEST``, and no more than keeps the jobs
    in hand (``in_workers``, not yet done in the workers' batches, and ``held``)
    within ``most`` (``MAX_IN_PROGRESS`` unless the queue's workers say otherwise)."""
    wanted = free_workers * batch_size + prefetch - held
    room = most - in_workers - max(held, 0)
    return max(0, min(MAX_REQUEST, wanted, room))


def bounded_batch(size: int, active: int, most: int = MAX_IN_PROGRESS) -> int:
    """The batch size that lets ``active`` busy workers each hold a batch, with one
    more batch ready, within ``most`` jobs in hand (many busy workers: smaller batches)."""
    return max(1, min(size, most // (max(active, 1) + 1)))


def share(held: int, free_workers: int, batch_size: int) -> int:
    """How many of ``held`` jobs the next free worker gets (spread over all free ones)."""
    if held <= 0 or free_workers <= 0:
        return 0
    return max(1, min(batch_size, math.ceil(held / free_workers)))
