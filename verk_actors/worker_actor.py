"""``WorkerActor``: runs jobs, one at a time, in its own process.

It registers the workers of the node's ``imports`` when initialised, then runs each
``RunJobs`` batch in order. Before and after each job it writes its progress board;
it reports outcomes in few messages: at the end of a batch, at once after a failure,
and at least every ``REPORT_EVERY`` seconds during a long batch.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from verk_actors.base import VerkActor
from verk_actors.board import Board
from verk_actors.messages import ChildFailed, ChildReady, InitWorker, JobsDone, RunJobs
from verk_actors.registry import WorkerRegistry
from verk_actors.running import JobOutcome, PreparedJob, run_prepared

log = logging.getLogger(__name__)

REPORT_EVERY = 0.02


class WorkerActor(VerkActor):
    """One worker of a queue's pool."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitWorker | None = None
        self.registry = WorkerRegistry()
        self.board: Board | None = None

    def receiveMsg_InitWorker(self, message: InitWorker, sender: Any) -> None:
        self.init = message
        try:
            self.registry = WorkerRegistry.from_modules(message.settings.imports)
            self.board = Board(Path(message.board_path))
        except Exception as exc:
            log.error("worker %s/%d cannot start: %s", message.queue, message.index, exc)
            self.send(sender, ChildFailed(type(exc).__name__, str(exc)))
            return
        self.send(sender, ChildReady(os.getpid()))

    def receiveMsg_RunJobs(self, message: RunJobs, sender: Any) -> None:
        init, board = self.init, self.board
        if init is None or board is None:
            log.error("worker got jobs before it was initialised; they go back unrun")
            self.send(sender, JobsDone(message.batch, (), finished=True))
            return
        board.begin_batch(message.batch, len(message.jobs))
        outcomes: list[JobOutcome] = []
        last_report = time.monotonic()
        for index, (ref, text) in enumerate(message.jobs):
            prepared = PreparedJob(text, self.registry, init.settings, init.queue)
            started = time.monotonic()
            board.job_started(message.batch, index, prepared.deadline(started))
            outcome = run_prepared(prepared, ref, init.settings)
            board.job_ended(message.batch, index, outcome.ok)
            outcomes.append(outcome)
            now = time.monotonic()
            last = index == len(message.jobs) - 1
            if not last and (not outcome.ok or now - last_report >= REPORT_EVERY):
                self.send(sender, JobsDone(message.batch, tuple(outcomes), finished=False))
                outcomes = []
                last_report = now
        self.send(sender, JobsDone(message.batch, tuple(outcomes), finished=True))

    def stopping(self) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None
