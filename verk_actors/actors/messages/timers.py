"""Timer payloads (``VerkActor.after``): each actor's periodic checks and time limits."""

from __future__ import annotations

import attrs

from verk_actors.actors.messages.base import Message

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
class PollCron(Message):
    """Time to enqueue the cron ticks that are due."""


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


@attrs.frozen
class ReportFigures(Message):
    """Time for a WorkersManager to send its running totals to the MetricsActor."""
