"""The nodes sharing a Redis: who they are, whether they are alive, what they run.

A node's id is in ``verk_nodes`` once it has taken jobs; it is alive while its lease
``verk:node:<id>`` exists; it describes itself in the hash ``verk:node:<id>:info``
(host, pid, started_at, queues, busy, admin_port, beat, version). Whatever part of
that hash is missing or unreadable is shown as unknown.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import redis

from verk_actors.jobs.stored_job import as_text
from verk_actors.store import keys

INFO_FIELDS = ("host", "pid", "started_at", "queues", "busy", "admin_port", "beat", "version")


@attrs.frozen
class NodeQueue:
    """A queue a node works on, and how many of its jobs run at once there."""

    name: str
    concurrency: int | None = None


@attrs.frozen
class NodeInfo:
    """One node as Redis shows it."""

    node_id: str
    alive: bool
    host: str | None = None
    pid: int | None = None
    started_at: float | None = None
    queues: tuple[NodeQueue, ...] = ()
    busy: int | None = None
    admin_port: int | None = None
    beat: float | None = None
    version: str | None = None
    extra: dict[str, str] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the node."""
        out = attrs.asdict(self, recurse=True)
        out["queues"] = [attrs.asdict(q) for q in self.queues]
        return out


def _number(raw: str | None, kind: type[int] | type[float]) -> Any:
    if raw is None:
        return None
    try:
        return kind(float(raw)) if kind is int else kind(raw)
    except (ValueError, OverflowError):
        return None


def _queues(raw: str | None) -> tuple[NodeQueue, ...]:
    if not raw:
        return ()
    try:
        items = json.loads(raw)
    except ValueError:
        return ()
    out: list[NodeQueue] = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            concurrency = item.get("concurrency")
            ok = isinstance(concurrency, int) and not isinstance(concurrency, bool)
            out.append(NodeQueue(item["name"], concurrency if ok else None))
        elif isinstance(item, str):
            out.append(NodeQueue(item))
    return tuple(out)


def parse_node(node_id: str, alive: bool, info: dict[str, str]) -> NodeInfo:
    """A NodeInfo from the fields of its info hash (already decoded to text)."""
    return NodeInfo(
        node_id=node_id,
        alive=alive,
        host=info.get("host"),
        pid=_number(info.get("pid"), int),
        started_at=_number(info.get("started_at"), float),
        queues=_queues(info.get("queues")),
        busy=_number(info.get("busy"), int),
        admin_port=_number(info.get("admin_port"), int) or None,  # 0: no admin port
        beat=_number(info.get("beat"), float),
        version=info.get("version"),
        extra={k: v for k, v in info.items() if k not in INFO_FIELDS},
    )


def node_ids(client: redis.Redis) -> list[str]:
    """Every id in ``verk_nodes``, sorted."""
    return sorted(as_text(n) for n in client.smembers(keys.NODES))


def list_nodes(client: redis.Redis) -> list[NodeInfo]:
    """Every node in ``verk_nodes``, alive or not, by id."""
    ids = node_ids(client)
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for node_id in ids:
        pipe.exists(keys.node_lease_key(node_id))
        pipe.hgetall(keys.node_info_key(node_id))
    results = pipe.execute()
    nodes = []
    for i, node_id in enumerate(ids):
        alive, info = results[2 * i], results[2 * i + 1]
        text = {as_text(k): as_text(v) for k, v in info.items()}
        nodes.append(parse_node(node_id, bool(alive), text))
    return nodes


def find_node(client: redis.Redis, node_id: str) -> NodeInfo | None:
    """The node ``node_id`` as Redis shows it; None if Redis knows nothing of it."""
    pipe = client.pipeline(transaction=False)
    pipe.exists(keys.node_lease_key(node_id))
    pipe.hgetall(keys.node_info_key(node_id))
    pipe.sismember(keys.NODES, node_id)
    alive, info, registered = pipe.execute()
    if not (alive or info or registered):
        return None
    text = {as_text(k): as_text(v) for k, v in info.items()}
    return parse_node(node_id, bool(alive), text)


def running_count(client: redis.Redis, node_id: str) -> int:
    """How many jobs the node's workers run, as the node last wrote them."""
    return int(client.hlen(keys.node_running_key(node_id)))


def node_tree(client: redis.Redis, node_id: str) -> dict[str, Any] | None:
    """The live tree node ``node_id`` last published (JSON as it wrote it: ``at``,
    ``heartbeat_interval``, ``tree``); None when there is none (the node is gone, or
    older than this feature), or it is not a JSON object."""
    raw = client.get(keys.node_tree_key(node_id))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
