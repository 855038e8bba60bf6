"""What every Redis-side subcommand shares: its options, its connection, its output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from verk_actors.actors.system import check_log_level
from verk_actors.config.file import CONFIG_ENV, resolve_settings
from verk_actors.errors import ConfigurationError
from verk_actors.store.connection import Connection, session
from verk_actors.store.embedded import DEFAULT_DATA_DIR, running_url

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INTERRUPTED = 130


def add_common(parser: argparse.ArgumentParser, *, leaf: bool = False) -> None:
    """``--redis-url``, ``--config`` and ``--json``.

    A group (``queues``, ``retry``...) and its actions both take them; on an action
    they default to "not given", so ``retry --json list`` and ``retry list --json``
    both work.
    """
    default: Any = argparse.SUPPRESS if leaf else None
    parser.add_argument(
        "--redis-url", default=default, help="Redis URL (env VERK_REDIS_URL); rediss:// for TLS"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help=f"TOML file of settings (env {CONFIG_ENV}); flags and VERK_* variables win over it",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if leaf else False,
        help="print JSON for scripts instead of tables",
    )


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text} is less than {least}")
    return value


def non_negative(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    return _whole(text, 0)


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _whole(text, 1)


def positive_float(text: str) -> float:
    """An argparse type: a number of seconds more than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not more than 0")
    return value


def redis_url(args: argparse.Namespace) -> str:
    """The Redis URL: ``--redis-url``, else ``VERK_REDIS_URL``, else the config file; with
    none of them, the embedded server of a node started in this directory if one runs
    (said on stderr), else the default."""
    resolved = resolve_settings(
        {"redis_url": getattr(args, "redis_url", None)}, config=getattr(args, "config", None)
    )
    if "redis_url" not in resolved.sources:
        embedded = running_url()
        if embedded is not None:
            warn(
                f"no Redis configured: using the embedded Valkey of the node in "
                f"./{DEFAULT_DATA_DIR} ({embedded})"
            )
            return embedded
    return resolved.settings.redis_url


@contextmanager
def connected(args: argparse.Namespace, url: str | None = None) -> Iterator[Connection]:
    """A client of ``url`` (default: the configured Redis); errors become RedisUnavailableError."""
    with session(url or redis_url(args), name="verk:cli") as client:
        yield client


def print_json(value: Any, *, compact: bool = False) -> None:
    """Write ``value`` as JSON on stdout."""
    indent = None if compact else 2
    sys.stdout.write(json.dumps(value, indent=indent, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def say(text: str) -> None:
    """Write a line for people on stdout."""
    sys.stdout.write(text + "\n")


def warn(text: str) -> None:
    """Write a note on stderr (so it never mixes with --json output)."""
    sys.stderr.write(f"verk-actors: {text}\n")


def add_yes(parser: argparse.ArgumentParser) -> None:
    """``--yes``, which a destructive action needs."""
    parser.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")


def refuse_without_yes(args: argparse.Namespace, what: str, command: str) -> bool:
    """True (after saying why on stderr) if ``args`` lacks ``--yes``."""
    if args.yes:
        return False
    sys.stderr.write(
        f"verk-actors: error: {what} cannot be undone; run `verk-actors {command} --yes` "
        "to confirm\n"
    )
    return True


def add_paging(parser: argparse.ArgumentParser, limit: int = 25) -> None:
    """``--offset`` and ``--limit``."""
    parser.add_argument(
        "--offset", type=non_negative, default=0, help="entries to skip (default 0)"
    )
    parser.add_argument(
        "--limit", type=non_negative, default=limit, help=f"entries to show (default {limit})"
    )


def log_level(text: str) -> str:
    """An argparse type: a log level name (``debug``, ``INFO``...), upper-cased."""
    try:
        return check_log_level(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
