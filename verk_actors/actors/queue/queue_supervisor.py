"""``QueueSupervisor``: one queue's subtree. A crash inside it never touches another queue.

Children, in start order:

1. ``queue_manager`` (QueueManager): the queue's Redis side;
2. ``workers_manager`` (WorkersManager; LaneWorkersManager for a queue in threads or
   async mode): dispatches jobs, and is itself the parent of the queue's worker pool.

Strategy: **rest_for_one**, at most 3 restarts in 5 s. If the QueueManager dies, the
WorkersManager (which holds its address and jobs it handed out) restarts after it; if
only the WorkersManager dies, the QueueManager stays and gives the jobs it had
handed out back to the queue when the new WorkersManager attaches. Past the limit,
the queue supervisor exits and VerkRoot decides (escalation).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from verk_actors.actors.messages import (
    ChildReady,
    DrainQueue,
    DrainTimeout,
    EventsApplied,
    EventsWanted,
    InitQueueManager,
    InitQueueSupervisor,
    InitWorkersManager,
    MetricsAt,
    QueueManagerStopped,
    QueueStopped,
    QuietNode,
    StopQueue,
    StopQueueManager,
)
from verk_actors.actors.queue.queue_manager import QueueManager
from verk_actors.actors.queue.workers_manager import WorkersManager
from verk_actors.actors.supervisor import Child, Strategy, Supervisor
from verk_actors.config.queue_modes import PROCESS

log = logging.getLogger(__name__)

QUEUE_MANAGER = "queue_manager"
WORKERS_MANAGER = "workers_manager"
STOP_GRACE = 10.0


class QueueSupervisor(Supervisor):
    """Supervises one queue's QueueManager and WorkersManager (rest_for_one)."""

    strategy = Strategy.REST_FOR_ONE
    max_restarts = 3
    restart_window = 5.0

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitQueueSupervisor | None = None
        self.events_wanted: EventsWanted | None = None
        self.stop_reply: Any = None
        self.stop_token = 0
        self.metrics_at: MetricsAt | None = None
        """Where the MetricsActor is (VerkRoot's latest word, newer than the init)."""
        self.quiet = False
        """The node is quiet (``QuietNode``, or the init said so)."""

    def describe(self) -> str:
        return f"queue {self.init.queue.name}" if self.init else "queue supervisor"

    def receiveMsg_InitQueueSupervisor(self, message: InitQueueSupervisor, sender: Any) -> None:
        self.init = message
        self.quiet = self.quiet or message.quiet
        if self.metrics_at is None:
            self.metrics_at = MetricsAt(message.metrics)
        self.start_child(QUEUE_MANAGER, QueueManager)
        manager: type = WorkersManager
        if message.queue.mode != PROCESS:  # threads or async: many jobs per process
            # Imported here: a node without such a queue never loads the lanes' modules.
            from verk_actors.actors.queue import lane_workers_manager  # noqa: PLC0415

            manager = lane_workers_manager.LaneWorkersManager
        self.start_child(WORKERS_MANAGER, manager)
        self.send(sender, ChildReady(os.getpid()))

    def init_message(self, child: Child) -> object:
        init = self.init
        assert init is not None
        if child.name == QUEUE_MANAGER:
            return InitQueueManager(
                init.settings, init.queue.name, init.node_id, self.metrics_address(), self.quiet
            )
        manager = self.child(QUEUE_MANAGER)
        # VerkRoot's last EventsWanted is newer than the init, even when Thespian
        # delivered it first (it does not keep the order of messages).
        wanted = self.events_wanted
        return InitWorkersManager(
            init.settings,
            init.queue,
            init.node_id,
            manager.address if manager else None,
            wanted.manager if wanted else init.events,
            wanted.jobs if wanted else init.job_events,
            self.metrics_address(),
        )

    def metrics_address(self) -> Any:
        return self.metrics_at.address if self.metrics_at is not None else None

    def metrics_queue(self) -> str:
        return self.init.queue.name if self.init is not None else ""

    def receiveMsg_MetricsAt(self, message: MetricsAt, sender: Any) -> None:
        self.metrics_at = message
        for child in self.children:
            if child.address is not None:
                self.send(child.address, message)

    def receiveMsg_QuietNode(self, message: QuietNode, sender: Any) -> None:
        self.quiet = True  # a restarted QueueManager is told by its init
        manager = self.child(QUEUE_MANAGER)
        if manager is not None and manager.address is not None:
            self.send(manager.address, message)

    def receiveMsg_EventsWanted(self, message: EventsWanted, sender: Any) -> None:
        self.events_wanted = message
        workers = self.child(WORKERS_MANAGER)
        if workers is not None and workers.address is not None:
            self.send(workers.address, message)
        elif message.token and message.manager is not None:
            # The next WorkersManager starts from the updated init: nothing to wait for.
            self.send(message.manager, EventsApplied(message.token))

    def receiveMsg_StopQueue(self, message: StopQueue, sender: Any) -> None:
        self.stop_reply = sender
        workers = self.child(WORKERS_MANAGER)
        if workers is not None and workers.address is not None:
            self.send(workers.address, DrainQueue(message.timeout))
        else:
            self._stop_manager_directly()
        self.stop_token += 1
        self.after(message.timeout + STOP_GRACE, DrainTimeout(self.stop_token))

    def receiveMsg_DrainTimeout(self, message: DrainTimeout, sender: Any) -> None:
        if message.token == self.stop_token and self.stop_reply is not None:
            log.warning(
                "%s: the workers did not finish draining in time; stopping anyway",
                self.describe(),
            )
            self._stop_manager_directly()

    def _stop_manager_directly(self) -> None:
        manager = self.child(QUEUE_MANAGER)
        if manager is not None and manager.address is not None:
            self.send(manager.address, StopQueueManager(reply_to=self.myAddress))
        else:
            self._report_stopped(0)

    def receiveMsg_QueueManagerStopped(self, message: QueueManagerStopped, sender: Any) -> None:
        self._report_stopped(message.requeued)

    def _report_stopped(self, requeued: int) -> None:
        if self.stop_reply is None or self.init is None:
            return
        self.send(self.stop_reply, QueueStopped(self.init.queue.name, requeued))
        self.stop_reply = None
