"""verk_actors against Sidekiq 6.4 on the standard workload of issue 5, back to back.

::

    python -m tests.benchmarks.bench_vs_sidekiq               # one run of each
    python -m tests.benchmarks.bench_vs_sidekiq --runs 3      # medians of three
    python -m tests.benchmarks.bench_vs_sidekiq --json        # every figure as JSON
    python -m tests.benchmarks.bench_vs_sidekiq --sleep 0.05 --in-flight 100,500,1000

Each run measures, in this order, Sidekiq with 2 processes x 10 threads, Sidekiq with
1 x 10, and a verk_actors node with its default configuration. Each system gets fresh
Redis servers (``tests.servers.RedisServer``: one for the jobs, one for the counter)
and the same workload, measured by the same code (``verk_actors.bench.measure``):

* the same ``--jobs`` jobs (20,000) of ``BenchIncr``, pushed with
  ``Client.enqueue_many`` (Sidekiq's JSON; the Ruby twin has the same class name, see
  ``bench_workers.rb``) before any worker process starts; each job does one INCR on
  the counter server;
* the drain rate: jobs that ran from the last look that saw none finished until the
  counter reaches N and the queue (and, for verk_actors, the in-progress list) is
  empty, over that time; process start-up is left out;
* the idle pickup latency: 200 ``BenchPickup`` jobs enqueued 10 ms apart, each
  carrying ``CLOCK_MONOTONIC`` read just before its enqueue; the job records the same
  clock when its ``perform`` starts, minus that (Ruby and Python read the same clock);
* Redis commands per job, from ``INFO commandstats`` of the job server (commands in
  Lua count), enqueue included;
* peak memory: summed RSS (and PSS) of the Sidekiq processes, or of the node's
  processes (the actor system's admin and all its descendants).

Each run ends with the pickup floor of the machine: the same 200 pickups on a bare
redis-py ``BLMOVE`` loop (``pickup_floor.py``), no job system at all.

It prints a table of the medians over ``--runs``, with ratio rows (verk_actors /
Sidekiq: above 1 is better for jobs/s, below 1 is better for the rest), and which
verk_actors it ran (the package path and its git commit). Run it from the checkout
with ``python -m`` (or with an absolute ``PYTHONPATH``): the node's processes import
modules after the actor system has daemonized, and a relative ``sys.path`` entry
would then find another installed copy. Sidekiq is installed from Debian's
``ruby-sidekiq`` when missing (``tests/interop/sidekiq.py``). Not part of the test run.

With ``--sleep S`` it compares jobs that wait instead (S seconds, then the INCR) at
each N of ``--in-flight``: Sidekiq ``-c N`` against a node with one queue of
concurrency N in ``--verk-mode`` (``async:100`` by default); see ``sleep_vs_sidekiq``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

import verk_actors  # noqa: E402
from tests.benchmarks import drain_floor, side_by_side, sleep_vs_sidekiq  # noqa: E402
from tests.benchmarks.pickup_floor import run_floor  # noqa: E402
from tests.benchmarks.side_by_side import (  # noqa: E402
    git_commit,
    server_version,
    start_sidekiq,
    stop_process,
)
from tests.interop.sidekiq import ensure_sidekiq  # noqa: E402
from tests.servers import RedisServer  # noqa: E402
from verk_actors.bench.drain import (  # noqa: E402
    DEFAULT_JOBS,
    SETTLE,
    BenchOptions,
    BenchResult,
    enqueue_all,
    run_bench,
    standard_pickups,
)
from verk_actors.bench.measure import (  # noqa: E402
    CommandCounter,
    Drain,
    MemorySampler,
    Progress,
    client_stack,
    percentile,
    wait_drained,
)
from verk_actors.bench.workload import COUNTER_KEY, QUEUE  # noqa: E402
from verk_actors.cli.common import positive_float  # noqa: E402
from verk_actors.store import keys  # noqa: E402
from verk_actors.store.client import Client  # noqa: E402


def run_sidekiq(
    jobs: int, processes: int, threads: int, version: str, progress: Progress
) -> BenchResult:
    """The standard benchmark on ``processes`` Sidekiq processes of ``threads`` threads."""
    with contextlib.ExitStack() as stack:
        servers = [RedisServer().start() for _ in range(2)]
        for server in servers:
            stack.callback(server.cleanup)
        job_server, counter_server = servers
        jobs_redis = stack.enter_context(contextlib.closing(job_server.client()))
        counter = stack.enter_context(contextlib.closing(counter_server.client()))
        commands = CommandCounter(jobs_redis)
        client = stack.enter_context(Client(url=job_server.url))
        client.redis.ping()
        progress.show(f"Sidekiq {processes}x{threads}: enqueueing {jobs:,} jobs", force=True)
        enqueue_seconds, enqueue_calls = enqueue_all(client, commands, "BenchIncr", jobs)

        commands.start()
        pids: list[int] = []
        memory = stack.enter_context(MemorySampler(lambda: list(pids)))
        log = Path(tempfile.mkdtemp(prefix="verk-bench-sidekiq-")) / "sidekiq.log"
        started = time.monotonic()
        for _ in range(processes):
            process = start_sidekiq(job_server.url, counter_server.url, threads, log)
            stack.callback(stop_process, process)
            pids.append(process.pid)
        try:
            drain = wait_drained(
                jobs,
                lambda: int(counter.get(COUNTER_KEY) or 0),
                lambda: commands.llens(keys.queue_key(QUEUE)) == [0],
                started=started,
                timeout=60 + 0.005 * jobs,
                progress=progress,
                label=f"Sidekiq {processes}x{threads}",
            )
        except Exception:
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        calls = commands.stop()
        with memory.paused():  # as for verk_actors
            time.sleep(SETTLE)
            pickups = standard_pickups(client, counter, progress)
        memory.sample(full=True)
        progress.show(f"Sidekiq {processes}x{threads}: stopping", force=True)
        return BenchResult(
            jobs=jobs,
            concurrency=processes * threads,
            redis=server_version(),
            incr=True,
            enqueue_seconds=enqueue_seconds,
            drain=drain,
            enqueue_commands=enqueue_calls,
            commands=calls,
            peak_rss=memory.peak_rss,
            peak_pss=memory.peak_pss,
            processes=memory.processes,
            pickups=tuple(pickups),
            system=f"Sidekiq {version}",
            setting=f"{processes} proc x {threads} threads",
        )


def run_verk(jobs: int, concurrency: int | None, progress: Progress) -> BenchResult:
    """The standard benchmark on a verk_actors node, against fresh Redis servers."""
    servers = [RedisServer().start() for _ in range(2)]
    try:
        options = BenchOptions(
            jobs=jobs,
            concurrency=concurrency,
            latency=True,
            redis_url=servers[0].url,
            counter_url=servers[1].url,
        )
        result = run_bench(options, progress)
    finally:
        for server in servers:
            server.cleanup()
    return attrs.evolve(result, redis=server_version())


# --- the table -------------------------------------------------------------------------

COLUMNS: list[tuple[str, str, str]] = [
    ("jobs/s", "drain_jobs_per_s", "{:,.0f}"),
    ("p50 ms", "pickup_p50_ms", "{:.2f}"),
    ("p99 ms", "pickup_p99_ms", "{:.2f}"),
    ("cmds/job", "commands_per_job", "{:.2f}"),
    ("enq cmds/job", "enqueue_commands_per_job", "{:.3f}"),
    ("enqueue/s", "enqueue_jobs_per_s", "{:,.0f}"),
    ("peak RSS MB", "peak_rss_mb", "{:,.0f}"),
    ("RSS/slot MB", "rss_per_slot_mb", "{:.1f}"),
    ("PSS/slot MB", "pss_per_slot_mb", "{:.1f}"),
    ("steal %", "steal_pct", "{:.0f}"),
]
NO_RATIO = {"steal_pct"}
"""Columns about the machine, not the system: no ratio."""


def figures(result: BenchResult) -> dict[str, Any]:
    """The result's figures, with memory in MB."""
    d = result.to_dict()
    d["peak_rss_mb"] = result.peak_rss / 1e6
    d["rss_per_slot_mb"] = d["rss_per_slot_bytes"] / 1e6
    d["pss_per_slot_mb"] = d["pss_per_slot_bytes"] / 1e6
    d["steal_pct"] = d["drain_steal"] * 100 if d["drain_steal"] is not None else None
    return d


def medians(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over ``runs`` (of one system and setting)."""
    return side_by_side.medians(runs, (key for _, key, _ in COLUMNS))


def table(rows: Sequence[dict[str, Any]]) -> str:
    """An aligned table of ``rows``, then the ratio of the last row to each other one."""
    head = ["system", "setting", *(title for title, _, _ in COLUMNS)]
    body = [
        [r["system"], r["setting"], *(fmt.format(r[k]) if r[k] is not None else "-"
                                      for _, k, fmt in COLUMNS)]
        for r in rows
    ]  # fmt: skip
    ours = rows[-1]
    for other in rows[:-1]:
        ratios = []
        for _, key, _ in COLUMNS:
            a, b = ours.get(key), other.get(key)
            ratios.append(f"{a / b:.2f}x" if a is not None and b and key not in NO_RATIO else "-")
        body.append([f"verk / {other['system']}", other["setting"], *ratios])
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]

    def line(row: Sequence[str]) -> str:
        cells = [str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]  # fmt: skip
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(r) for r in body[: len(rows)]), rule,
                      *(line(r) for r in body[len(rows):])])  # fmt: skip


DEFAULT_SETUPS = "2x10,1x10"


def parse_setups(text: str) -> list[tuple[int, int]]:
    """``2x10,1x10`` -> [(2, 10), (1, 10)]."""
    setups = []
    for part in text.split(","):
        processes, _, threads = part.strip().partition("x")
        setups.append((int(processes), int(threads)))
    return setups


def build_parser() -> argparse.ArgumentParser:
    """The options: the standard workload, or with ``--sleep`` jobs that wait."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_vs_sidekiq",
        description="The standard workload on Sidekiq 6.4 and on verk_actors, back to back; "
        "with --sleep, jobs that wait, at --in-flight jobs in flight.",
    )
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="jobs per drain")
    parser.add_argument("--runs", type=int, default=1, help="runs of each; medians are shown")
    parser.add_argument(
        "--sidekiq",
        type=parse_setups,
        metavar="PxT,...",
        help=f"Sidekiq setups: processes x threads (default {DEFAULT_SETUPS})",
    )
    parser.add_argument(
        "--concurrency", type=int, help="verk_actors worker slots (default: the node's default)"
    )
    parser.add_argument(
        "--sleep",
        type=positive_float,
        metavar="S",
        help="jobs sleep S seconds, then INCR (simulated I/O): Sidekiq 1 process -c N "
        "against a node with one queue of concurrency N, for each N of --in-flight",
    )
    parser.add_argument(
        "--in-flight",
        type=sleep_vs_sidekiq.parse_in_flight,
        metavar="N,...",
        help="with --sleep: jobs in flight (default "
        + ",".join(map(str, sleep_vs_sidekiq.DEFAULT_IN_FLIGHT))
        + ")",
    )
    parser.add_argument(
        "--verk-mode",
        type=sleep_vs_sidekiq.parse_verk_mode,
        metavar="MODE[:PER_PROCESS]",
        help="with --sleep: how the node's queue runs them, async:100 (default) or "
        "threads:N (jobs at once per worker process)",
    )
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options, with the defaults of the comparison they choose filled in."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sleep is None:
        if args.in_flight is not None or args.verk_mode is not None:
            parser.error("--in-flight and --verk-mode go with --sleep")
        args.sidekiq = args.sidekiq or parse_setups(DEFAULT_SETUPS)
        return args
    if args.sidekiq is not None or args.concurrency is not None:
        parser.error(
            "--sidekiq and --concurrency are for the standard workload; with --sleep, "
            "--in-flight N sets both sides (Sidekiq -c N, a queue of concurrency N)"
        )
    args.in_flight = args.in_flight or sleep_vs_sidekiq.DEFAULT_IN_FLIGHT
    args.verk_mode = args.verk_mode or sleep_vs_sidekiq.parse_verk_mode(
        sleep_vs_sidekiq.DEFAULT_VERK_MODE
    )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    version = ensure_sidekiq()
    if args.sleep is not None:
        return sleep_vs_sidekiq.compare(
            args.jobs,
            args.runs,
            args.sleep,
            args.in_flight,
            args.verk_mode,
            version=version,
            as_json=args.json,
        )
    progress = Progress(sys.stderr)
    setups: list[tuple[str, Callable[[], BenchResult]]] = [
        (f"sidekiq {p}x{t}", functools.partial(run_sidekiq, args.jobs, p, t, version, progress))
        for p, t in args.sidekiq
    ]
    setups.append(("verk_actors", lambda: run_verk(args.jobs, args.concurrency, progress)))
    started_load = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in setups}
    for run in range(args.runs):
        for name, measure in setups:
            result = figures(measure())
            results[name].append(result)
            print(
                f"run {run + 1}/{args.runs} {name}: {result['drain_jobs_per_s']:,.0f} jobs/s, "
                f"pickup p50 {result['pickup_p50_ms']:.2f} ms, "
                f"p99 {result['pickup_p99_ms']:.2f} ms, "
                f"{result['commands_per_job']:.2f} commands/job, load {os.getloadavg()[0]:.2f}, "
                f"CPU steal {result['steal_pct'] or 0:.0f} %",
                file=sys.stderr,
            )
    floors: list[tuple[float, float]] = []
    bare: list[Drain] = []
    for _ in range(args.runs):
        times = sorted(run_floor(progress))
        floors.append((percentile(times, 50) * 1000, percentile(times, 99) * 1000))
        bare.append(drain_floor.run_floor(args.jobs, drain_floor.default_processes(), progress))
    floor = (statistics.median(f[0] for f in floors), statistics.median(f[1] for f in floors))
    ceiling = statistics.median(d.rate for d in bare)
    ceiling_steal = statistics.median((d.steal or 0) * 100 for d in bare)
    rows = [medians(results[name]) for name, _ in setups]
    package = Path(verk_actors.__file__).resolve().parent
    about = {
        "commit": git_commit(package),
        "verk_actors": str(package),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": f"{platform.node()}, {os.cpu_count()} CPUs, {client_stack()}",
        "redis": server_version(),
        "jobs": args.jobs,
        "runs": args.runs,
        "load_before": started_load,
        "load_after": os.getloadavg(),
    }
    if args.json:
        print(
            json.dumps(
                {
                    "about": about,
                    "medians": rows,
                    "runs": results,
                    "pickup_floor_ms": floor,
                    "bare_python_jobs_per_s": ceiling,
                },
                indent=2,
            )
        )
        return 0
    print(
        f"{args.jobs:,} jobs (no-op + INCR on a second Redis), {about['redis']}, "
        f"median of {args.runs} run(s); verk_actors {about['commit']} "
        f"({about['verk_actors']}), {about['when']}"
    )
    print(
        f"{about['host']}; load average {started_load[0]:.2f} before, "
        f"{about['load_after'][0]:.2f} after"
    )
    print(table(rows))
    print(
        f"pickup floor (a bare redis-py BLMOVE loop, no job system): p50 {floor[0]:.2f} ms, "
        f"p99 {floor[1]:.2f} ms"
    )
    print(
        f"drain ceiling ({drain_floor.default_processes()} bare redis-py processes: LPOP 100, "
        f"json.loads, INCR; no in-progress list, no acks): {ceiling:,.0f} jobs/s "
        f"(CPU steal {ceiling_steal:.0f} %); "
        + ", ".join(f"{r['system']} {r['drain_jobs_per_s'] / ceiling:.0%}" for r in rows)
        + " of it"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
