"""``NodeManager``: this node's heartbeat lease, and recovery of dead nodes' jobs.

Every ``heartbeat_interval`` it renews the lease ``verk:node:<id>`` and rewrites the
node's description (and its Sidekiq process entry). Four times per heartbeat it
looks for nodes whose lease is gone and moves their in-progress jobs back to their
queues. If its own lease had expired (the node was stalled, or Redis was away for
longer than the lease), it claims it again and carries on: jobs another node
recovered meanwhile run again there (at least once), and this node's late acks of
them find nothing to remove, so nothing is lost or counted into retry twice. If
another process holds the lease under the same id, VerkRoot is told to stop this
node (``NodeIdTaken``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from verk_actors.base import VerkActor
from verk_actors.messages import (
    ChildReady,
    Heartbeat,
    InitNodeManager,
    LeaveCluster,
    LeftCluster,
    NodeIdTaken,
    NodeQueues,
    ScanNodes,
)
from verk_actors.node_store import NodeStore, node_facts
from verk_actors.queue_store import REDIS_ERRORS
from verk_actors.redis_conn import redact_url
from verk_actors.settings import QueueSpec

log = logging.getLogger(__name__)

SCANS_PER_HEARTBEAT = 4


class NodeManager(VerkActor):
    """Heartbeat, node description, dead-node recovery."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitNodeManager | None = None
        self.store: NodeStore | None = None
        self.queues: tuple[QueueSpec, ...] = ()
        self.root: Any = None
        self.claimed = False
        self.failing = False

    def receiveMsg_InitNodeManager(self, message: InitNodeManager, sender: Any) -> None:
        self.init = message
        self.root = sender
        self.queues = message.queues
        facts = node_facts(message.node_id, message.epoch, message.admin_port, message.root_pid)
        self.store = NodeStore(message.settings, facts)
        self.send(sender, ChildReady(os.getpid()))
        self.receiveMsg_Heartbeat(Heartbeat(), self.myAddress)
        self.after(message.settings.heartbeat_interval / SCANS_PER_HEARTBEAT, ScanNodes())

    def receiveMsg_NodeQueues(self, message: NodeQueues, sender: Any) -> None:
        self.queues = message.queues

    def receiveMsg_Heartbeat(self, message: Heartbeat, sender: Any) -> None:
        init, store = self.init, self.store
        if init is None or store is None:
            return
        try:
            if not self.claimed:
                previous = store.claim()
                self.claimed = True
                if previous is not None:
                    log.warning(
                        "node %s: took over the lease of an earlier process with this node id "
                        "(a restart; if that process still runs, two nodes now share an id)",
                        init.node_id,
                    )
            else:
                renewed = store.renew()
                if renewed == 0:
                    log.warning(
                        "node %s: its lease had expired (stalled, or Redis away longer than "
                        "%g s); claimed it again. Jobs other nodes recovered meanwhile may "
                        "run twice",
                        init.node_id,
                        init.settings.lease_ttl,
                    )
                elif renewed < 0:
                    text = (
                        f"another process holds the lease of node id {init.node_id}; two nodes "
                        "must not share a node id: this one stops"
                    )
                    log.error("%s", text)
                    self.send(self.root, NodeIdTaken(text))
                    return
            store.describe(self.queues)
            if self.failing:
                log.info("node %s: Redis is back", init.node_id)
            self.failing = False
        except REDIS_ERRORS as exc:
            if not self.failing:
                log.warning(
                    "node %s: heartbeat failed, Redis at %s unavailable (%s: %s); retrying",
                    init.node_id,
                    redact_url(init.settings.redis_url),
                    type(exc).__name__,
                    exc,
                )
            self.failing = True
        self.after(init.settings.heartbeat_interval, Heartbeat())

    def receiveMsg_ScanNodes(self, message: ScanNodes, sender: Any) -> None:
        init, store = self.init, self.store
        if init is None or store is None:
            return
        try:
            for dead in store.dead_nodes():
                moved = store.recover(dead)
                log.warning(
                    "node %s: node %s is dead (no lease); moved %d of its in-progress jobs "
                    "back to their queues",
                    init.node_id,
                    dead,
                    moved,
                )
        except REDIS_ERRORS:
            pass  # the heartbeat reports Redis trouble
        self.after(init.settings.heartbeat_interval / SCANS_PER_HEARTBEAT, ScanNodes())

    def receiveMsg_LeaveCluster(self, message: LeaveCluster, sender: Any) -> None:
        if self.store is not None:
            try:
                self.store.leave()
            except REDIS_ERRORS as exc:
                log.warning("could not remove this node's registration at stop: %s", exc)
        self.init = None
        self.send(sender, LeftCluster())

    def stopping(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
