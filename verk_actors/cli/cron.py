"""``verk-actors cron``: the periodic jobs the nodes run, with their next and last run."""

from __future__ import annotations

import argparse
import time
from typing import Any

from verk_actors.cli._server import server_line, with_server
from verk_actors.cli.common import EXIT_OK, add_common, connected, print_json, redis_url, say
from verk_actors.cli.table import args_text, relative, table, utc
from verk_actors.store.cron import cron_statuses


def add_parsers(commands: Any) -> None:
    """Add ``cron`` and its action ``list``."""
    cron = commands.add_parser(
        "cron",
        help="list the periodic jobs: schedule, next and last run",
        description=(
            "The cron entries nodes have run (from their settings and worker classes), "
            "with the next tick, the last tick enqueued and its jid."
        ),
    )
    add_common(cron)
    cron.set_defaults(run=run_list)
    actions = cron.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="list the cron entries (the default)")
    add_common(listing, leaf=True)
    listing.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    """Print every cron entry with its next and last run."""
    url = redis_url(args)
    with connected(args, url) as client:
        statuses = cron_statuses(client)
    now = time.time()
    if args.json:
        print_json(with_server(url, {"cron": [s.to_dict(now) for s in statuses]}))
        return EXIT_OK
    say(server_line(url))
    if not statuses:
        say("no cron entries yet: a node publishes its entries when it starts")
        return EXIT_OK
    rows = []
    for status in statuses:
        entry = status.entry
        next_tick = status.next_tick(now)
        rows.append(
            [
                status.name,
                entry.schedule if entry else "?",
                entry.tz if entry else "?",
                f"{entry.worker}{args_text(list(entry.args))}" if entry else "?",
                entry.target_queue if entry else "?",
                f"{utc(next_tick)} UTC" if next_tick is not None else "-",
                f"{utc(status.last_tick)} ({relative(status.last_tick, now)})"
                if status.last_tick is not None
                else "never",
                status.last_jid or "-",
                status.state(now),
            ]
        )
    say(
        table(
            ["NAME", "CRON", "TZ", "JOB", "QUEUE", "NEXT RUN", "LAST RUN", "LAST JID", "STATE"],
            rows,
        )
    )
    return EXIT_OK
