"""What a queue that trickles costs a node: CPU, Redis commands and pickup latency.

A node drains a short backlog of the standard workload, goes idle (a worker on
standby), then gets ``BenchPickup`` jobs at a steady rate. For each rate it prints the
rate reached, the node's CPU over those jobs (from ``/proc/<pid>/stat`` of the actor
system's processes: per job, as a share of one core, and the busiest kinds of
process), the job server's Redis commands per job (the enqueue included) and the
pickup latency. Run from the checkout::

    python -m tests.benchmarks.trickle                     # 100, 500, 1000 jobs/s
    python -m tests.benchmarks.trickle --rate 200 --seconds 5
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import redis

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from tests.servers import RedisServer  # noqa: E402
from verk_actors.bench.drain import (  # noqa: E402
    BenchOptions,
    run_bench,
)
from verk_actors.bench.measure import (  # noqa: E402
    CommandCounter,
    Progress,
    client_stack,
    measure_pickups,
    percentile,
)
from verk_actors.bench.workload import PICKUP_KEY, QUEUE, BenchPickup  # noqa: E402
from verk_actors.store.client import Client  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
BACKLOG = 2000
"""Jobs drained before the trickle, so the node has warmed up and gone idle."""


@attrs.frozen
class Trickle:
    """The figures of one rate."""

    asked: float
    jobs: int
    seconds: float
    cpu_seconds: float
    by_kind: dict[str, float]
    """CPU seconds by kind of process (the first word of its title)."""
    commands: int
    pickups: tuple[float, ...]

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    def line(self) -> str:
        top = ", ".join(
            f"{kind} {100 * cpu / self.seconds:.0f} %"
            for kind, cpu in sorted(self.by_kind.items(), key=lambda kv: -kv[1])[:3]
        )
        ms = sorted(p * 1000 for p in self.pickups)
        share = 100 * self.cpu_seconds / self.seconds
        return (
            f"{self.asked:>6,.0f} {self.rate:>8,.0f} {share:>7.0f} %"
            f" {1e6 * self.cpu_seconds / self.jobs:>8,.0f} {self.commands / self.jobs:>9.2f}"
            f" {percentile(ms, 50):>7.2f} {percentile(ms, 99):>7.2f}   {top}"
        )


HEADER = "jobs/s   reached  node CPU  us/job  cmds/job  p50 ms  p99 ms   busiest"


def cpu_by_pid(pids: Sequence[int]) -> dict[int, int]:
    """User + system CPU ticks of each process that still exists."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def run_trickle(rate: float, seconds: float) -> Trickle:
    """One node on fresh servers: a short drain, then ``rate`` jobs a second."""
    servers = [RedisServer().start() for _ in range(2)]
    found: dict[str, Any] = {}
    try:
        jobs_url, counter_url = servers[0].url, servers[1].url

        def on_started(processes: Callable[[], dict[int, str]]) -> None:
            found["processes"] = processes

        def on_drained() -> None:
            found["trickle"] = trickle(rate, seconds, found["processes"](), jobs_url, counter_url)

        options = BenchOptions(jobs=BACKLOG, redis_url=jobs_url, counter_url=counter_url)
        run_bench(options, Progress(io.StringIO()), on_started=on_started, on_drained=on_drained)
    finally:
        for server in servers:
            server.cleanup()
    result: Trickle = found["trickle"]
    return result


def trickle(
    rate: float, seconds: float, processes: dict[int, str], jobs_url: str, counter_url: str
) -> Trickle:
    """Enqueue jobs ``1 / rate`` apart on the idle node; measure until all have run."""
    count = max(1, round(rate * seconds))
    with (
        Client(url=jobs_url) as client,
        contextlib.closing(redis.Redis.from_url(jobs_url)) as jobs_server,
        contextlib.closing(redis.Redis.from_url(counter_url)) as counter,
    ):
        commands = CommandCounter(jobs_server)
        commands.start()
        before = cpu_by_pid(list(processes))
        started = os.times().elapsed
        pickups = measure_pickups(
            client,
            counter,
            BenchPickup,
            queue=QUEUE,
            key=PICKUP_KEY,
            count=count,
            progress=Progress(io.StringIO()),
            gap=1 / rate,
        )
        elapsed = os.times().elapsed - started
        after = cpu_by_pid(list(processes))
        ran = commands.stop()
    by_kind: Counter[str] = Counter()
    for pid, ticks in after.items():
        kind = processes[pid].split()[0] if processes[pid] else "?"
        by_kind[kind] += (ticks - before.get(pid, ticks)) / TICKS
    return Trickle(
        asked=rate,
        jobs=count,
        seconds=elapsed,
        cpu_seconds=sum(by_kind.values()),
        by_kind=dict(by_kind),
        commands=sum(ran.values()),
        pickups=tuple(pickups),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.trickle",
        description="Node CPU, Redis commands and pickup latency of a queue at a steady rate.",
    )
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="jobs a second (repeat for several; default 100, 500 and 1000)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each rate lasts")
    args = parser.parse_args(argv)
    rates = args.rate or [100.0, 500.0, 1000.0]
    if any(rate <= 0 for rate in rates) or args.seconds <= 0:
        parser.error("--rate and --seconds must be more than 0")
    print(f"{client_stack()}; {os.cpu_count()} CPUs; BenchPickup jobs on an idle node")
    print(HEADER)
    for rate in rates:
        print(run_trickle(rate, args.seconds).line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
