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
description (and its Sidekiq process entry), and, in the same round trip, pops one
signal from the node's ``<identity>-signals`` list, as a Sidekiq process does: on
``TSTP`` the node turns quiet (its queues take no new jobs, running jobs finish; the
process entry says ``quiet``), on ``TERM`` it stops as on SIGTERM (VerkRoot's
``NodeSignal``). Four times per heartbeat it looks for
nodes whose lease is gone and moves their in-progress jobs back to their queues, so
a dead node's jobs run again within two heartbeats. If its own lease had expired
(the node was stalled, or Redis was away for longer than the lease), it claims it
again and carries on: jobs another node recovered meanwhile run again there (at
least once), and this node's late acks of them find nothing to remove, so nothing
is lost or counted into retry twice. Its next description registers it again
(``verk_nodes`` and its queues), should a node that recovered its jobs have
forgotten it. If by then another process holds the lease under the same id,
VerkRoot is told to stop this node (``NodeIdTaken``).

Redis failing (out of reach, or answering ``OOM``, ``BUSY``...: see
``store.failures``) never stops the heartbeat or the scans: the failure is logged once
per outage, for the whole node (the other actors keep quiet about a transient
outage), with reminders while it lasts; the heartbeat is tried again four times a
heartbeat until Redis answers. A node that saw Redis fail for a transient reason
declares no other node dead until Redis has answered it again for a whole lease:
every node was refused alike meanwhile and could not renew its lease either, so an
expired lease then says nothing about its holder; each gets the time to renew first.

Now and then (every ``SWEEP_EVERY`` heartbeats) the scans also walk every
in-progress list in Redis (``SCAN``, one step per scan) for lists of a node that has
no lease and is not in ``verk_nodes``, and move their jobs back: a node forgotten
while stalled that took jobs before it registered again, then died, leaves no job
behind.
"""

from __future__ import annotations

import logging
import os
import time
from functools import partial
from typing import Any

from verk_actors.actors._redis_report import ReportsRedisErrors
from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import (
    ChildReady,
    Heartbeat,
    InitNodeManager,
    LeaveCluster,
    LeftCluster,
    NodeIdTaken,
    NodeQueues,
    NodeSignal,
    ScanNodes,
)
from verk_actors.config.redis_url import redact_url
from verk_actors.config.settings import QueueSpec
from verk_actors.store.failures import REDIS_ERRORS, Outage, is_transient
from verk_actors.store.node_store import LeaseHolder, NodeStore, node_facts

log = logging.getLogger(__name__)

SCANS_PER_HEARTBEAT = 4

RENEWAL_SLACK = 0.05
"""Seconds a held lease may seem to outlive its first reading (clock steps, rounding)."""

SWEEP_EVERY = 12
"""Heartbeats between two walks over every in-progress list (a SCAN of the keyspace,
one step of ``node_store.SWEEP_COUNT`` keys per scan)."""


class NodeManager(VerkActor, ReportsRedisErrors):
    """Heartbeat, node description, dead-node recovery."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitNodeManager | None = None
        self.store: NodeStore | None = None
        self.queues: tuple[QueueSpec, ...] = ()
        self.root: Any = None
        self.claimed = False
        self.taken = False
        self.holder: tuple[str, float] | None = None
        """Epoch of the other incarnation holding our lease, and when it should expire."""
        self.outage = Outage(log, "node ?", "?", speaks_for_node=True)
        """Redis failing the heartbeat (or the scans, for a transient reason)."""
        self.scan_outage = Outage(log, "node ?", "?")
        """Redis refusing the scans' commands for a reason of their own."""
        self.answered_since: float | None = float("-inf")
        """Since when Redis has answered this node without a transient failure
        (``time.monotonic()``); None while it fails."""
        self.sweep_cursor = 0
        self.sweep_at = 0.0
        """When the next walk over the in-progress lists may begin (monotonic)."""
        self.quiet = False
        """A ``TSTP`` came: the process entry says ``quiet``."""

    def receiveMsg_InitNodeManager(self, message: InitNodeManager, sender: Any) -> None:
        self.init = message
        self.root = sender
        self.queues = message.queues
        facts = node_facts(message.node_id, message.epoch, message.admin_port, message.root_pid)
        self.store = NodeStore(message.settings, facts)
        url = redact_url(message.settings.redis_url)
        self.metrics = message.metrics
        report = partial(self.report_redis, "node_manager")
        self.outage = Outage(
            log, f"node {message.node_id}", url, speaks_for_node=True, report=report
        )
        self.scan_outage = Outage(
            log, f"node {message.node_id}: dead-node scan", url, report=report
        )
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
                self._signalled(init, store.describe(self.queues, quiet=self.quiet).signal)
            self._answered()
            self.outage.ok()
        except REDIS_ERRORS as exc:
            if is_transient(exc):
                self.answered_since = None
            self.outage.failed(exc, "at its heartbeat" if self.claimed else "taking its lease")
        if self.taken:
            return
        interval = init.settings.heartbeat_interval
        # Until the lease is ours, and while Redis fails, look again often: a lease
        # running out, or Redis back (the lease must be renewed before others judge).
        steady = self.claimed and not self.outage.active
        self.after(interval if steady else interval / SCANS_PER_HEARTBEAT, Heartbeat())

    def _signalled(self, init: InitNodeManager, signal: str | None) -> None:
        """A signal sent through Redis (as Sidekiq's Web sends it): quiet or stop."""
        if signal is None:
            return
        if signal == "TSTP":
            if not self.quiet:
                self.quiet = True
                log.info("node %s: quiet (TSTP): taking no new jobs", init.node_id)
                self.send(self.root, NodeSignal(signal))
        elif signal == "TERM":
            log.info("node %s: stop asked (TERM): stopping", init.node_id)
            self.send(self.root, NodeSignal(signal))
        else:
            log.warning("node %s: ignored signal %r (it knows TSTP, TERM)", init.node_id, signal)

    def timer_retry(self, payload: object) -> float:
        if self.init is None:
            return super().timer_retry(payload)
        return self.init.settings.heartbeat_interval / SCANS_PER_HEARTBEAT

    def _answered(self) -> None:
        if self.answered_since is None:
            self.answered_since = time.monotonic()

    def _may_judge(self, init: InitNodeManager) -> bool:
        """Whether an expired lease means a dead node: not until Redis has answered this
        node for a whole lease since it last failed it for a transient reason."""
        since = self.answered_since
        return since is not None and time.monotonic() - since >= init.settings.lease_ttl

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
        doing = "looking for dead nodes"
        try:
            if self.claimed:
                dead_nodes = store.dead_nodes()
                self._answered()
                if self._may_judge(init):
                    for dead in dead_nodes:
                        moved = store.recover(dead)
                        log.warning(
                            "node %s: node %s is dead (no lease); moved %d of its "
                            "in-progress jobs back to their queues",
                            init.node_id,
                            dead,
                            moved,
                        )
                    doing = "looking for in-progress lists of unregistered nodes"
                    self._sweep(init, store)
            self.scan_outage.ok()
        except REDIS_ERRORS as exc:
            if is_transient(exc):
                self.answered_since = None
                self.outage.failed(exc, doing)  # closed by the next good heartbeat
            else:
                self.scan_outage.failed(exc, doing)
        self.after(init.settings.heartbeat_interval / SCANS_PER_HEARTBEAT, ScanNodes())

    def _sweep(self, init: InitNodeManager, store: NodeStore) -> None:
        """One step of the walk over every in-progress list, when one is due."""
        now = time.monotonic()
        if self.sweep_cursor == 0 and now < self.sweep_at:
            return
        cursor, lists = store.orphan_lists(self.sweep_cursor)
        for queue, node in lists:
            moved = store.recover_list(queue, node)
            if moved:
                log.warning(
                    "node %s: node %s, not registered and without a lease, had %d jobs "
                    "of queue %s in progress; moved them back to the queue",
                    init.node_id,
                    node,
                    moved,
                    queue,
                )
        self.sweep_cursor = cursor
        if cursor == 0:
            self.sweep_at = now + SWEEP_EVERY * init.settings.heartbeat_interval

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
