"""``verk-actors quiet NODE`` and ``verk-actors stop NODE``: Sidekiq's process signals.

Each pushes what Sidekiq's Web pushes for its Quiet and Stop buttons (``TSTP``,
``TERM`` onto ``<identity>-signals``); the process, a node or a Ruby Sidekiq, acts at
its next heartbeat.
"""

from __future__ import annotations

import argparse
from typing import Any

from verk_actors.cli._server import server_line, with_server
from verk_actors.cli.common import EXIT_OK, add_common, connected, print_json, redis_url, say
from verk_actors.store.admin.processes import find_process, signal_process

HELP = {
    "quiet": (
        "make a node (or Sidekiq process) take no new jobs",
        "Send TSTP, as Sidekiq's Web Quiet button does: at its next heartbeat the process "
        "takes no new jobs, lets running ones finish and shows as quiet, until it stops.",
    ),
    "stop": (
        "stop a node (or Sidekiq process) gracefully",
        "Send TERM, as Sidekiq's Web Stop button does: at its next heartbeat the process "
        "stops as on SIGTERM (running jobs get the shutdown timeout; a node's "
        "verk-actors start then exits 0).",
    ),
}


def add_parsers(commands: Any) -> None:
    """Add ``quiet`` and ``stop``."""
    for action, (short, long) in HELP.items():
        parser = commands.add_parser(action, help=short, description=long)
        parser.add_argument(
            "process", metavar="NODE", help="a node id, or a process identity (as Busy shows)"
        )
        add_common(parser)
        parser.set_defaults(run=run_signal, action=action)


def run_signal(args: argparse.Namespace) -> int:
    """Push the signal for ``args.action`` to the process named ``args.process``."""
    url = redis_url(args)
    with connected(args, url) as client:
        identity = find_process(client, args.process).identity
        signal = signal_process(client, identity, args.action)
    if args.json:
        print_json(with_server(url, {"identity": identity, "signal": signal}))
    else:
        say(server_line(url))
        say(f"sent {signal} to {identity}: it acts at its next heartbeat")
    return EXIT_OK
