"""``NodeManager``: this node's heartbeat lease, and recovery of dead nodes' jobs.

First it takes the lease ``verk:node:<id>``, and only then says ``ChildReady`` to
VerkRoot, which starts the queues after that: no queue touches an in-progress list
of this id while another process may own it. If another incarnation holds the lease:

- it ran on this host and its root process is gone (a restart after a crash): the
  lease is taken over at once;
- otherwise it waits for that lease to expire (a node restarted on another host:
  at most one lease, ``1.5 x heartbeat_interval``); if the holder renews it
  meanwhile, a live node uses this id, and VerkRoot is told to stop this one
  (``NodeIdTaken``). The live node is not disturbed.

Then every ``heartbeat_interval`` it renews the lease and rewrites the node's
description (and its Sidekiq process entry). Four times per heartbeat it looks for
nodes whose lease is gone and moves their in-progress jobs back to their queues, so
a dead node's jobs run again within two heartbeats. If its own lease had expired
(the node was stalled, or Redis was away for longer than the lease), it claims it
again and carries on: jobs another node recovered meanwhile run again there (at
least once), and this node's late acks of them find nothing to remove, so nothing
is lost or counted into retry twice. If by then another process holds the lease
under the same id, VerkRoot is told to stop this node (``NodeIdTaken``).
"""

from __future__ import annotations

import logging
import os
import time
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
from verk_actors.node_store import LeaseHolder, NodeStore, node_facts
from verk_actors.queue_store import REDIS_ERRORS
from verk_actors.redis_conn import redact_url
from verk_actors.settings import QueueSpec

log = logging.getLogger(__name__)

SCANS_PER_HEARTBEAT = 4

RENEWAL_SLACK = 0.05
"""Seconds a held lease may seem to outlive its first reading (clock steps, rounding)."""


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
        self.taken = False
        self.holder: tuple[str, float] | None = None
        """Epoch of the other incarnation holding our lease, and when it should expire."""

    def receiveMsg_InitNodeManager(self, message: InitNodeManager, sender: Any) -> None:
        self.init = message
        self.root = sender
        self.queues = message.queues
        facts = node_facts(message.node_id, message.epoch, message.admin_port, message.root_pid)
        self.store = NodeStore(message.settings, facts)
        self.receiveMsg_Heartbeat(Heartbeat(), self.myAddress)
        self.after(message.settings.heartbeat_interval / SCANS_PER_HEARTBEAT, ScanNodes())

    def _claim(self, init: InitNodeManager, store: NodeStore) -> bool:
        """Try to take the lease; True once it is ours (VerkRoot is then told)."""
        holder = store.claim()
        if holder is not None and holder.epoch and store.holder_gone(holder):
            if not store.take_over(holder):
                return False  # it changed meanwhile: look again soon
            log.warning(
                "node %s: took over the lease of an earlier process with this node id "
                "(pid %s on this host, no longer running)",
                init.node_id,
                holder.pid,
            )
            holder = None
        if holder is not None:
            self._wait_for(init, holder)
            return False
        self.claimed = True
        self.holder = None
        self.send(self.root, ChildReady(os.getpid()))
        return True

    def _wait_for(self, init: InitNodeManager, holder: LeaseHolder) -> None:
        """Another incarnation holds our lease: wait for it to expire, unless it is renewed."""
        if not holder.epoch:
            return  # it expired between two looks: the next look claims it
        now = time.monotonic()
        expires = now + holder.ttl if holder.ttl is not None else None
        if self.holder is None or self.holder[0] != holder.epoch:
            if expires is not None:
                self.holder = (holder.epoch, expires)
                log.warning(
                    "node %s: another process (host %s, pid %s) holds this node id's lease; "
                    "waiting up to %.1f s for it to expire before starting (if it is "
                    "renewed meanwhile, a live node uses this id and this one stops)",
                    init.node_id,
                    holder.host or "?",
                    holder.pid or "?",
                    holder.ttl,
                )
                return
        elif expires is not None and expires <= self.holder[1] + RENEWAL_SLACK:
            return  # still the same lease running out
        renewed = "renewed its lease" if expires is not None else "holds a lease with no expiry"
        text = (
            f"node id {init.node_id} is in use by a live node (host {holder.host or '?'}, "
            f"pid {holder.pid or '?'}), which {renewed} while this one waited: give each "
            "node its own --node-id (or none, to have one generated); this one stops"
        )
        log.error("%s", text)
        self.taken = True
        self.send(self.root, NodeIdTaken(text))

    def receiveMsg_NodeQueues(self, message: NodeQueues, sender: Any) -> None:
        self.queues = message.queues

    def receiveMsg_Heartbeat(self, message: Heartbeat, sender: Any) -> None:
        init, store = self.init, self.store
        if init is None or store is None or self.taken:
            return
        try:
            if self.claimed:
                self._renew(init, store)
            else:
                self._claim(init, store)
            if self.claimed and not self.taken:
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
        if self.taken:
            return
        interval = init.settings.heartbeat_interval
        # Until the lease is ours, look again often: a lease running out, or Redis back.
        self.after(interval if self.claimed else interval / SCANS_PER_HEARTBEAT, Heartbeat())

    def _renew(self, init: InitNodeManager, store: NodeStore) -> None:
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
                f"another process holds the lease of node id {init.node_id} (this node's "
                "lease had expired); two nodes must not share a node id: this one stops"
            )
            log.error("%s", text)
            self.taken = True
            self.send(self.root, NodeIdTaken(text))

    def receiveMsg_ScanNodes(self, message: ScanNodes, sender: Any) -> None:
        init, store = self.init, self.store
        if init is None or store is None or self.taken:
            return
        try:
            for dead in store.dead_nodes() if self.claimed else ():
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
        if self.store is not None and self.claimed:
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
