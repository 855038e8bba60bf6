"""``VerkRoot``: the root supervisor of a node, and the door embedding code talks to.

Children: ``node_manager`` (NodeManager: heartbeat lease, dead-node recovery),
``event_manager`` (EventManager: events to subscribers), ``metrics`` (MetricsActor:
``/metrics`` for Prometheus, only when ``Settings.metrics_port`` is set), ``schedule_manager``
(ScheduleManager), then one ``queue:<name>`` (QueueSupervisor)
per queue, added and removed at runtime. The NodeManager starts first; the others
start when it says ``ChildReady``, which it does once it holds the node id's lease,
so no queue touches the in-progress lists of a node id that another live process
owns. Strategy:
**one_for_one**, at most 5 restarts in 30 s: queues are independent, so a queue
that keeps crashing is restarted alone; past the limit the root stops the node
(the launcher sees it and exits non-zero, for systemd or Kubernetes to act).

When the node id turns out to be used by another live node (``NodeIdTaken``), the
root stops its children and reports ``running=False``; the launcher exits non-zero.
After a ``StopVerk`` it reports ``state="stopped"`` and the launcher exits 0.

Messages it answers (each gets exactly one reply; errors come as RequestFailed):
``ConfigureVerk`` → VerkStarted, ``Enqueue`` → Enqueued, ``AddQueue`` → QueueAdded,
``RemoveQueue`` → QueueRemoved, ``GetStatus`` → VerkStatus, ``StopVerk`` → VerkStopped,
``Subscribe`` → Subscribed (then ``VerkEvents`` batches), ``Unsubscribe`` → Unsubscribed,
``PauseQueue``/``ResumeQueue`` → QueuePaused, ``GetStats`` → StatsReport.

VerkRoot is built from rooms of its own: ``_requests`` (the requests answered from
Redis: Enqueue, PauseQueue/ResumeQueue, GetStats), ``_event_routing`` (Subscribe,
Unsubscribe, who publishes events) and ``_launcher`` (stopping the system when the
launcher is gone); this module keeps the tree, the queues and the stop.

On Thespian's in-process base (what a bare ``ActorSystem()`` starts) nothing runs in
the background, so VerkRoot refuses ``ConfigureVerk`` there with an error saying how
to start a real system, unless ``Settings.allow_in_process`` is set (unit tests).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from typing import Any

from verk_actors.actors import _thespian as thespian_fixes
from verk_actors.actors._event_routing import EVENT_MANAGER, QUEUE_PREFIX, EventRouting
from verk_actors.actors._keyring import node_key
from verk_actors.actors._launcher import LauncherWatch
from verk_actors.actors._node_key import remove_key, write_key
from verk_actors.actors._requests import NOT_CONFIGURED, RedisRequests, failed
from verk_actors.actors.event_manager import EventManager
from verk_actors.actors.messages import (
    AddQueue,
    ChildReady,
    ConfigureVerk,
    GetStatus,
    InitEventManager,
    InitMetrics,
    InitNodeManager,
    InitQueueSupervisor,
    InitScheduleManager,
    LeaveCluster,
    LeftCluster,
    MetricsAt,
    MetricsQueues,
    NodeIdTaken,
    NodeQueues,
    NodeSignal,
    QueueAdded,
    QueueRemoved,
    QueueStatus,
    QueueStopped,
    QuietNode,
    RemoveQueue,
    StopQueue,
    StopVerk,
    VerkStarted,
    VerkStatus,
    VerkStopped,
)
from verk_actors.actors.metrics_actor import MetricsActor
from verk_actors.actors.node_manager import NodeManager
from verk_actors.actors.queue.queue_supervisor import QueueSupervisor
from verk_actors.actors.schedule_manager import ScheduleManager
from verk_actors.actors.supervisor import Child, Strategy
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.redis_url import redact_url
from verk_actors.config.settings import Settings
from verk_actors.config.validate import check_node_settings
from verk_actors.errors import ActorSystemError, ConfigurationError, VerkError
from verk_actors.store.root_store import RootStore

log = logging.getLogger(__name__)

NODE_MANAGER = "node_manager"
SCHEDULE_MANAGER = "schedule_manager"
METRICS = "metrics"
REPORTERS = (NODE_MANAGER, SCHEDULE_MANAGER)
"""Children besides the queues that report to the MetricsActor (its address on restart)."""

IN_PROCESS_REFUSAL = (
    "VerkRoot runs jobs in the background, which Thespian's in-process base (what a bare "
    "ActorSystem() starts) cannot do: start a real system first with "
    "verk_actors.start_actor_system(), or call verk_actors.prepare_thespian() "
    "then ActorSystem('multiprocTCPBase', {'Admin Port': 19500}); set "
    "Settings(allow_in_process=True) only "
    "in unit tests that drive timers themselves"
)

UNPROTECTED_REFUSAL = (
    "this actor system was started without verk_actors' changes to Thespian's transport "
    "(loopback only, authenticated frames), so anyone who can reach its ports could run "
    "code as this user: call verk_actors.prepare_thespian() before starting "
    "ActorSystem('multiprocTCPBase', ...), or use verk_actors.start_actor_system()"
)


def generate_node_id() -> str:
    """A node id unique to this start: host name and random hex."""
    host = socket.gethostname().split(".")[0] or "node"
    return f"{host}-{secrets.token_hex(4)}"


class VerkRoot(LauncherWatch, RedisRequests, EventRouting):
    """Root of the tree: one ScheduleManager and one QueueSupervisor per queue."""

    strategy = Strategy.ONE_FOR_ONE
    max_restarts = 5
    restart_window = 30.0

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.settings: Settings | None = None
        self.node_id = ""
        self.epoch = ""
        self.queue_specs: dict[str, QueueSpec] = {}
        self.store: RootStore | None = None
        self.removals: dict[str, Any] = {}
        self.stop_reply: Any = None
        self.stop_waiting: set[str] = set()
        self.stop_requeued = 0
        self.leaving = False
        self.working = False
        """True once the NodeManager holds the lease and the other children run."""
        self.halted = False
        self.stop_requested = False
        self.key_port: int | None = None
        """The admin port whose key file this root wrote (for ``verk-actors tree``)."""
        self.stop_also: list[Any] = []
        """Who else asked for the stop under way."""
        self.stopped = False
        """True once a ``StopVerk`` has stopped every child (a clean stop)."""
        self.quiet = False
        """A ``TSTP`` came through Redis: no queue takes new jobs (until the stop)."""

    def describe(self) -> str:
        return f"node {self.node_id}" if self.node_id else "VerkRoot"

    def tree_detail(self) -> str:
        return f"node {self.node_id}" if self.node_id else "not configured"

    # --- configuration --------------------------------------------------------------------

    def receiveMsg_ConfigureVerk(self, message: ConfigureVerk, sender: Any) -> None:
        try:
            self._configure(message)
        except VerkError as exc:
            self.send(sender, failed(message, exc))
            return
        self.send(sender, VerkStarted(self.node_id, tuple(self.queue_specs)))

    def _configure(self, message: ConfigureVerk) -> None:
        settings = message.settings
        if self.in_process and not settings.allow_in_process:
            raise ActorSystemError(IN_PROCESS_REFUSAL)
        if not self.in_process and not thespian_fixes.applied():
            raise ActorSystemError(UNPROTECTED_REFUSAL)
        if self.settings is not None:
            raise ConfigurationError(
                f"this VerkRoot already runs node {self.node_id}; create another VerkRoot "
                "for another node"
            )
        check_node_settings(settings)  # values, and that the worker modules import
        self.settings = settings
        self.node_id = settings.node_id or generate_node_id()
        self.epoch = secrets.token_hex(8)
        self.store = RootStore(settings.redis_url, settings.client_middleware)
        self._publish_key()
        for spec in settings.queues:
            self.queue_specs[spec.name] = spec
        if settings.metrics_port is not None:  # first: the others report to it
            self.start_child(METRICS, MetricsActor)
        self.start_child(NODE_MANAGER, NodeManager)
        self.start_child(EVENT_MANAGER, EventManager)
        log.info(
            "node %s started: queues %s; Redis %s",
            self.node_id,
            ", ".join(f"{q.name}({q.concurrency})" for q in settings.queues),
            redact_url(settings.redis_url),
        )
        if message.launcher_pid:
            self.watch_launcher(message.launcher_pid)

    def receiveMsg_ChildReady(self, message: ChildReady, sender: Any) -> None:
        super().receiveMsg_ChildReady(message, sender)
        manager = self.child(NODE_MANAGER)
        if manager is None or manager.address != sender or self.working:
            return
        if self.halted or self.stop_requested or self.giving_up:
            return
        # The lease is ours: the queues may now take jobs and recover this id's leftovers.
        self.working = True
        self.start_child(SCHEDULE_MANAGER, ScheduleManager)
        for name in self.queue_specs:
            self.start_child(QUEUE_PREFIX + name, QueueSupervisor)

    def init_message(self, child: Child) -> object:
        assert self.settings is not None
        if child.name == NODE_MANAGER:
            return InitNodeManager(
                self.settings,
                self.node_id,
                self.epoch,
                tuple(self.queue_specs.values()),
                self.capabilities.get("Admin Port"),
                os.getpid(),
                self.metrics_address(),
            )
        if child.name == SCHEDULE_MANAGER:
            return InitScheduleManager(self.settings, self.node_id, self.metrics_address())
        if child.name == EVENT_MANAGER:
            return InitEventManager(self.settings, self.node_id)
        if child.name == METRICS:
            return InitMetrics(self.settings, self.node_id, tuple(self.queue_specs))
        spec = self.queue_specs[child.name[len(QUEUE_PREFIX) :]]
        return InitQueueSupervisor(
            self.settings,
            spec,
            self.node_id,
            self.event_manager(),
            self.job_events,
            self.metrics_address(),
            self.quiet,
        )

    def metrics_address(self) -> Any:
        child = self.child(METRICS)
        return child.address if child is not None else None

    def child_restarted(self, child: Child) -> None:
        super().child_restarted(child)
        if child.name == METRICS:  # the managers report to the new one
            moved = MetricsAt(child.address)
            for each in self.children:
                reports = each.name.startswith(QUEUE_PREFIX) or each.name in REPORTERS
                if reports and each.address is not None:
                    self.send(each.address, moved)

    # --- queues at runtime ----------------------------------------------------------------

    def receiveMsg_AddQueue(self, message: AddQueue, sender: Any) -> None:
        try:
            if self.settings is None:
                raise ConfigurationError(NOT_CONFIGURED)
            spec = QueueSpec.checked(
                message.name,
                message.concurrency,
                message.mode,
                message.per_process or None,
                max_jobs=message.max_jobs,
                max_memory=message.max_memory,
                min_workers=message.min_workers,
            )
            if spec.name in self.queue_specs:
                raise ConfigurationError(f"queue {spec.name!r} already runs on this node")
        except VerkError as exc:
            self.send(sender, failed(message, exc))
            return
        self.queue_specs[spec.name] = spec
        if self.working:
            self.start_child(QUEUE_PREFIX + spec.name, QueueSupervisor)
        self._queues_changed()
        self.queue_event(spec.name, "added")
        log.info("node %s: queue %s added (%d workers)", self.node_id, spec.name, spec.concurrency)
        self.send(sender, QueueAdded(spec.name))

    def receiveMsg_RemoveQueue(self, message: RemoveQueue, sender: Any) -> None:
        if not self.working and message.name in self.queue_specs:
            del self.queue_specs[message.name]  # not started yet: nothing to drain
            self._queues_changed()
            self.send(sender, QueueRemoved(message.name, 0))
            return
        child = self.child(QUEUE_PREFIX + message.name)
        if child is None or child.address is None or message.name in self.removals:
            self.send(
                sender,
                failed(
                    message,
                    ConfigurationError(f"queue {message.name!r} does not run on this node"),
                ),
            )
            return
        assert self.settings is not None
        self.removals[message.name] = sender
        self.send(child.address, StopQueue(self.settings.shutdown_timeout))

    def receiveMsg_QueueStopped(self, message: QueueStopped, sender: Any) -> None:
        if message.queue in self.removals:
            reply_to = self.removals.pop(message.queue)
            self.queue_specs.pop(message.queue, None)
            self.stop_child(QUEUE_PREFIX + message.queue)
            self._queues_changed()
            self.queue_event(message.queue, "removed")
            log.info(
                "node %s: queue %s removed; %d unfinished jobs went back to it",
                self.node_id,
                message.queue,
                message.requeued,
            )
            self.send(reply_to, QueueRemoved(message.queue, message.requeued))
        if message.queue in self.stop_waiting:
            self.stop_waiting.discard(message.queue)
            self.stop_requeued += message.requeued
            self._finish_stop()

    # --- status and stop ------------------------------------------------------------------

    def receiveMsg_GetStatus(self, message: GetStatus, sender: Any) -> None:
        queues = tuple(
            QueueStatus(
                spec.name,
                spec.concurrency,
                getattr(self.child(QUEUE_PREFIX + spec.name), "restarts", 0),
            )
            for spec in self.queue_specs.values()
        )
        state = self._state()
        self.send(sender, VerkStatus(self.node_id, state == "running", queues, state))

    def _state(self) -> str:
        """What ``VerkStatus.state`` says of this node."""
        if self.settings is None:
            return "not configured"
        if self.giving_up or self.halted:
            return "failed"
        if self.stopped:
            return "stopped"
        return "stopping" if self.stop_requested else "running"

    def receiveMsg_StopVerk(self, message: StopVerk, sender: Any) -> None:
        if self.settings is None or self.halted or self.stopped:
            self.send(sender, VerkStopped(0))
            return
        timeout = self.settings.shutdown_timeout if message.timeout is None else message.timeout
        timeout = max(timeout, 0.0)
        if self.stop_reply is not None:
            self.stop_also.append(sender)  # already stopping: answered together
            if message.timeout is not None:  # hurry the queues still draining
                log.info("node %s: stop now: running jobs go back to their queues", self.node_id)
                for name in self.stop_waiting:
                    child = self.child(QUEUE_PREFIX + name)
                    if child is not None and child.address is not None:
                        self.send(child.address, StopQueue(timeout))
            return
        self.stop_requested = True
        self.stop_reply = sender
        for name in self.queue_specs:
            child = self.child(QUEUE_PREFIX + name)
            if child is not None and child.address is not None:
                self.stop_waiting.add(name)
                self.send(child.address, StopQueue(timeout))
        log.info("node %s stopping: waiting up to %g s for running jobs", self.node_id, timeout)
        self._finish_stop()

    def receiveMsg_NodeSignal(self, message: NodeSignal, sender: Any) -> None:
        """Sidekiq's quiet (``TSTP``) and stop (``TERM``), sent through Redis."""
        if message.signal == "TERM":
            self.receiveMsg_StopVerk(StopVerk(), self.myAddress)  # as on SIGTERM
        elif message.signal == "TSTP" and not self.quiet:
            self.quiet = True
            for child in self.children:
                if child.name.startswith(QUEUE_PREFIX) and child.address is not None:
                    self.send(child.address, QuietNode())

    def receiveMsg_VerkStopped(self, message: VerkStopped, sender: Any) -> None:
        """The answer to a stop this root asked itself (``TERM``): nothing to do."""

    def _queues_changed(self) -> None:
        manager = self.child(NODE_MANAGER)
        if manager is not None and manager.address is not None:
            self.send(manager.address, NodeQueues(tuple(self.queue_specs.values())))
        metrics = self.metrics_address()
        if metrics is not None:
            self.send(metrics, MetricsQueues(tuple(self.queue_specs)))

    def receiveMsg_NodeIdTaken(self, message: NodeIdTaken, sender: Any) -> None:
        log.error("node %s stops: %s", self.node_id, message.message)
        # Stop every child, but stay to answer GetStatus with running=False: the
        # launcher then exits at once, non-zero, instead of waiting for answers.
        self.halted = True
        for child in list(self.children):
            self.stop_child(child.name)

    def _finish_stop(self) -> None:
        if self.stop_reply is None or self.stop_waiting or self.leaving:
            return
        manager = self.child(NODE_MANAGER)
        if manager is not None and manager.address is not None:
            self.leaving = True
            self.send(manager.address, LeaveCluster())
            return
        self._stopped()

    def receiveMsg_LeftCluster(self, message: LeftCluster, sender: Any) -> None:
        self.leaving = False
        self._stopped()

    def _stopped(self) -> None:
        if self.stop_reply is None:
            return
        for name in list(self.queue_specs):
            self.stop_child(QUEUE_PREFIX + name)
        self.stop_child(SCHEDULE_MANAGER)
        self.stop_child(METRICS)
        self.stop_child(EVENT_MANAGER)
        self.stop_child(NODE_MANAGER)
        log.info(
            "node %s stopped; %d unfinished jobs went back to their queues",
            self.node_id,
            self.stop_requeued,
        )
        for reply_to in (self.stop_reply, *self.stop_also):
            self.send(reply_to, VerkStopped(self.stop_requeued))
        self.stop_reply, self.stop_also = None, []
        self.stopped = True

    def _publish_key(self) -> None:
        """Write the node's key where this user's tools (``verk-actors tree``) find it."""
        port = self.capabilities.get("Admin Port")
        if self.in_process or not port:
            return
        write_key(port, node_key(port))
        self.key_port = port

    def stopping(self) -> None:
        super().stopping()
        if self.key_port is not None:
            remove_key(self.key_port, node_key(self.key_port))
            self.key_port = None
        if self.store is not None:
            self.store.close()
            self.store = None
