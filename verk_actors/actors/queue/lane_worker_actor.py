"""``LaneWorkerActor``: a worker process that runs many jobs of its queue at once.

For a queue in threads or async mode the WorkersManager starts one per
``per_process`` lanes (concurrency slots). Its lanes run as threads or coroutines
(``_lanes``); this actor only passes messages: ``RunLanes`` in, ``LanesDone`` out,
the second woken by the lanes' outbox (``ThespianWatch`` on its pipe) and sent
``FLUSH_AFTER`` later with every report that came meanwhile (one message, and one
dispatch round of the manager, for many jobs). It never goes on standby: the
QueueManager waits on an idle queue instead.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from pathlib import Path
from typing import Any

from thespian.actors import ThespianWatch, WatchMessage

from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import (
    ChildFailed,
    ChildReady,
    FlushLanes,
    InitLanes,
    JobsDone,
    LanesDone,
    RunLanes,
    Standby,
)
from verk_actors.actors.queue._board import Board
from verk_actors.actors.queue._lanes import LaneRunner
from verk_actors.jobs.hooks import Hooks
from verk_actors.jobs.job_log import attach_job_to_records
from verk_actors.jobs.lifecycle import WorkerProcess, run_start_hooks, run_stop_hooks
from verk_actors.jobs.limits import install_gate
from verk_actors.jobs.middleware import server_chain
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.store.limits import RedisLimitGate

log = logging.getLogger(__name__)

FLUSH_AFTER = 0.02
"""Seconds a lane's report waits for others to go in the same ``LanesDone``. Each
message costs both processes far more CPU than a job that waits: at 0.003 s a
process of 100 lanes spent about 1.5 times the CPU per job it spends at 0.02 s.
Sending the first report after a quiet spell at once cost more still (lanes that
began together end together: one message for the first, one for the rest)."""


class LaneWorkerActor(VerkActor):
    """One worker process of a threads or async queue, with its lanes."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        if multiprocessing.parent_process() is not None:  # a process of its own
            gc.freeze()  # as WorkerActor: what the manager held stays shared
        super().__init__(capabilities)
        attach_job_to_records()
        self.runner: LaneRunner | None = None
        self.limits: RedisLimitGate | None = None
        self.manager: Any = None
        self.flush_armed = False
        self.process: WorkerProcess | None = None
        """Set once its start hooks ran: its stop hooks run when it stops."""

    def receiveMsg_InitLanes(self, message: InitLanes, sender: Any) -> None:
        if self.runner is not None:
            return
        settings = message.settings
        try:
            registry = WorkerRegistry.from_modules(settings.imports, allow_async=True)
            hooks = Hooks(settings.error_handlers, settings.death_handlers)
            boards = {index: Board(Path(path)) for index, path in message.lanes}
            for board in boards.values():
                board.allow_take_back()
            # Limiters are taken through it; it connects when a job first takes one.
            self.limits = RedisLimitGate(settings.redis_url, message.node_id)
            install_gate(self.limits)
            self.runner = LaneRunner(
                message.mode,
                boards=boards,
                registry=registry,
                hooks=hooks,
                settings=settings,
                queue_name=message.queue,
                middleware=server_chain(settings.server_middleware),
            )
            process = WorkerProcess(message.queue, message.mode, os.getpid())
            run_start_hooks(process, self.runner.loop)
            self.process = process
        except Exception as exc:
            log.error("worker of queue %s cannot start: %s", message.queue, exc)
            self.send(sender, ChildFailed(type(exc).__name__, str(exc)))
            return
        self.send(sender, ChildReady(os.getpid(), registry.retry_options()))

    def receiveMsg_RunLanes(self, message: RunLanes, sender: Any) -> None:
        self.manager = sender
        unrun = (
            list(message.batches) if self.runner is None else self.runner.submit(message.batches)
        )
        if unrun:
            log.error("worker got jobs for lanes it does not run; they go back unrun")
            reports = tuple(
                (lane, JobsDone(run.batch, (), 0.0, (), finished=True)) for lane, run in unrun
            )
            self.send(sender, LanesDone(reports))

    def receiveMsg_WatchMessage(self, message: WatchMessage, sender: Any) -> None:
        if self.runner is None or self.runner.outbox.fd not in message.ready:
            return
        self.runner.outbox.quiet()
        if not self.flush_armed:
            self.flush_armed = True
            self.after(FLUSH_AFTER, FlushLanes())

    def receiveMsg_FlushLanes(self, message: FlushLanes, sender: Any) -> None:
        self.flush_armed = False
        if self.runner is None:
            return
        reports = self.runner.outbox.take()
        if reports and self.manager is not None:
            self.send(self.manager, LanesDone(tuple(reports)))

    def receiveMsg_Standby(self, message: Standby, sender: Any) -> None:
        self.send(sender, JobsDone(message.batch, (), 0.0, (), finished=True))

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        super().receiveMessage(message, sender)
        if self.runner is not None:
            return ThespianWatch([self.runner.outbox.fd])  # a lane's report wakes us
        return None

    def stopping(self) -> None:
        if self.process is not None and self.runner is not None:
            run_stop_hooks(self.process, self.runner.loop)
            self.process = None
        if self.runner is not None:
            self.runner.close()
        if self.limits is not None:
            self.limits.close()
