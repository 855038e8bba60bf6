"""The data of a node's page (its live supervision tree) and of a pending job's page.

A node publishes its tree into Redis at every heartbeat (``verk:node:<id>:tree``); the
dashboard only reads it, never joining the actor system. Like ``_views``, these return
JSON-ready dicts that the pages render (escaped) and the API returns as they are.
"""

from __future__ import annotations

import time
from typing import Any

from verk_actors.errors import NotFoundError
from verk_actors.store.admin.nodes import find_node, node_tree
from verk_actors.store.admin.queues import Queue
from verk_actors.store.connection import Connection
from verk_actors.web._views import job_detail


def _count(tree: dict[str, Any] | None) -> dict[str, int]:
    """Actors and processes in a published tree, and restarts summed."""
    actors = restarts = 0
    pids: set[Any] = set()
    pending = [tree] if tree else []
    while pending:
        node = pending.pop()
        actors += 1
        restarts += node.get("restarts") or 0
        if node.get("pid"):
            pids.add(node["pid"])
        pending.extend(c for c in node.get("children") or () if isinstance(c, dict))
    return {"actors": actors, "processes": len(pids), "restarts": restarts}


def node_page(client: Connection, node_id: str) -> dict[str, Any]:
    """A node as it describes itself, and the live tree it last published (None when
    it published none lately: stopped, dead, or not yet at its first heartbeat)."""
    node = find_node(client, node_id)
    published = node_tree(client, node_id)
    if node is None and published is None:
        raise NotFoundError(f"no node {node_id!r} on this Redis; the Busy page lists them")
    tree = published.get("tree") if published else None
    tree = tree if isinstance(tree, dict) else None
    return {
        "at": time.time(),
        "node_id": node_id,
        "node": node.to_dict() if node is not None else None,
        "published_at": published.get("at") if published else None,
        "heartbeat_interval": published.get("heartbeat_interval") if published else None,
        "counts": _count(tree),
        "tree": tree,
    }


def node_tree_view(client: Connection, node_id: str) -> dict[str, Any]:
    """``/api/nodes/<id>/tree``: the published tree alone (404 when there is none)."""
    published = node_tree(client, node_id)
    if published is None:
        raise NotFoundError(
            f"node {node_id!r} has published no live tree lately (it is not running, or "
            "has not reached its first heartbeat)"
        )
    return published


def pending_job(client: Connection, queue: str, jid: str, pos: int | None) -> dict[str, Any]:
    """A pending job of ``queue`` with every field: looked for near ``pos`` (where the
    queue page listed it) first, then through the queue."""
    found = Queue(client, queue)
    near = found.find_near(jid, pos) if pos is not None else []
    jobs = near or found.find_all(jid)
    if not jobs:
        raise NotFoundError(
            f"no pending job {jid!r} in queue {queue!r}: a node may have taken it, or it "
            "was deleted"
        )
    return {"queue": queue, "pos": pos, "copies": len(jobs), **job_detail(jobs[0])}
