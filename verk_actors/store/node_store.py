"""A node's presence in Redis, without actors: lease, description, dead-node recovery.

The lease (``verk:node:<id>``, holding the node's random epoch) lives
``Settings.lease_ttl`` seconds and is renewed every heartbeat. A node whose lease is
gone is dead: any live node moves its in-progress jobs back to their queues (in
atomic batches, so each job moves once however many nodes try at once) and then
removes its registration. The node also appears in Sidekiq's ``processes`` set, so
Sidekiq's web UI and ``Sidekiq::ProcessSet`` list it: busy with the jobs its workers
have started (``verk_actors.store.running_jobs``), each with its start time, and the resident
memory of all its processes.

A node takes its lease before it touches any in-progress list: if another
incarnation holds it, ``claim`` says who (``LeaseHolder``), and the caller either
takes it over (that incarnation ran on this host and its process is gone) or waits
for it to expire.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

import attrs
import redis

from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import Settings
from verk_actors.store import keys
from verk_actors.store.connection import connect
from verk_actors.store.scripts import Scripts

log = logging.getLogger(__name__)

VERSION = "0.1.0"
PROCESS_TTL = 60
"""Seconds Sidekiq's process hash lives without a heartbeat (Sidekiq's own value)."""

RECOVERY_BATCH = 1000
SWEEP_COUNT = 1000
"""Keys one step of the walk over the in-progress lists asks ``SCAN`` to look at."""
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@attrs.frozen
class NodeFacts:
    """What does not change while a node runs."""

    node_id: str
    epoch: str
    host: str
    pid: int
    started_at: float
    admin_port: int | None

    @property
    def identity(self) -> str:
        return keys.process_identity(self.host, self.pid, self.node_id)


def node_facts(node_id: str, epoch: str, admin_port: int | None, pid: int) -> NodeFacts:
    """Facts about a node whose root actor runs as ``pid`` on this host."""
    return NodeFacts(node_id, epoch, socket.gethostname(), pid, time.time(), admin_port)


@attrs.frozen
class LeaseHolder:
    """Another incarnation holding a node id's lease, as last described in Redis."""

    epoch: str
    ttl: float | None
    """Seconds the lease had left when read; None when it has no expiry."""
    host: str | None
    pid: int | None


@attrs.frozen
class Beat:
    """What a heartbeat's description found: jobs busy, and the signal popped."""

    busy: int
    signal: str | None
    """``TSTP`` (quiet), ``TERM`` (stop), anything else pushed, or None."""


def process_running(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] not in ("Z", "X")


def _processes() -> dict[int, int]:
    """Every process of this host: pid -> parent pid (empty off Linux)."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return parents
    for entry in entries:
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
                parents[int(entry)] = int(stat[stat.rfind(b")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def tree_rss_kb(root: int) -> int:
    """Resident memory (kB) of process ``root`` and all its descendants, summed: a
    node's actors are processes forked below its root (0 where ``/proc`` is missing).
    Pages the processes share are counted once in each, as Sidekiq counts a process."""
    children: dict[int, list[int]] = {}
    for pid, parent in _processes().items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, ()))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE // 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class NodeStore:
    """One node's registration in Redis."""

    def __init__(self, settings: Settings, facts: NodeFacts) -> None:
        self.settings = settings
        self.facts = facts
        self.client = connect(settings.redis_url, name=f"verk:{facts.node_id}:node")
        self.scripts = Scripts(self.client)

    def claim(self) -> LeaseHolder | None:
        """Take the lease if it is free (or ours): None; else who holds it, untouched.

        A holder with an empty epoch means the lease expired between two looks: look
        again.
        """
        node = self.facts.node_id
        lease = keys.node_lease_key(node)
        if self.renew() >= 0:
            self.client.sadd(keys.NODES, node)
            return None
        pipe = self.client.pipeline(transaction=True)
        pipe.get(lease)
        pipe.pttl(lease)
        pipe.hmget(keys.node_info_key(node), "host", "pid")
        epoch, pttl, (host, pid) = pipe.execute()
        return LeaseHolder(
            epoch=_text(epoch) or "",
            ttl=pttl / 1000 if pttl >= 0 else (0.0 if pttl == -2 else None),
            host=_text(host),
            pid=int(pid) if pid is not None else None,
        )

    def holder_gone(self, holder: LeaseHolder) -> bool:
        """True if ``holder`` ran on this host and its root process is gone (a restart)."""
        if holder.host != self.facts.host or holder.pid is None:
            return False
        return holder.pid == self.facts.pid or not process_running(holder.pid)

    def take_over(self, holder: LeaseHolder) -> bool:
        """Replace the lease of ``holder`` by ours, unless it changed meanwhile."""
        lease = keys.node_lease_key(self.facts.node_id)
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(lease)  # type: ignore[no-untyped-call]  # redis-py
                if _text(pipe.get(lease)) != holder.epoch:
                    return False
                pipe.multi()
                pipe.set(lease, self.facts.epoch, px=int(self.settings.lease_ttl * 1000))
                pipe.sadd(keys.NODES, self.facts.node_id)
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    def renew(self) -> int:
        """1 renewed, 0 had expired and was claimed again, -1 held by another process."""
        return self.scripts.renew_lease(
            self.client, self.facts.node_id, self.facts.epoch, self.settings.lease_ttl
        )

    def describe(self, queues: tuple[QueueSpec, ...], *, quiet: bool = False) -> Beat:
        """Write the node's info hash and its Sidekiq process entry (``quiet`` as
        given), and pop the oldest signal sent to it (Sidekiq's ``<identity>-signals``
        list: ``TSTP`` or ``TERM``), in the same round trip, as Sidekiq's heartbeat
        does. Busy jobs: those its workers have started, as its WorkersManagers last
        wrote them."""
        node = self.facts.node_id
        names = [q.name for q in queues]
        workers = {
            _text(name) or "": _text(work) or ""
            for name, work in self.client.hgetall(keys.node_running_key(node)).items()
        }
        busy = len(workers)
        now = time.time()
        concurrency = sum(q.concurrency for q in queues)
        info = {
            "hostname": self.facts.host,
            "started_at": self.facts.started_at,
            "pid": self.facts.pid,
            "tag": "verk_actors",
            "concurrency": concurrency,
            "queues": names,
            "labels": [f"node:{node}"],
            "identity": self.facts.identity,
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(keys.NODES, node)
        if names:
            # Again every beat: a node declared dead while stalled was forgotten.
            pipe.sadd(keys.node_queues_key(node), *names)
        pipe.hset(
            keys.node_info_key(node),
            mapping={
                "host": self.facts.host,
                "pid": self.facts.pid,
                "started_at": self.facts.started_at,
                "queues": json.dumps(
                    [{"name": q.name, "concurrency": q.concurrency} for q in queues]
                ),
                "busy": busy,
                "admin_port": self.facts.admin_port or 0,
                "beat": now,
                "version": VERSION,
            },
        )
        pipe.expire(keys.node_info_key(node), max(PROCESS_TTL, int(self.settings.lease_ttl * 4)))
        identity = self.facts.identity
        pipe.sadd(keys.PROCESSES, identity)
        pipe.hset(
            identity,
            mapping={
                "info": json.dumps(info),
                "busy": busy,
                "beat": now,
                "quiet": "true" if quiet else "false",
                "rss": tree_rss_kb(self.facts.pid),
                "rtt_us": 0,
            },
        )
        pipe.expire(identity, PROCESS_TTL)
        workers_key = keys.process_workers_key(identity)
        pipe.delete(workers_key)
        if workers:
            pipe.hset(workers_key, mapping=workers)  # type: ignore[arg-type]  # redis-py: invariant Mapping key
            pipe.expire(workers_key, PROCESS_TTL)
        pipe.rpop(keys.process_signals_key(identity))
        return Beat(busy, _text(pipe.execute()[-1]))

    def publish_tree(self, text: str, ttl: float) -> None:
        """Write the node's live tree (JSON ``text``), living ``ttl`` seconds."""
        self.client.set(keys.node_tree_key(self.facts.node_id), text, ex=max(1, round(ttl)))

    def dead_nodes(self) -> list[str]:
        """Ids in ``verk_nodes`` (other than this one) whose lease is gone."""
        others = [
            n.decode() if isinstance(n, bytes) else str(n) for n in self.client.smembers(keys.NODES)
        ]
        others = [n for n in others if n != self.facts.node_id]
        if not others:
            return []
        pipe = self.client.pipeline(transaction=False)
        for other in others:
            pipe.exists(keys.node_lease_key(other))
        alive = pipe.execute()
        return [n for n, present in zip(others, alive, strict=True) if not present]

    def recover(self, dead: str) -> int:
        """Move a dead node's in-progress jobs back; forget it once nothing is left."""
        queues = sorted(
            q.decode() if isinstance(q, bytes) else str(q)
            for q in self.client.smembers(keys.node_queues_key(dead))
        )
        moved_total = 0
        for queue in queues:
            moved = self.recover_list(queue, dead)
            if moved is None:
                return moved_total  # it came back
            moved_total += moved
        identity = self._identity_of(dead)
        self.scripts.forget_node(self.client, dead, identity, queues)
        return moved_total

    def recover_list(self, queue: str, node: str) -> int | None:
        """Move ``node``'s in-progress jobs of ``queue`` back to the queue, in atomic
        batches, while it has no lease: how many moved; None once it has one."""
        moved_total = 0
        while True:
            moved, remaining = self.scripts.requeue_inprogress(
                self.client, queue, node, RECOVERY_BATCH, only_if_dead=True
            )
            if moved < 0:
                return None
            moved_total += moved
            if remaining <= 0 or moved == 0:
                return moved_total

    def orphan_lists(self, cursor: int) -> tuple[int, list[tuple[str, str]]]:
        """One step of a walk over every in-progress list in Redis (``SCAN`` from
        ``cursor``): the next cursor (0 when the walk is over) and the ``(queue, node)``
        of the lists found whose node is neither this one nor in ``verk_nodes``.

        The dead-node scan only sees registered nodes; a node forgotten while it was
        stalled, that took jobs before it registered again and then died, is found here.
        A list whose queue is unknown, or ambiguous (see ``keys.inprogress_owner``), is
        left alone.
        """
        next_cursor, found = self.client.scan(
            cursor, match=keys.INPROGRESS_PATTERN, count=SWEEP_COUNT
        )
        if not found:
            return int(next_cursor), []
        pipe = self.client.pipeline(transaction=False)
        pipe.smembers(keys.QUEUES)
        pipe.smembers(keys.NODES)
        queue_names, node_ids = pipe.execute()
        queues = [_text(q) or "" for q in queue_names]
        registered = {_text(n) for n in node_ids} | {self.facts.node_id}
        lists = []
        for key in found:
            owner = keys.inprogress_owner(_text(key) or "", queues)
            if owner is not None and owner[1] not in registered:
                lists.append(owner)
        return int(next_cursor), lists

    def _identity_of(self, node_id: str) -> str:
        host, pid = self.client.hmget(keys.node_info_key(node_id), "host", "pid")
        if host is None or pid is None:
            return ""
        name = host.decode() if isinstance(host, bytes) else str(host)
        return keys.process_identity(name, int(pid), node_id)

    def leave(self) -> None:
        """At a clean stop: drop the lease and, if nothing is left in progress, the rest.

        The lease is dropped only if it is still ours: if this node's lease had
        expired and another incarnation took the id, that one keeps it.
        """
        node = self.facts.node_id
        lease = keys.node_lease_key(node)
        with self.client.pipeline(transaction=True) as guard:
            try:
                guard.watch(lease)  # type: ignore[no-untyped-call]  # redis-py
                if _text(guard.get(lease)) == self.facts.epoch:
                    guard.multi()
                    guard.delete(lease)
                    guard.execute()
            except redis.WatchError:
                pass  # it changed hands meanwhile: not ours to drop
        pipe = self.client.pipeline(transaction=False)
        pipe.srem(keys.PROCESSES, self.facts.identity)
        pipe.delete(
            self.facts.identity,
            keys.process_workers_key(self.facts.identity),
            keys.process_signals_key(self.facts.identity),
            keys.node_running_key(node),
            keys.node_tree_key(node),
        )
        pipe.smembers(keys.node_queues_key(node))
        queues = pipe.execute()[-1]
        self.scripts.forget_node(
            self.client, node, self.facts.identity, sorted(q.decode() for q in queues)
        )

    def close(self) -> None:
        self.client.close()
