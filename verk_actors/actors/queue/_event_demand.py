"""Which events of one queue someone wants, and the events the WorkersManager sees.

Queue events (running, pausing, paused) go to the node's EventManager whenever it is
there; job events (a job handed to a worker, finished, failed) only while someone
subscribed to them, since they cost a message per batch.
"""

from __future__ import annotations

import time
from typing import Any

from verk_actors.actors._job_events import outcome_events, started_events
from verk_actors.actors.messages import (
    Event,
    EventsApplied,
    EventsWanted,
    InitWorkersManager,
    JobsDone,
    PublishEvents,
    QueueEvent,
)


class EventDemand:
    """Where this queue's events go, and whether job events are wanted."""

    def __init__(self) -> None:
        self.manager: Any = None
        """The EventManager's address (None: no events)."""
        self.jobs = False
        """Job events are wanted."""
        self.told = False
        """An ``EventsWanted`` came: it is newer than the init's word."""
        self.handed_again: set[int] = set()
        """Jobs taken back and not handed out again yet (their start was announced)."""

    def init(self, message: InitWorkersManager) -> None:
        if not self.told:
            # An EventsWanted the supervisor sent after this init may come first
            # (Thespian does not keep the order of messages): it is the newer word.
            self.manager = message.events
            self.jobs = message.job_events

    def wanted(self, message: EventsWanted) -> EventsApplied | None:
        """The new word; the answer to send to its manager, if it asks for one."""
        self.manager = message.manager
        self.jobs = message.jobs
        self.told = True
        if message.token and message.manager is not None:
            return EventsApplied(message.token)
        return None

    def publish(self, events: list[Event]) -> PublishEvents | None:
        """The message that publishes ``events`` (None: nothing, or nobody to tell)."""
        if self.manager is not None and events:
            return PublishEvents(tuple(events))
        return None

    def queue_state(self, queue: str, state: str) -> PublishEvents | None:
        return self.publish([QueueEvent(queue, state, time.time())])

    def handed(self, queue: str, jobs: list[tuple[int, bytes]]) -> PublishEvents | None:
        """These jobs are handed to a worker (announced once per job, even if it is
        taken back and handed out again)."""
        if self.handed_again:
            again = self.handed_again
            jobs = [job for job in jobs if job[0] not in again]
            again.difference_update(ref for ref, _ in jobs)
        return self.publish(started_events(queue, jobs))

    def taken(self, queue: str, jobs: tuple[tuple[int, bytes], ...]) -> PublishEvents | None:
        """A worker on standby took these jobs itself (they started)."""
        return self.publish(started_events(queue, list(jobs)))

    def taken_back(self, jobs: list[tuple[int, bytes]]) -> None:
        """These jobs were taken back from behind a long job: handing them out again is
        not a new start."""
        if self.jobs:
            self.handed_again.update(ref for ref, _ in jobs)

    def done(self, queue: str, message: JobsDone) -> PublishEvents | None:
        """The jobs a worker's report says finished or failed."""
        if message.details and self.jobs and self.manager is not None:
            return self.publish(outcome_events(queue, message))
        return None
