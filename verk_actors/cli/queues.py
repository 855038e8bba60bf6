"""``verk-actors queues``: list them, peek at one, delete a job, clear one."""

from __future__ import annotations

import argparse
import time
from typing import Any

from verk_actors.cli._server import server_line, with_server
from verk_actors.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    add_common,
    add_paging,
    add_yes,
    connected,
    print_json,
    redis_url,
    refuse_without_yes,
    say,
)
from verk_actors.cli.stats import queue_rows
from verk_actors.cli.table import args_text, clip, relative, table
from verk_actors.errors import NotFoundError
from verk_actors.jobs.stored_job import StoredJob
from verk_actors.store.admin.queues import Queue, queue_names
from verk_actors.store.admin.stats import queue_stats


def add_parsers(commands: Any) -> None:
    """Add ``queues`` and its actions to the subcommands."""
    queues = commands.add_parser(
        "queues",
        help="list queues; peek, delete a job, clear",
        description="The queues in the 'queues' set: size, latency, in progress, state.",
    )
    add_common(queues)
    queues.set_defaults(run=run_list)
    actions = queues.add_subparsers(dest="action", metavar="ACTION")

    listing = actions.add_parser("list", help="list the queues (the default)")
    add_common(listing, leaf=True)
    listing.set_defaults(run=run_list)

    peek = actions.add_parser("peek", help="pending jobs of a queue, next to run first")
    peek.add_argument("name", metavar="NAME", help="the queue to look into, e.g. default")
    add_paging(peek)
    add_common(peek, leaf=True)
    peek.set_defaults(run=run_peek)

    delete = actions.add_parser("delete", help="delete one pending job by jid")
    delete.add_argument("name", metavar="NAME", help="the queue holding the job")
    delete.add_argument("jid", metavar="JID", help="the job's id")
    add_common(delete, leaf=True)
    delete.set_defaults(run=run_delete)

    clear = actions.add_parser("clear", help="delete every pending job of a queue")
    clear.add_argument("name", metavar="NAME", help="the queue to empty")
    add_yes(clear)
    add_common(clear, leaf=True)
    clear.set_defaults(run=run_clear)


def run_list(args: argparse.Namespace) -> int:
    """Print every queue with its numbers."""
    url = redis_url(args)
    with connected(args, url) as client:
        stats = queue_stats(client)
    if args.json:
        print_json(
            with_server(
                url,
                {
                    "queues": [
                        {
                            "name": q.name,
                            "size": q.size,
                            "latency": q.latency,
                            "in_progress": q.in_progress,
                            "processed": q.processed,
                            "failed": q.failed,
                            "paused": q.paused,
                        }
                        for q in stats
                    ]
                },
            )
        )
    else:
        say(server_line(url))
        say(queue_rows(stats))
    return EXIT_OK


def job_rows(jobs: list[StoredJob], offset: int, now: float) -> str:
    """Pending jobs as a table (malformed ones shown raw)."""
    rows: list[list[Any]] = []
    for pos, stored in enumerate(jobs, start=offset):
        job = stored.job
        if job is None:
            rows.append([pos, stored.jid, "(malformed)", clip(stored.text), stored.error])
        else:
            enqueued = relative(job.enqueued_at, now)
            rows.append([pos, job.jid, job.class_name, args_text(job.args), enqueued])
    return table(["#", "JID", "CLASS", "ARGS", "ENQUEUED"], rows)


def run_peek(args: argparse.Namespace) -> int:
    """Print a page of a queue's pending jobs."""
    url = redis_url(args)
    with connected(args, url) as client:
        queue = Queue(client, args.name)
        jobs = queue.peek(args.offset, args.limit)
        size = queue.size()
        if not jobs and not queue.exists():
            known = ", ".join(queue_names(client)) or "none yet"
            raise NotFoundError(f"there is no queue {args.name!r}; known queues: {known}")
    if args.json:
        print_json(
            with_server(
                url,
                {
                    "queue": args.name,
                    "size": size,
                    "offset": args.offset,
                    "jobs": [s.to_dict() for s in jobs],
                },
            )
        )
        return EXIT_OK
    say(server_line(url))
    if not jobs:
        say(f"queue {args.name!r} has {size} pending jobs; none from #{args.offset}")
        return EXIT_OK
    say(job_rows(jobs, args.offset, time.time()))
    last = args.offset + len(jobs) - 1
    say(f"\njobs #{args.offset}-#{last} of {size}, next to run first (--offset/--limit for more)")
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    """Delete one pending job by jid (exit 3 if it is not there)."""
    url = redis_url(args)
    with connected(args, url) as client:
        removed = Queue(client, args.name).delete(args.jid)
    if args.json:
        print_json(with_server(url, {"queue": args.name, "jid": args.jid, "deleted": removed}))
    else:
        say(server_line(url))
        say(f"deleted job {args.jid} from queue {args.name}")
    return EXIT_OK


def run_clear(args: argparse.Namespace) -> int:
    """Delete every pending job of a queue; needs --yes."""
    if refuse_without_yes(args, f"clearing queue {args.name!r}", f"queues clear {args.name}"):
        return EXIT_USAGE
    url = redis_url(args)
    with connected(args, url) as client:
        removed = Queue(client, args.name).clear()
    if args.json:
        print_json(with_server(url, {"queue": args.name, "deleted": removed}))
    else:
        say(server_line(url))
        say(
            f"cleared queue {args.name}: {removed} pending jobs deleted "
            "(jobs running now are not touched)"
        )
    return EXIT_OK
