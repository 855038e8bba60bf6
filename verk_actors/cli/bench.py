"""``verk-actors bench``: the standard benchmark, printed (see ``verk_actors.bench.drain``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from verk_actors.bench.drain import DEFAULT_JOBS, BenchOptions, BenchResult, run_bench
from verk_actors.bench.measure import PICKUP_GAP, Progress
from verk_actors.bench.workload import QUEUE
from verk_actors.cli.common import EXIT_OK, log_level, non_negative, positive, positive_float
from verk_actors.config.queue_modes import split_mode
from verk_actors.config.queue_spec import DEFAULT_CONCURRENCY
from verk_actors.config.settings import read_bool
from verk_actors.errors import ConfigurationError


def add_parser(commands: Any) -> None:
    """Add ``bench`` to the subcommands."""
    parser = commands.add_parser(
        "bench",
        help="run the standard benchmark and print jobs/s, latency, commands, memory",
        description=(
            "Enqueue N no-op jobs (each does one INCR on a second, private Redis), start a "
            "node with the default configuration, and time the drain; optionally measure "
            "the pickup latency of an idle node. Without --redis-url everything runs on "
            "an embedded Valkey in a temporary directory. A given --redis-url must point "
            "at an empty database (e.g. redis://host:6379/15): the bench refuses one that "
            f"holds keys unless --force, uses only the queue {QUEUE!r}, and never flushes."
        ),
    )
    parser.add_argument(
        "--jobs", type=positive, default=DEFAULT_JOBS, help="jobs to drain (default 20,000)"
    )
    parser.add_argument(
        "--concurrency",
        type=positive,
        help=f"worker slots of the node (default: the node's default, {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--min-workers",
        type=non_negative,
        help="start only this many workers, more as jobs come (the lazy pool; default: all)",
    )
    parser.add_argument(
        "--mode",
        default="process",
        help="how the queue runs its jobs: process (default), threads[:N] or async[:N] "
        "(N jobs at once per worker process)",
    )
    parser.add_argument(
        "--sleep",
        type=positive_float,
        default=0.0,
        help="seconds each job waits before its INCR (simulated I/O; awaited in async mode)",
    )
    parser.add_argument(
        "--waiting",
        type=non_negative,
        default=0,
        help="jobs left waiting in the queue behind the timed ones (a long queue; "
        "e.g. 1000000), deleted at the end",
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="also measure idle pickup latency: 200 jobs enqueued 10 ms apart",
    )
    parser.add_argument(
        "--no-incr",
        dest="incr",
        action="store_false",
        help="jobs do nothing at all (no INCR on the second Redis)",
    )
    parser.add_argument(
        "--redis-url",
        help="run against this Redis instead of an embedded Valkey (an empty database)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run on a --redis-url database that holds keys (they are left alone)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--log-level",
        type=log_level,
        default="WARNING",
        help="log level of the node's actors: DEBUG, INFO, WARNING, ERROR or CRITICAL "
        "(default WARNING)",
    )
    parser.add_argument(
        "--job-logs",
        action="store_true",
        help="log every job's start and end (with --log-level INFO: what those lines cost)",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus metrics on a free port while draining (what counting costs)",
    )
    parser.add_argument(
        "--metrics-history",
        type=_flag,
        default=True,
        metavar="true|false",
        help="record the job metrics history in Redis, as nodes do by default (false: "
        "what recording costs)",
    )
    parser.set_defaults(run=run)


def _flag(text: str) -> bool:
    try:
        return read_bool(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures on stdout (progress goes to stderr)."""
    mode, per_process = split_mode(f"--mode {args.mode}", args.mode)
    options = BenchOptions(
        jobs=args.jobs,
        concurrency=args.concurrency,
        min_workers=args.min_workers,
        latency=args.latency,
        waiting=args.waiting,
        incr=args.incr,
        redis_url=args.redis_url,
        force=args.force,
        log_level=args.log_level,
        job_logs=args.job_logs,
        metrics=args.metrics,
        mode=mode,
        per_process=per_process,
        sleep=args.sleep,
        metrics_history=args.metrics_history,
    )
    result = run_bench(options, Progress(sys.stderr))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_report(result))
    return EXIT_OK


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def format_report(result: BenchResult) -> str:
    """The figures as a few aligned lines."""
    d = result.to_dict()
    job = "no-op + INCR on a second Redis" if result.incr else "no-op"
    top = ", ".join(
        f"{name} {n / result.jobs:.2f}" for name, n in list(result.commands.items())[:5]
    )
    behind = f", {result.waiting:,} more waiting behind them" if result.waiting else ""
    lines = [
        f"{result.system} bench: {result.jobs:,} jobs ({job}){behind}, {result.setting}, "
        f"{result.redis}; {result.client}",
        f"  enqueue_many   {d['enqueue_jobs_per_s']:>10,.0f} jobs/s  "
        f"({result.jobs:,} jobs in {result.enqueue_seconds:.2f} s, before the node started)",
        f"  drain          {result.drain.rate:>10,.0f} jobs/s  "
        f"({result.drain.jobs:,} jobs in {result.drain.seconds:.2f} s, first job to last; "
        f"{result.drain.wall:.2f} s from node start)",
    ]
    if result.drain.steal:
        lines.append(
            f"  CPU steal      {result.drain.steal:>10.0%} of the machine's CPU time went to "
            "other guests of the host during the drain (compare runs with little)"
        )
    if result.pickups:
        lines.append(
            f"  pickup (idle)  p50 {d['pickup_p50_ms']:.2f} ms  p99 {d['pickup_p99_ms']:.2f} ms"
            f"  max {d['pickup_max_ms']:.2f} ms  ({len(result.pickups)} jobs, "
            f"{PICKUP_GAP * 1000:g} ms apart)"
        )
    if result.node_cpu:
        lines.append(
            f"  node CPU       {d['node_cpu_us_per_job']:>10,.1f} µs per job (its processes, "
            "from start to the end of the drain)"
        )
    lines.append(
        f"  Redis          {result.commands_per_job:>10.2f} commands per job, enqueue included"
        f"  (enqueue {result.enqueue_commands_per_job:.3f}; then {top})"
    )
    if result.peak_rss:
        lines.append(
            f"  node memory    peak RSS {_mb(result.peak_rss)} over {result.processes} "
            f"processes (PSS {_mb(result.peak_pss)}); per worker slot "
            f"{_mb(d['rss_per_slot_bytes'])} RSS, {_mb(d['pss_per_slot_bytes'])} PSS"
        )
    else:
        lines.append("  node memory    n/a (needs Linux /proc)")
    return "\n".join(lines)
