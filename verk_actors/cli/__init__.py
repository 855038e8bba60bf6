"""The ``verk-actors`` command: ``build_parser()`` builds it, ``main(argv)`` runs it.

Subcommands::

    start                          run a node until SIGINT/SIGTERM
    stats [--watch [SECONDS]]      totals, queues, recent days, nodes
    nodes                          the nodes sharing this Redis, alive or dead
    queues [list]                  every queue: size, latency, in progress, state
    queues peek NAME               pending jobs, next to run first
    queues delete NAME JID         delete one pending job
    queues clear NAME --yes        delete every pending job of a queue
    retry|scheduled|dead list      a page of the set
    retry|scheduled|dead show JID  every field of one job
    retry|scheduled|dead delete JID
    retry|scheduled|dead retry JID|--all     enqueue now (exactly once, even if others race)
    retry|scheduled|dead clear --yes
    pause QUEUE [--force] / resume QUEUE   cluster-wide, kept in Redis
    enqueue CLASS [ARG...]         each ARG a JSON value; --queue, --at or --in
    cron [list]                    periodic jobs: schedule, next and last run
    limits                         rate and concurrency limiters: limit, use, holders
    bench [--jobs N] [--latency]   the standard benchmark: jobs/s, pickup, commands, memory
    tree [--format text|mermaid|dot]  the live supervision tree of a running node
    health [--node ID]             exit 0 if a node of this host (or ID) is alive, else 1
    web [--bind HOST:PORT]         the web dashboard and its JSON API (the web extra)

All but ``start`` speak to Redis directly, whether or not a node runs, print aligned
tables under a line naming the Redis server, or with ``--json`` a JSON object whose
``redis`` key names it, on stdout; errors go to stderr.

Configuration, first found wins: flags (``--redis-url``...), ``VERK_*`` environment
variables (``VERK_REDIS_URL``...), the TOML file given by ``--config FILE`` or
``VERK_CONFIG`` (keys named as Settings fields, see ``verk_actors.config.file``),
then the defaults.

Exit codes:

    0    success
    1    failure at run time: Redis unreachable or refusing a command, node died
    2    bad usage or configuration: unknown option, bad config file or value,
         a destructive command without ``--yes``
    3    not found: no job with that jid, no such queue, or it was just taken by
         someone else
    130  interrupted (Ctrl-C), except ``stats --watch``, which Ctrl-C ends with 0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from verk_actors.cli import (
    batches,
    bench,
    control,
    cron,
    enqueue,
    health,
    limits,
    process_signals,
    queues,
    sets,
    start,
    stats,
    tree,
    web,
)
from verk_actors.cli.common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
)
from verk_actors.errors import ConfigurationError, InvalidJobError, NotFoundError, VerkError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

USAGE_ERRORS = (ConfigurationError, InvalidJobError)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="verk-actors",
        description="Sidekiq-compatible background jobs on Redis, run by a Thespian actor tree.",
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 not found.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    start.add_parser(commands)
    stats.add_parsers(commands)
    queues.add_parsers(commands)
    sets.add_parsers(commands)
    control.add_parsers(commands)
    process_signals.add_parsers(commands)
    enqueue.add_parsers(commands)
    cron.add_parsers(commands)
    batches.add_parsers(commands)
    limits.add_parser(commands)
    bench.add_parser(commands)
    tree.add_parser(commands)
    health.add_parser(commands)
    web.add_parser(commands)
    return parser


def _fail(exc: Exception, code: int) -> int:
    print(f"verk-actors: error: {exc}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        code: int = args.run(args)
    except USAGE_ERRORS as exc:
        return _fail(exc, EXIT_USAGE)
    except NotFoundError as exc:
        return _fail(exc, EXIT_NOT_FOUND)
    except VerkError as exc:
        return _fail(exc, EXIT_FAILURE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code
