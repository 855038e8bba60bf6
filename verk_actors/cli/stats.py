"""``verk-actors stats`` (with ``--watch``) and ``verk-actors nodes``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from verk_actors.cli._server import server_line, with_server
from verk_actors.cli.common import (
    EXIT_OK,
    add_common,
    connected,
    non_negative,
    positive_float,
    print_json,
    redis_url,
    say,
)
from verk_actors.cli.table import duration, relative, table, utc
from verk_actors.store.admin.nodes import NodeInfo, list_nodes
from verk_actors.store.admin.stats import QueueStats, Snapshot, snapshot
from verk_actors.store.connection import Connection

CLEAR_SCREEN = "\x1b[H\x1b[2J"
DEFAULT_WATCH = 2.0
DEFAULT_DAYS = 7


def add_parsers(commands: Any) -> None:
    """Add ``stats`` and ``nodes`` to the subcommands."""
    stats = commands.add_parser(
        "stats",
        help="totals, queues, recent days and nodes",
        description="Counts read from Redis, as Sidekiq::Stats; works with or without a node.",
    )
    add_common(stats)
    stats.add_argument(
        "--watch",
        nargs="?",
        const=DEFAULT_WATCH,
        type=positive_float,
        metavar="SECONDS",
        help=f"refresh every SECONDS (default {DEFAULT_WATCH:g}) until Ctrl-C",
    )
    stats.add_argument(
        "--days",
        type=non_negative,
        default=DEFAULT_DAYS,
        help=f"days of history to show (default {DEFAULT_DAYS})",
    )
    stats.set_defaults(run=run_stats)

    nodes = commands.add_parser(
        "nodes",
        help="the nodes sharing this Redis, alive or dead",
        description="Every node in verk_nodes: alive (its lease exists) and what it reported.",
    )
    add_common(nodes)
    nodes.set_defaults(run=run_nodes)


def queue_rows(queues: Sequence[QueueStats]) -> str:
    """The queues table (also printed by ``verk-actors queues``)."""
    if not queues:
        return "no queues yet (a queue appears when a job is first enqueued to it)"
    return table(
        ["QUEUE", "SIZE", "LATENCY", "IN PROGRESS", "PROCESSED", "FAILED", "STATE"],
        [
            [
                q.name,
                q.size,
                duration(q.latency) if q.latency else "0",
                q.in_progress,
                q.processed,
                q.failed,
                "paused" if q.paused else "running",
            ]
            for q in queues
        ],
    )


def node_rows(nodes: Sequence[NodeInfo], now: float) -> str:
    """The nodes table."""
    if not nodes:
        return "no nodes yet (a node appears once it has started taking jobs)"
    return table(
        [
            "NODE",
            "STATE",
            "HOST",
            "PID",
            "STARTED (UTC)",
            "BEAT",
            "BUSY",
            "QUEUES",
            "ADMIN PORT",
            "VERSION",
        ],
        [
            [
                n.node_id,
                "alive" if n.alive else "dead",
                n.host,
                n.pid,
                utc(n.started_at),
                relative(n.beat, now) if n.beat is not None else None,
                n.busy,
                ",".join(
                    q.name if q.concurrency is None else f"{q.name}={q.concurrency}"
                    for q in n.queues
                )
                or None,
                n.admin_port,
                n.version,
            ]
            for n in nodes
        ],
    )


def render(snap: Snapshot, url: str) -> str:
    """The ``stats`` screen of the server at ``url``."""
    t = snap.totals
    alive = sum(n.alive for n in snap.nodes)
    summary = table(
        ["PROCESSED", "FAILED", "ENQUEUED", "SCHEDULED", "RETRIES", "DEAD", "NODES ALIVE", "BUSY"],
        [
            [
                t.processed,
                t.failed,
                t.enqueued,
                t.scheduled,
                t.retries,
                t.dead,
                f"{alive} of {len(snap.nodes)}",
                sum(n.busy or 0 for n in snap.nodes if n.alive),
            ]
        ],
    )
    parts = [
        f"verk-actors stats at {utc(snap.at)} UTC, {server_line(url)}",
        "",
        summary,
        "",
        queue_rows(snap.queues),
    ]
    if snap.history:
        parts += [
            "",
            table(
                ["DAY (UTC)", "PROCESSED", "FAILED"],
                [[d.day, d.processed, d.failed] for d in snap.history],
            ),
        ]
    return "\n".join(parts)


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def show(client: Connection, args: argparse.Namespace, url: str) -> None:
    """Print one snapshot, as a table or JSON.

    ``--watch`` clears the screen before each one only on a terminal: into a pipe or a
    file the snapshots follow one another, without escape codes.
    """
    snap = snapshot(client, days=args.days)
    if args.json:
        print_json(with_server(url, snap.to_dict()), compact=args.watch is not None)
        return
    if args.watch is not None:
        sys.stdout.write(CLEAR_SCREEN if sys.stdout.isatty() else "\n")
    say(render(snap, url))
    if args.watch is not None:
        say(f"\nrefreshing every {args.watch:g}s; Ctrl-C to stop")
    sys.stdout.flush()


def run_stats(args: argparse.Namespace) -> int:
    """Show the stats once, or every ``--watch`` seconds until Ctrl-C (exit 0)."""
    url = redis_url(args)
    with connected(args, url) as client:
        if args.watch is None:
            show(client, args, url)
            return EXIT_OK
        try:
            while True:
                show(client, args, url)
                _pause(args.watch)
        except KeyboardInterrupt:
            return EXIT_OK


def run_nodes(args: argparse.Namespace) -> int:
    """List the nodes."""
    url = redis_url(args)
    with connected(args, url) as client:
        nodes = list_nodes(client)
    if args.json:
        print_json(with_server(url, {"nodes": [n.to_dict() for n in nodes]}))
    else:
        say(server_line(url))
        say(node_rows(nodes, time.time()))
    return EXIT_OK
