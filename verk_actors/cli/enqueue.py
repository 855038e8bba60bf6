"""``verk-actors enqueue CLASS [ARGS...]``: enqueue one job; each ARG is a JSON value."""

from __future__ import annotations

import argparse
import json
import re
import time
from datetime import datetime
from typing import Any

from verk_actors.cli._launcher import use_import_path
from verk_actors.cli._server import server_line, with_server
from verk_actors.cli.common import EXIT_OK, add_common, connected, print_json, redis_url, say
from verk_actors.cli.table import utc
from verk_actors.config.file import resolve_settings
from verk_actors.errors import ConfigurationError, JobError, VerkError
from verk_actors.store.client import Client

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
DELAY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*$")


def add_parsers(commands: Any) -> None:
    """Add ``enqueue``."""
    parser = commands.add_parser(
        "enqueue",
        help="enqueue one job (args as JSON values)",
        description=(
            "Enqueue a job in Sidekiq's format. Each ARG is one JSON value: "
            "verk-actors enqueue HardWorker '\"bob\"' 5 '{\"a\": [1]}'"
        ),
    )
    parser.add_argument("worker", metavar="CLASS", help="the worker class name, e.g. HardWorker")
    parser.add_argument("job_args", metavar="ARG", nargs="*", help="a JSON value per argument")
    parser.add_argument("--queue", help="queue to enqueue to (default: default)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        "--at", help="run at this time: unix seconds or ISO 8601 (naive = local time)"
    )
    when.add_argument(
        "--in", dest="delay", metavar="DELAY", help="run after DELAY: seconds, or 90s, 5m, 2h, 1d"
    )
    parser.add_argument(
        "--unique-for",
        type=float,
        metavar="SECONDS",
        help="a unique job: not enqueued while a job of the same class, queue and args "
        "holds the lock, which lives at most SECONDS",
    )
    parser.add_argument(
        "--unique-until",
        choices=("success", "start"),
        help="when the lock is freed: when the job succeeds or dies (default), or starts",
    )
    add_common(parser)
    parser.set_defaults(run=run)


def parse_args_json(texts: list[str]) -> list[Any]:
    """Each text as a JSON value; ConfigurationError saying which one is not JSON."""
    values = []
    for n, text in enumerate(texts, start=1):
        try:
            values.append(json.loads(text))
        except ValueError:
            raise ConfigurationError(
                f"argument {n} ({text!r}) is not a JSON value; quote strings twice, "
                f"e.g. '\"{text}\"', and write numbers, true, false, null, [..] or {{..}}"
            ) from None
    return values


def parse_at(text: str) -> float:
    """Unix seconds from ``--at``: a number, or an ISO 8601 date-time."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ConfigurationError(
            f"--at {text!r} is neither unix seconds nor an ISO 8601 time; "
            "write e.g. --at 2030-01-01T09:00:00Z or --at 1893488400"
        ) from None


def parse_delay(text: str) -> float:
    """Seconds from ``--in``: ``90``, ``90s``, ``5m``, ``2h``, ``1d``."""
    match = DELAY.match(text)
    if not match:
        raise ConfigurationError(
            f"--in {text!r} is not a delay; write seconds or a number with s, m, h or d, e.g. 5m"
        )
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def _enqueue(
    client: Client, worker: str, job_args: list[Any], at: float | None, options: dict[str, Any]
) -> tuple[str | None, bool]:
    """``Client.enqueue_result``; what a client middleware raises becomes a JobError
    saying so."""
    try:
        return client.enqueue_result(worker, *job_args, at=at, **options)
    except VerkError:
        raise
    except Exception as exc:
        if not client.middleware.entries():
            raise
        raise JobError(
            f"not enqueued: a client middleware raised {type(exc).__name__}: {exc} "
            "(nothing written)"
        ) from exc


def run(args: argparse.Namespace) -> int:
    """Enqueue the job; print its jid."""
    job_args = parse_args_json(args.job_args)
    at: float | None = None
    if args.at is not None:
        at = parse_at(args.at)
    elif args.delay is not None:
        at = time.time() + parse_delay(args.delay)
    options: dict[str, Any] = {"queue": args.queue} if args.queue else {}
    if args.unique_for is not None or args.unique_until is not None:
        options.update(unique_for=args.unique_for, unique_until=args.unique_until)
    url = redis_url(args)
    settings = resolve_settings(config=getattr(args, "config", None)).settings
    if settings.client_middleware:
        use_import_path(settings.path)  # the middleware's modules, as the node finds them
    with connected(args, url) as redis_client:
        client = Client(redis_client, url=url, middleware=settings.client_middleware)
        jid, written = _enqueue(client, args.worker, job_args, at, options)
    queue = args.queue or "default"
    scheduled = at is not None and at > time.time()
    if args.json:
        print_json(
            with_server(
                url,
                {
                    "jid": jid,
                    "class": args.worker,
                    "queue": queue,
                    "at": at if scheduled else None,
                    "duplicate": not written and not client.refused,
                    "refused": client.refused,
                },
            )
        )
        return EXIT_OK
    say(server_line(url))
    if client.refused:
        say(f"not enqueued: a client middleware refused this {args.worker} job (nothing written)")
    elif not written:
        say(
            f"not enqueued: job {jid} of {args.worker} with these args on queue {queue} "
            "holds the unique lock (it waits or runs); nothing was written"
        )
    elif scheduled:
        say(f"scheduled {args.worker} on queue {queue} for {utc(at)} UTC: jid {jid}")
    else:
        say(f"enqueued {args.worker} to queue {queue}: jid {jid}")
    return EXIT_OK
