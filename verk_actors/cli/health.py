"""``verk-actors health``: exit 0 when a node is alive, 1 with the reason when not.

Made for probes (a Kubernetes ``exec`` liveness or readiness probe, a container
``HEALTHCHECK``, a monitoring check): one line, an exit code, a bounded wait.

A node is alive while its heartbeat lease ``verk:node:<id>`` is in Redis: the node
renews it every ``heartbeat_interval`` and it lives one and a half of them, so a node
that died, hangs, or cannot reach Redis loses it within two heartbeats (and its jobs
are then recovered by the other nodes). Without ``--node``, the nodes of this host
(``socket.gethostname()``, as each node records it) are looked at, and one alive is
enough: a node restarted in the same container has a new id, and the old one stays
registered, without a lease, until a live node recovers its jobs. A node that works
on no queue is not taking jobs, and is reported so.
"""

from __future__ import annotations

import argparse
import socket
import time
from typing import Any

import attrs

from verk_actors.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    add_common,
    positive_float,
    print_json,
    say,
    warn,
)
from verk_actors.cli.common import redis_url as configured_url
from verk_actors.config.redis_url import redact_url
from verk_actors.store.admin.nodes import NodeInfo, find_node, list_nodes
from verk_actors.store.connection import Connection, connect
from verk_actors.store.failures import REDIS_ERRORS, describe

DEFAULT_TIMEOUT = 2.0


@attrs.frozen
class Health:
    """What a probe learns: healthy or not, why, and the nodes it looked at."""

    healthy: bool
    reason: str
    nodes: tuple[NodeInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "reason": self.reason,
            "nodes": [node.to_dict() for node in self.nodes],
        }


def add_parser(commands: Any) -> None:
    """Add ``health`` to the subcommands."""
    parser = commands.add_parser(
        "health",
        help="exit 0 if a node of this host (or --node ID) is alive, else 1 and why",
        description=(
            "Check that a node is alive and taking jobs: its heartbeat lease is in Redis "
            "and it works on at least one queue. Without --node, any node of this host "
            "will do. Exit 0 and one line on stdout when it is; exit 1 and the reason on "
            "stderr when it is not, or when Redis does not answer within --timeout. For "
            "Kubernetes exec probes and container health checks."
        ),
    )
    parser.add_argument("--node", metavar="ID", help="the node id to check (default: this host's)")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"most seconds to wait for Redis (default {DEFAULT_TIMEOUT:g})",
    )
    add_common(parser)
    parser.set_defaults(run=run)


def _beat(node: NodeInfo, now: float) -> str:
    return (
        "no heartbeat recorded"
        if node.beat is None
        else f"last heartbeat {now - node.beat:.1f} s ago"
    )


def _alive(node: NodeInfo, now: float) -> Health:
    if not node.queues:
        return Health(False, f"node {node.node_id} is alive but works on no queue", (node,))
    queues = ", ".join(
        q.name if q.concurrency is None else f"{q.name}={q.concurrency}" for q in node.queues
    )
    busy = "?" if node.busy is None else node.busy
    return Health(
        True,
        f"node {node.node_id} alive (host {node.host or '?'}, pid {node.pid or '?'}): "
        f"{_beat(node, now)}, queues {queues}, {busy} busy",
        (node,),
    )


def check_node(client: Connection, node_id: str, now: float) -> Health:
    """The health of node ``node_id``."""
    node = find_node(client, node_id)
    if node is None:
        return Health(False, f"no node {node_id} in Redis (never started, or stopped)")
    if not node.alive:
        return Health(
            False,
            f"node {node_id} has no heartbeat lease: it stopped, died or cannot reach "
            f"Redis ({_beat(node, now)})",
            (node,),
        )
    return _alive(node, now)


def check_host(client: Connection, host: str, now: float) -> Health:
    """Healthy if a node of ``host`` is alive and works on a queue."""
    here = tuple(n for n in list_nodes(client) if n.host == host)
    alive = [n for n in here if n.alive]
    if not here:
        return Health(False, f"no node of host {host} in Redis; give --node ID for another")
    if not alive:
        ids = ", ".join(n.node_id for n in here)
        return Health(
            False,
            f"no node of host {host} holds a heartbeat lease ({len(here)} registered, all "
            f"stopped or dead: {ids})",
            here,
        )
    checked = [_alive(n, now) for n in alive]
    healthy = [h for h in checked if h.healthy]
    if not healthy:
        return checked[0]
    return Health(True, "; ".join(h.reason for h in healthy), tuple(alive))


def run(args: argparse.Namespace) -> int:
    """Look the node up in Redis; print one line; exit 0 if healthy, else 1."""
    url = configured_url(args)
    client = connect(
        url, name="verk:health", socket_timeout=args.timeout, connect_timeout=args.timeout
    )
    try:
        now = time.time()
        if args.node is None:
            health = check_host(client, socket.gethostname(), now)
        else:
            health = check_node(client, args.node, now)
    except REDIS_ERRORS as exc:
        health = Health(False, f"cannot reach Redis at {redact_url(url)}: {describe(exc)}")
    finally:
        client.close()
    if args.json:
        print_json({"redis": redact_url(url), **health.to_dict()})
    elif health.healthy:
        say(f"ok: {health.reason}")
    else:
        warn(f"unhealthy: {health.reason}")
    return EXIT_OK if health.healthy else EXIT_FAILURE
