"""The ``verk-actors`` command: ``build_parser()`` builds it, ``main(argv)`` runs it.

Exit codes: 0 success, 1 failure at run time (Redis unreachable, node died),
2 bad usage or configuration (as argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from verk_actors.cli import start
from verk_actors.errors import ConfigurationError, VerkError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="verk-actors",
        description="Sidekiq-compatible background jobs on Redis, run by a Thespian actor tree.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    start.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except ConfigurationError as exc:
        print(f"verk-actors: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except VerkError as exc:
        print(f"verk-actors: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return code
