"""CPU time a node spends per job, summed over its processes and by kind of actor: on
a shared machine it moves less with the load than jobs/s do (though a busy machine's
context switches and cold caches still raise it).

``python -m tests.benchmarks.cpu_per_job --concurrency 500 --mode async:100 --sleep 0.05``
runs ``verk-actors bench`` with those options and prints, besides its jobs/s, the
node's CPU seconds (user + system, every process of the node) from just after start to
the end of the drain, per job, and the jobs/s that CPU cost allows on this machine's
cores (its ceiling when nothing else runs), and how busy the whole machine's CPUs were
meanwhile (``/proc/stat``: near 100 % the drain is at the machine's limit, the node's
CPU and the Redis servers' and the bench's together). Another tree's code runs the same way with
``PYTHONPATH=<tree>`` (process mode without ``--sleep`` only, before these options).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from verk_actors.bench.drain import BenchOptions, run_bench  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_process(pids: dict[int, str]) -> dict[int, tuple[str, float]]:
    """User + system CPU seconds of each of ``pids`` (pid -> title; gone ones left out)."""
    seconds = {}
    for pid, title in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = ((title.split() or ["?"])[0], (int(fields[11]) + int(fields[12])) / TICK)
    return seconds


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=25)
    parser.add_argument("--mode", default="process")
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    mode, _, count = args.mode.partition(":")
    per_process = int(count) if count else None
    seen: dict[str, Any] = {}

    def started(lister: Callable[[], dict[int, str]]) -> None:
        seen["lister"] = lister
        seen["start"] = cpu_by_process(lister())
        seen["machine"] = machine_ticks()

    def drained() -> None:
        seen["end"] = cpu_by_process(seen["lister"]())
        busy, total = machine_ticks()
        seen["busy"] = (busy - seen["machine"][0]) / max(1, total - seen["machine"][1])

    extra: dict[str, Any] = {}
    if mode != "process" or args.sleep:  # so it also runs an older tree's bench
        extra = {"mode": mode, "per_process": per_process, "sleep": args.sleep}
    options = BenchOptions(jobs=args.jobs, concurrency=args.concurrency, **extra)
    result = run_bench(options, on_started=started, on_drained=drained)
    by_kind: dict[str, float] = {}
    for pid, (kind, end) in seen["end"].items():
        begin = seen["start"].get(pid, (kind, 0.0))[1]
        by_kind[kind] = by_kind.get(kind, 0.0) + end - begin
    cpu = sum(by_kind.values())
    per_job = cpu / args.jobs
    cores = len(os.sched_getaffinity(0))
    print(
        f"{args.concurrency} in flight, {args.mode}, sleep {args.sleep:g} s: "
        f"{result.drain.rate:,.0f} jobs/s, node CPU {per_job * 1e6:,.0f} µs per job "
        f"(ceiling {cores / per_job:,.0f} jobs/s on {cores} cores), "
        f"PSS {result.peak_pss / 1e6:,.1f} MB, machine busy {seen['busy']:.0%}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for kind, seconds in sorted(by_kind.items(), key=lambda item: -item[1]):
        print(f"  {kind:<20} {seconds / args.jobs * 1e6:8,.0f} µs per job")


if __name__ == "__main__":
    main()
