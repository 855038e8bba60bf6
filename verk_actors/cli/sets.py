"""``verk-actors retry|scheduled|dead``: list, show, delete, retry and clear a job set."""

from __future__ import annotations

import argparse
import json
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
from verk_actors.cli.table import args_text, clip, table, when
from verk_actors.store.admin.job_sets import JobSet, SetEntry

COMMANDS = {
    "retry": ("retry", "jobs waiting for their next try", "next try"),
    "scheduled": ("schedule", "jobs to be enqueued at a future time", "runs"),
    "dead": ("dead", "jobs that used up their retries", "died"),
}
"""command -> (set name, what it holds, what its score means)."""

TIME_FIELDS = ("created_at", "enqueued_at", "failed_at", "retried_at")


def add_parsers(commands: Any) -> None:
    """Add ``retry``, ``scheduled`` and ``dead`` with their actions."""
    for command, (set_name, holds, _) in COMMANDS.items():
        group = commands.add_parser(
            command,
            help=f"the {set_name} set: {holds}",
            description=f"The {set_name!r} sorted set: {holds}.",
        )
        add_common(group)
        group.set_defaults(set_name=set_name, command_name=command)
        actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)

        listing = actions.add_parser("list", help="a page of entries")
        add_paging(listing)
        listing.add_argument(
            "--newest-first",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="order by score, highest first (default: yes for dead, no otherwise)",
        )
        listing.set_defaults(run=run_list)

        show = actions.add_parser("show", help="every field of one job")
        show.add_argument("jid", metavar="JID", help="the job's id")
        show.set_defaults(run=run_show)

        delete = actions.add_parser("delete", help="delete one job")
        delete.add_argument("jid", metavar="JID", help="the job's id")
        delete.set_defaults(run=run_delete)

        retry = actions.add_parser(
            "retry", help="enqueue one job (or --all) now, exactly once even if others race"
        )
        which = retry.add_mutually_exclusive_group(required=True)
        which.add_argument("jid", metavar="JID", nargs="?", help="the job's id")
        which.add_argument("--all", action="store_true", help="every job of the set")
        retry.set_defaults(run=run_retry)

        clear = actions.add_parser("clear", help="delete every job of the set")
        add_yes(clear)
        clear.set_defaults(run=run_clear)

        for leaf in (listing, show, delete, retry, clear):
            add_common(leaf, leaf=True)


def entry_row(entry: SetEntry, now: float) -> list[Any]:
    """One table row: time, jid, class, queue, args, retry count, error."""
    job = entry.stored.job
    at = when(entry.score, now)
    if job is None:
        return [
            at,
            entry.jid,
            "(malformed)",
            None,
            clip(entry.stored.text, 40),
            None,
            clip(entry.stored.error or "", 60),
        ]
    error = f"{job.error_class}: {job.error_message}" if job.error_class else job.error_message
    return [
        at,
        job.jid,
        job.class_name,
        job.queue,
        args_text(job.args, 40),
        job.retry_count,
        clip(error, 60) if error else None,
    ]


def run_list(args: argparse.Namespace) -> int:
    """Print a page of the set."""
    url = redis_url(args)
    with connected(args, url) as client:
        jobs = JobSet(client, args.set_name)
        entries = jobs.page(args.offset, args.limit, newest_first=args.newest_first)
        count = jobs.count()
    if args.json:
        print_json(
            with_server(
                url,
                {
                    "set": args.set_name,
                    "count": count,
                    "offset": args.offset,
                    "entries": [e.to_dict() for e in entries],
                },
            )
        )
        return EXIT_OK
    say(server_line(url))
    if not entries:
        say(f"the {args.set_name} set has {count} jobs; none from #{args.offset}")
        return EXIT_OK
    _, _, score_means = COMMANDS[args.command_name]
    headers = [f"{score_means.upper()} (UTC)", "JID", "CLASS", "QUEUE", "ARGS", "RETRIES", "ERROR"]
    say(table(headers, [entry_row(e, time.time()) for e in entries]))
    last = args.offset + len(entries) - 1
    say(f"\nentries #{args.offset}-#{last} of {count} (--offset/--limit for more)")
    return EXIT_OK


def field_text(name: str, value: Any, now: float) -> str:
    """One field of ``show``: strings as they are, times with their UTC reading, else JSON."""
    if name in TIME_FIELDS and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value} = {when(value, now)}"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def run_show(args: argparse.Namespace) -> int:
    """Print every field of one job (exit 3 if there is none with that jid)."""
    url = redis_url(args)
    with connected(args, url) as client:
        entry = JobSet(client, args.set_name).get(args.jid)
    if args.json:
        print_json(with_server(url, entry.to_dict()))
        return EXIT_OK
    say(server_line(url))
    now = time.time()
    _, _, score_means = COMMANDS[args.command_name]
    lines = [("set", args.set_name), (score_means, when(entry.score, now))]
    fields = entry.stored.fields()
    if fields is None:
        lines += [("raw", entry.stored.text), ("error", entry.stored.error or "")]
    else:
        trace = fields.pop("error_backtrace", None)
        lines += [(k, field_text(k, v, now)) for k, v in fields.items()]
    width = max(len(k) for k, _ in lines) + 1
    say("\n".join(f"{(k + ':').ljust(width)} {v}" for k, v in lines))
    if fields is not None and isinstance(trace, list) and trace:
        say("error_backtrace:\n" + "\n".join(f"  {line}" for line in trace))
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    """Delete one job by jid (exit 3 if it is not there)."""
    url = redis_url(args)
    with connected(args, url) as client:
        removed = JobSet(client, args.set_name).delete(args.jid)
    if args.json:
        print_json(with_server(url, {"set": args.set_name, "jid": args.jid, "deleted": removed}))
    else:
        say(server_line(url))
        say(f"deleted job {args.jid} from the {args.set_name} set")
    return EXIT_OK


def run_retry(args: argparse.Namespace) -> int:
    """Enqueue one job, or every job, of the set now."""
    url = redis_url(args)
    with connected(args, url) as client:
        jobs = JobSet(client, args.set_name)
        if args.all:
            result = jobs.retry_all()
        else:
            moved = jobs.retry_now(args.jid)
    if not args.json:
        say(server_line(url))
    if args.all:
        if args.json:
            print_json(
                with_server(
                    url, {"set": args.set_name, "enqueued": result.moved, "skipped": result.skipped}
                )
            )
        else:
            say(f"enqueued {result.moved} jobs from the {args.set_name} set")
            if result.skipped:
                say(
                    f"{result.skipped} malformed entries cannot run and were left in the set; "
                    f"see them with `verk-actors {args.command_name} list` and delete them"
                )
        return EXIT_OK
    if args.json:
        print_json(with_server(url, {"set": args.set_name, "jid": args.jid, "enqueued": moved}))
    else:
        say(f"enqueued job {args.jid} from the {args.set_name} set to run now")
    return EXIT_OK


def run_clear(args: argparse.Namespace) -> int:
    """Delete the whole set; needs --yes."""
    what = f"clearing the {args.set_name} set"
    if refuse_without_yes(args, what, f"{args.command_name} clear"):
        return EXIT_USAGE
    url = redis_url(args)
    with connected(args, url) as client:
        removed = JobSet(client, args.set_name).clear()
    if args.json:
        print_json(with_server(url, {"set": args.set_name, "deleted": removed}))
    else:
        say(server_line(url))
        say(f"cleared the {args.set_name} set: {removed} jobs deleted")
    return EXIT_OK
