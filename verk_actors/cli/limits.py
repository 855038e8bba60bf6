"""``verk-actors limits``: the rate and concurrency limiters, their use and holders."""

from __future__ import annotations

import argparse
import time
from typing import Any

from verk_actors.cli._server import server_line, with_server
from verk_actors.cli.common import EXIT_OK, add_common, connected, print_json, redis_url, say
from verk_actors.cli.table import duration, table
from verk_actors.store.admin.limits import LimiterStatus, limiter_statuses


def add_parser(commands: Any) -> None:
    """Add ``limits``."""
    limits = commands.add_parser(
        "limits",
        help="list the rate and concurrency limiters: limit, use, holders",
        description=(
            "The limiters jobs have taken in the last 7 days: for a concurrent one the "
            "slots held now (job, node, lease left), for a window the takes in its "
            "current window."
        ),
    )
    add_common(limits)
    limits.set_defaults(run=run_limits)


def _rule(status: LimiterStatus) -> str:
    if status.kind == "concurrent":
        return f"{status.limit} at once (lease {duration(status.seconds)})"
    if status.kind == "window":
        return f"{status.limit} per {duration(status.seconds)}"
    return "?"


def run_limits(args: argparse.Namespace) -> int:
    """Print every limiter with its use and holders."""
    url = redis_url(args)
    with connected(args, url) as client:
        statuses = limiter_statuses(client)
    if args.json:
        print_json(with_server(url, {"limits": [s.to_dict() for s in statuses]}))
        return EXIT_OK
    say(server_line(url))
    if not statuses:
        say("no limiters yet: a limiter appears when a job first takes it")
        return EXIT_OK
    now = time.time()
    rows = []
    for status in statuses:
        if status.kind == "concurrent":
            held = ", ".join(
                f"{h.jid} on {h.node} ({duration(max(h.at - now, 0))} left)" for h in status.holders
            )
        else:
            held = ""
        rows.append(
            [
                status.name,
                status.kind,
                _rule(status),
                f"{status.in_use}/{status.limit}",
                held or "-",
            ]
        )
    say(table(["NAME", "KIND", "LIMIT", "IN USE", "HELD BY"], rows))
    return EXIT_OK
