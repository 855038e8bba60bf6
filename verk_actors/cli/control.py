"""``verk-actors pause QUEUE`` and ``verk-actors resume QUEUE``: cluster-wide, in Redis."""

from __future__ import annotations

import argparse
from typing import Any

from verk_actors.cli._server import server_line, with_server
from verk_actors.cli.common import EXIT_OK, add_common, connected, print_json, redis_url, say
from verk_actors.config.redis_url import redact_url
from verk_actors.errors import NotFoundError
from verk_actors.store.admin.pause import (
    is_known,
    known_queues,
    pause_queue,
    paused_queues,
    resume_queue,
)


def add_parsers(commands: Any) -> None:
    """Add ``pause`` and ``resume``."""
    pause = commands.add_parser(
        "pause",
        help="stop every node taking jobs of a queue",
        description=(
            "Pause a queue on every node sharing this Redis (the verk:paused set). Jobs "
            "can still be enqueued; running ones finish. Nodes started later obey it too. "
            "A name that no node works on and no job or queue in Redis has used is refused "
            "as a likely typo (exit 3) unless --force."
        ),
    )
    pause.add_argument("queue", metavar="QUEUE", help="the queue to pause, e.g. mail")
    pause.add_argument(
        "--force",
        action="store_true",
        help="pause it even if no node or job has used the name yet (a queue to come)",
    )
    add_common(pause)
    pause.set_defaults(run=run_pause)

    resume = commands.add_parser(
        "resume",
        help="let every node take jobs of a paused queue again",
        description="Resume a paused queue on every node sharing this Redis.",
    )
    resume.add_argument("queue", metavar="QUEUE", help="the paused queue to resume")
    add_common(resume)
    resume.set_defaults(run=run_resume)


def _report(
    args: argparse.Namespace,
    url: str,
    *,
    changed: bool,
    paused: list[str],
    done: str,
    already: str,
) -> None:
    if args.json:
        print_json(
            with_server(
                url,
                {
                    "queue": args.queue,
                    "paused": args.queue in paused,
                    "changed": changed,
                    "paused_queues": paused,
                },
            )
        )
    else:
        say(server_line(url))
        say(done if changed else already)


def run_pause(args: argparse.Namespace) -> int:
    """Pause the queue (a no-op if it is paused already)."""
    url = redis_url(args)
    with connected(args, url) as client:
        if not args.force and not is_known(client, args.queue):
            known = ", ".join(known_queues(client)) or "none yet"
            raise NotFoundError(
                f"no queue {args.queue!r} is known to the Redis at {redact_url(url)} or to "
                f"any node (known: {known}); check the name, or pass --force to pause a "
                "queue before its first use"
            )
        changed = pause_queue(client, args.queue)
        paused = paused_queues(client)
    _report(
        args,
        url,
        changed=changed,
        paused=paused,
        done=f"paused queue {args.queue}: nodes stop taking its jobs within a poll interval",
        already=f"queue {args.queue} was paused already",
    )
    return EXIT_OK


def run_resume(args: argparse.Namespace) -> int:
    """Resume the queue (a no-op if it was not paused)."""
    url = redis_url(args)
    with connected(args, url) as client:
        changed = resume_queue(client, args.queue)
        paused = paused_queues(client)
    _report(
        args,
        url,
        changed=changed,
        paused=paused,
        done=f"resumed queue {args.queue}: nodes take its jobs again",
        already=f"queue {args.queue} was not paused",
    )
    return EXIT_OK
