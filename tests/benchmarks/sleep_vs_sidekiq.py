"""Jobs that wait, on Sidekiq 6.4 and on verk_actors, at N jobs in flight.

::

    python -m tests.benchmarks.bench_vs_sidekiq --sleep 0.05 --in-flight 100,500,1000
    python -m tests.benchmarks.bench_vs_sidekiq --sleep 0.05 --verk-mode threads:100 --json

Each job sleeps ``--sleep`` seconds (simulated I/O), then does the standard INCR on the
counter server: ``BenchAsyncSleep`` (``await asyncio.sleep``) when the node runs in
async mode, ``BenchSleep`` (``time.sleep``) in threads mode; the Ruby twins of both
(``bench_workers.rb``) run ``sleep`` in a Sidekiq thread. For each N of ``--in-flight``,
back to back on fresh Redis servers:

* Sidekiq: one process, ``-c N`` (N processor threads; Sidekiq 6.4 sizes its Redis
  pool to N + 5 by itself, and each thread opens one connection to the counter);
* verk_actors: a node with one queue of concurrency N in ``--verk-mode`` (default
  ``async:100``: N / 100 worker processes of 100 coroutines).

Both drain the same ``--jobs`` jobs, pushed before the workers start, timed by the same
code (``verk_actors.bench.measure.wait_drained``). Figures: drain jobs/s; the ideal,
N / S (every slot always busy sleeping); the rate's share of it; CPU per job of the
Sidekiq process or of the node's processes (from the moment the system is up: Sidekiq's
first heartbeat, which retitles its process, or ``start_node``'s answer, to the end of
the drain); peak PSS and RSS summed over those processes. A run that fails (Sidekiq
refusing a concurrency, running out of connections, a drain that times out) is recorded
with the reason, and the other runs go on.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

import verk_actors
from tests.benchmarks import side_by_side
from tests.benchmarks.side_by_side import git_commit, server_version, start_sidekiq, stop_process
from tests.servers import RedisServer
from verk_actors.bench.drain import BenchOptions, BenchResult, enqueue_all, run_bench
from verk_actors.bench.measure import (
    CommandCounter,
    MemorySampler,
    Progress,
    client_stack,
    cpu_of,
    cpu_since,
    wait_drained,
)
from verk_actors.bench.workload import COUNTER_KEY, QUEUE
from verk_actors.config.queue_modes import ASYNC, THREADS, split_mode
from verk_actors.errors import ConfigurationError
from verk_actors.store import keys
from verk_actors.store.client import Client

DEFAULT_IN_FLIGHT = (100, 500, 1000)
DEFAULT_VERK_MODE = "async:100"
LOG_LINES = 3
"""Lines of a failed Sidekiq's log given as the reason."""


# --- options ----------------------------------------------------------------------------


def parse_in_flight(text: str) -> tuple[int, ...]:
    """``100,500,1000`` -> (100, 500, 1000): jobs in flight, each at least 1."""
    counts = []
    for part in text.split(","):
        try:
            count = int(part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a whole number") from None
        if count < 1:
            raise argparse.ArgumentTypeError(f"{count} jobs in flight: it takes at least 1")
        counts.append(count)
    return tuple(counts)


def parse_verk_mode(text: str) -> tuple[str, int]:
    """``async:100`` -> ("async", 100): how the node's queue runs the jobs that wait."""
    try:
        mode, per_process = split_mode(f"--verk-mode {text}", text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if mode not in (ASYNC, THREADS):
        raise argparse.ArgumentTypeError(
            f"mode {mode!r}: write async[:PER_PROCESS] or threads[:PER_PROCESS] (process "
            "mode would start a worker process for every job in flight)"
        )
    if per_process is not None and per_process < 1:
        raise argparse.ArgumentTypeError(f"{per_process} jobs per process: at least 1")
    return mode, per_process or 100


def sleep_worker(mode: str) -> str:
    """The job class both sides run: the one ``verk-actors bench --sleep`` picks."""
    return "BenchAsyncSleep" if mode == ASYNC else "BenchSleep"


def drain_timeout(jobs: int, in_flight: int, sleep: float) -> float:
    """Seconds a drain may take: the standard allowance plus twice the ideal time."""
    return 60 + 0.005 * jobs + 2 * jobs * sleep / in_flight


@attrs.frozen
class SleepRun:
    """What to run: ``jobs`` jobs of ``sleep`` seconds, ``in_flight`` at once."""

    jobs: int
    sleep: float
    in_flight: int
    mode: str = ASYNC
    per_process: int = 100

    @property
    def ideal(self) -> float:
        """Jobs/s with every slot always sleeping: ``in_flight / sleep``."""
        return self.in_flight / self.sleep

    @property
    def sidekiq_setting(self) -> str:
        return f"1 proc x {self.in_flight} threads"

    @property
    def verk_setting(self) -> str:
        per_process = min(self.per_process, self.in_flight)
        workers = math.ceil(self.in_flight / per_process)
        return f"1 node, {workers} x {per_process} {self.mode}"


# --- Sidekiq ----------------------------------------------------------------------------


class SidekiqBrokeError(Exception):
    """The Sidekiq process stopped, or its drain failed; the message says why."""


def sidekiq_up(pid: int) -> bool:
    """Whether the Sidekiq process ``pid`` has beaten once: its heartbeat thread, started
    just before its processors, retitles it ``sidekiq 6.4.1 [0 of N busy]``."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return title.startswith(b"sidekiq ") and b"busy]" in title


def log_tail(log: Path, lines: int = LOG_LINES) -> str:
    """The last ``lines`` non-blank lines of ``log``, joined with `` | ``."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "no log"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "nothing in its log"


def run_sidekiq(run: SleepRun, version: str, progress: Progress) -> BenchResult:
    """``run`` on one Sidekiq process of ``run.in_flight`` threads; SidekiqBrokeError if
    it fails (with the end of its log)."""
    label = f"Sidekiq 1x{run.in_flight}"
    tmp = Path(tempfile.mkdtemp(prefix="verk-bench-sidekiq-"))
    log = tmp / "sidekiq.log"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        servers = [RedisServer().start() for _ in range(2)]
        for server in servers:
            stack.callback(server.cleanup)
        job_server, counter_server = servers
        jobs_redis = stack.enter_context(contextlib.closing(job_server.client()))
        counter = stack.enter_context(contextlib.closing(counter_server.client()))
        commands = CommandCounter(jobs_redis)
        client = stack.enter_context(Client(url=job_server.url))
        progress.show(f"{label}: enqueueing {run.jobs:,} jobs", force=True)
        worker = sleep_worker(run.mode)
        enqueue_seconds, enqueue_calls = enqueue_all(
            client, commands, worker, run.jobs, (run.sleep,)
        )
        commands.start()
        started = time.monotonic()
        process = start_sidekiq(job_server.url, counter_server.url, run.in_flight, log)
        stack.callback(stop_process, process)
        memory = stack.enter_context(MemorySampler(lambda: [process.pid]))
        cpu_before: dict[int, float] = {}

        def done() -> int:
            if process.poll() is not None:
                raise SidekiqBrokeError(
                    f"sidekiq -c {run.in_flight} exited with {process.returncode}: " + log_tail(log)
                )
            if not cpu_before and sidekiq_up(process.pid):
                cpu_before.update(cpu_of([process.pid]))
            return int(counter.get(COUNTER_KEY) or 0)

        try:
            drain = wait_drained(
                run.jobs,
                done,
                lambda: commands.llens(keys.queue_key(QUEUE)) == [0],
                started=started,
                timeout=drain_timeout(run.jobs, run.in_flight, run.sleep),
                progress=progress,
                label=label,
            )
        except SidekiqBrokeError:
            raise
        except Exception as exc:
            raise SidekiqBrokeError(f"{exc}; sidekiq's log: {log_tail(log)}") from exc
        calls = commands.stop()
        node_cpu = cpu_since(cpu_before, [process.pid])
        memory.sample(full=True)
        progress.show(f"{label}: stopping", force=True)
    return BenchResult(
        jobs=run.jobs,
        concurrency=run.in_flight,
        redis=server_version(),
        incr=True,
        enqueue_seconds=enqueue_seconds,
        drain=drain,
        enqueue_commands=enqueue_calls,
        commands=calls,
        peak_rss=memory.peak_rss,
        peak_pss=memory.peak_pss,
        processes=memory.processes,
        system=f"Sidekiq {version}",
        setting=run.sidekiq_setting,
        node_cpu=node_cpu,
    )


# --- verk_actors ------------------------------------------------------------------------


def run_verk(run: SleepRun, progress: Progress) -> BenchResult:
    """``run`` on a node with one queue of concurrency ``run.in_flight``."""
    per_process = min(run.per_process, run.in_flight)
    servers = [RedisServer().start() for _ in range(2)]
    try:
        options = BenchOptions(
            jobs=run.jobs,
            concurrency=run.in_flight,
            mode=run.mode,
            per_process=per_process,
            sleep=run.sleep,
            redis_url=servers[0].url,
            counter_url=servers[1].url,
            timeout=drain_timeout(run.jobs, run.in_flight, run.sleep),
        )
        result = run_bench(options, progress)
    finally:
        for server in servers:
            server.cleanup()
    return attrs.evolve(result, redis=server_version(), setting=run.verk_setting)


# --- the table --------------------------------------------------------------------------

COLUMNS: list[tuple[str, str, str]] = [
    ("jobs/s", "drain_jobs_per_s", "{:,.0f}"),
    ("ideal", "ideal_jobs_per_s", "{:,.0f}"),
    ("of ideal", "ideal_share_pct", "{:.0f} %"),
    ("CPU us/job", "node_cpu_us_per_job", "{:,.0f}"),
    ("peak PSS MB", "peak_pss_mb", "{:,.1f}"),
    ("peak RSS MB", "peak_rss_mb", "{:,.1f}"),
    ("procs", "processes", "{:.0f}"),
    ("steal %", "steal_pct", "{:.0f}"),
]
RATIOS = ("drain_jobs_per_s", "node_cpu_us_per_job", "peak_pss_mb", "peak_rss_mb")
"""Columns with a verk / Sidekiq row (above 1 is better for jobs/s, below 1 for the rest)."""


def figures(run: SleepRun, result: BenchResult) -> dict[str, Any]:
    """The result's figures, with the ideal, memory in MB and the run's settings."""
    d = result.to_dict()
    d["in_flight"] = run.in_flight
    d["sleep"] = run.sleep
    d["ideal_jobs_per_s"] = run.ideal
    d["ideal_share_pct"] = 100 * result.drain.rate / run.ideal
    d["peak_rss_mb"] = result.peak_rss / 1e6
    d["peak_pss_mb"] = result.peak_pss / 1e6
    d["steal_pct"] = d["drain_steal"] * 100 if d["drain_steal"] is not None else None
    return d


def medians(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each column's median over ``runs`` of one system at one N (failures left out)."""
    return side_by_side.medians(runs, (key for _, key, _ in COLUMNS))


def table(rows: Sequence[dict[str, Any]]) -> str:
    """An aligned table: per N, each system's row (or ``failed``), then verk / Sidekiq."""
    head = ["in flight", "system", "setting", *(title for title, _, _ in COLUMNS)]
    body: list[list[str]] = []
    for n in dict.fromkeys(r["in_flight"] for r in rows):
        group = [r for r in rows if r["in_flight"] == n]
        for r in group:
            if "error" in r:
                body.append(
                    [f"{n:,}", r["system"], r["setting"], "failed", *[""] * (len(COLUMNS) - 1)]
                )
                continue
            cells = [fmt.format(r[k]) if r.get(k) is not None else "-" for _, k, fmt in COLUMNS]
            body.append([f"{n:,}", r["system"], r["setting"], *cells])
        ok = [r for r in group if "error" not in r]
        ours = [r for r in ok if r["system"] == "verk_actors"]
        for other in (r for r in ok if r["system"] != "verk_actors"):
            for mine in ours:
                ratios = [
                    f"{mine[k] / other[k]:.2f}x" if k in RATIOS and mine[k] and other[k] else ""
                    for _, k, _ in COLUMNS
                ]
                body.append([f"{n:,}", "verk / Sidekiq", "", *ratios])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def line(row: Sequence[str]) -> str:
        cells = [
            c.ljust(w) if 1 <= i <= 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(r) for r in body)])


# --- the whole comparison ---------------------------------------------------------------


def failure(run: SleepRun, system: str, setting: str, exc: BaseException) -> dict[str, Any]:
    """A row for a run that did not finish, with the reason."""
    return {"in_flight": run.in_flight, "system": system, "setting": setting, "error": str(exc)}


Setup = tuple[SleepRun, str, str, Callable[[SleepRun], BenchResult]]
"""A run, the system and setting it is for, and the function that measures it."""


def measure_all(setups: Sequence[Setup], runs: int) -> list[list[dict[str, Any]]]:
    """Each setup's figures (or failure) in each of ``runs`` rounds, in order."""
    results: list[list[dict[str, Any]]] = [[] for _ in setups]
    for number in range(runs):
        for i, (run, system, setting, measure) in enumerate(setups):
            try:
                row = figures(run, measure(run))
            except Exception as exc:  # recorded, and the other runs go on
                row = failure(run, system, setting, exc)
                print(
                    f"run {number + 1}/{runs} {system} at {run.in_flight:,} in flight "
                    f"failed: {exc}",
                    file=sys.stderr,
                )
            else:
                print(
                    f"run {number + 1}/{runs} {system} at {run.in_flight:,} in flight: "
                    f"{row['drain_jobs_per_s']:,.0f} jobs/s ({row['ideal_share_pct']:.0f} % "
                    f"of {run.ideal:,.0f}), {row['node_cpu_us_per_job']:,.0f} us CPU/job, "
                    f"PSS {row['peak_pss_mb']:,.1f} MB, load {os.getloadavg()[0]:.2f}",
                    file=sys.stderr,
                )
            results[i].append(row)
    return results


def compare(
    jobs: int,
    runs: int,
    sleep: float,
    in_flight: Sequence[int],
    verk_mode: tuple[str, int],
    *,
    version: str,
    as_json: bool,
) -> int:
    """Run both systems at each N of ``in_flight``, ``runs`` times; print the figures."""
    progress = Progress(sys.stderr)
    started_load = os.getloadavg()
    mode, per_process = verk_mode
    sidekiq = functools.partial(run_sidekiq, version=version, progress=progress)
    verk = functools.partial(run_verk, progress=progress)
    setups: list[Setup] = []
    for n in in_flight:
        run = SleepRun(jobs, sleep, n, mode, per_process)
        setups.append((run, f"Sidekiq {version}", run.sidekiq_setting, sidekiq))
        setups.append((run, "verk_actors", run.verk_setting, verk))
    results = measure_all(setups, runs)
    rows = []
    for tried in results:
        done = [r for r in tried if "error" not in r]
        rows.append(medians(done) if done else tried[-1])
    package = Path(verk_actors.__file__).resolve().parent
    about: dict[str, Any] = {
        "commit": git_commit(package),
        "verk_actors": str(package),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": f"{platform.node()}, {os.cpu_count()} CPUs, {client_stack()}",
        "redis": server_version(),
        "jobs": jobs,
        "runs": runs,
        "sleep": sleep,
        "in_flight": list(in_flight),
        "verk_mode": f"{mode}:{per_process}",
        "load_before": started_load,
        "load_after": os.getloadavg(),
    }
    failures = [r for tried in results for r in tried if "error" in r]
    if as_json:
        runs_out = {f"{s[1]} @ {s[0].in_flight}": results[i] for i, s in enumerate(setups)}
        print(
            json.dumps(
                {"about": about, "medians": rows, "runs": runs_out, "failures": failures}, indent=2
            )
        )
        return 0
    print(report(about, rows, failures))
    return 0


def report(
    about: dict[str, Any], rows: Sequence[dict[str, Any]], failures: Sequence[dict[str, Any]]
) -> str:
    """The text output: what ran where, the table, then each failure and its reason."""
    lines = [
        f"{about['jobs']:,} jobs (sleep {about['sleep']:g} s, then INCR on a second Redis), "
        f"{about['redis']}, median of {about['runs']} run(s); verk_actors {about['commit']} "
        f"({about['verk_actors']}), {about['when']}",
        f"{about['host']}; load average {about['load_before'][0]:.2f} before, "
        f"{about['load_after'][0]:.2f} after",
        table(rows),
    ]
    lines += [
        f"failed: {r['system']} {r['setting']} at {r['in_flight']:,} in flight: {r['error']}"
        for r in failures
    ]
    return "\n".join(lines)
