"""Job events built from what the WorkersManager sees (only while someone subscribed)."""

from __future__ import annotations

import json
import time

from verk_actors.actors.messages import Event, JobFailed, JobFinished, JobsDone, JobStarted


def started_events(queue: str, jobs: list[tuple[int, bytes]]) -> list[Event]:
    """A JobStarted per job handed to a worker (``at``: now)."""
    now = time.time()
    events: list[Event] = []
    for _, text in jobs:
        jid: str | None = None
        class_name: str | None = None
        try:
            data = json.loads(text)
            if isinstance(data, dict):
                jid = data.get("jid") if isinstance(data.get("jid"), str) else None
                class_name = data.get("class") if isinstance(data.get("class"), str) else None
        except ValueError:
            pass
        events.append(JobStarted(queue, jid, class_name, now))
    return events


def outcome_events(queue: str, done: JobsDone) -> list[Event]:
    """JobFinished and JobFailed events from a worker's report with details."""
    failures = {outcome.ref: outcome for outcome in done.failures}
    events: list[Event] = []
    for ref, jid, class_name, started_at, duration in done.details:
        failed = failures.get(ref)
        if failed is None:
            events.append(JobFinished(queue, jid, class_name, started_at, duration))
        else:
            events.append(
                JobFailed(
                    queue,
                    jid,
                    class_name,
                    started_at,
                    duration,
                    failed.error_class or "",
                    failed.error_message or "",
                    failed.failure.fate.value if failed.failure else "",
                )
            )
    return events
