"""``verk-actors batches``: the batches kept in Redis and their progress."""

from __future__ import annotations

import argparse
import time
from typing import Any

from verk_actors.cli._server import server_line, with_server
from verk_actors.cli.common import (
    EXIT_OK,
    add_common,
    connected,
    positive,
    print_json,
    redis_url,
    say,
)
from verk_actors.cli.table import relative, table
from verk_actors.jobs.batch import BatchStatus
from verk_actors.store.batches import batch_status, list_batches


def add_parsers(commands: Any) -> None:
    """Add ``batches [BID]``."""
    batches = commands.add_parser(
        "batches",
        help="list the batches and their progress, or show one",
        description=(
            "The newest batches still kept (a finished batch is kept three days, an "
            "unfinished one thirty days after its last change): jobs, pending, failures "
            "and which callbacks have been enqueued. With a BID, that batch only."
        ),
    )
    batches.add_argument("bid", nargs="?", help="show this batch only (exit 3 if unknown)")
    batches.add_argument(
        "--limit", type=positive, default=50, metavar="N", help="newest N batches (default 50)"
    )
    add_common(batches)
    batches.set_defaults(run=run_batches)


def _state(status: BatchStatus) -> str:
    if status.succeeded:
        return "succeeded"
    if status.complete:
        return "complete, with failures"
    return "running"


def run_batches(args: argparse.Namespace) -> int:
    """Print the batches (or one), newest first."""
    url = redis_url(args)
    with connected(args, url) as client:
        found = [batch_status(client, args.bid)] if args.bid else list_batches(client, args.limit)
    if args.json:
        print_json(with_server(url, {"batches": [status.to_dict() for status in found]}))
        return EXIT_OK
    say(server_line(url))
    if not found:
        say("no batches kept")
        return EXIT_OK
    now = time.time()
    rows = [
        [
            status.bid,
            status.description or "-",
            str(status.total),
            str(status.pending),
            str(status.failures),
            ", ".join(status.fired) or "-",
            _state(status),
            relative(status.created_at, now),
        ]
        for status in found
    ]
    say(
        table(
            ["BID", "DESCRIPTION", "JOBS", "PENDING", "FAILURES", "CALLED", "STATE", "MADE"], rows
        )
    )
    return EXIT_OK
