"""How long a live node takes to give a dead node's in-progress jobs back (issue 5).

A fresh Redis gets a dead node as a crash leaves it: registered in ``verk_nodes``
with its queue, no lease, and ``--jobs`` standard jobs in ``inprogress:<q>:<node>``.
A live node's ``NodeStore.recover`` (what its NodeManager runs for each dead node it
finds) moves them back to the queue; the script times that call, checks that every
job is back once and the dead node is forgotten, and prints the job server's Redis
commands. Run from the checkout::

    python -m tests.benchmarks.recovery                    # 100,000 jobs, 3 runs
    python -m tests.benchmarks.recovery --jobs 1000000 --runs 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import redis

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from tests.servers import RedisServer  # noqa: E402
from verk_actors.bench.measure import CommandCounter, client_stack  # noqa: E402
from verk_actors.bench.workload import QUEUE, BenchIncr  # noqa: E402
from verk_actors.config.settings import Settings  # noqa: E402
from verk_actors.store import keys  # noqa: E402
from verk_actors.store.client import Client  # noqa: E402
from verk_actors.store.node_store import NodeStore, node_facts  # noqa: E402

DEAD = "bench-dead-node"
LIVE = "bench-live-node"
HEADER = "jobs       seconds     jobs/s  cmds  queue after  in progress after"


@attrs.frozen
class Recovery:
    """The figures of one recovery."""

    jobs: int
    seconds: float
    commands: int
    queued: int
    left: int

    def line(self) -> str:
        return (
            f"{self.jobs:<10,} {self.seconds:>7.3f} {self.jobs / self.seconds:>10,.0f}"
            f" {self.commands:>5,} {self.queued:>12,} {self.left:>18,}"
        )


def leave_dead_node(r: redis.Redis, url: str, jobs: int) -> None:
    """What a node that died holding ``jobs`` jobs of ``QUEUE`` leaves in Redis."""
    with Client(url=url) as client:
        for start in range(0, jobs, 100_000):
            client.enqueue_many(BenchIncr, [()] * min(100_000, jobs - start))
    r.rename(keys.queue_key(QUEUE), keys.inprogress_key(QUEUE, DEAD))
    r.sadd(keys.NODES, DEAD)
    r.sadd(keys.node_queues_key(DEAD), QUEUE)


def run_recovery(jobs: int) -> Recovery:
    """One recovery of ``jobs`` jobs on a fresh server."""
    server = RedisServer().start()
    try:
        with contextlib.closing(redis.Redis.from_url(server.url)) as r:
            leave_dead_node(r, server.url, jobs)
            store = NodeStore(
                Settings(redis_url=server.url), node_facts(LIVE, "epoch", None, os.getpid())
            )
            try:
                commands = CommandCounter(r)
                commands.start()
                dead = store.dead_nodes()
                began = time.perf_counter()
                moved = store.recover(DEAD)
                seconds = time.perf_counter() - began
                ran = commands.stop()
            finally:
                store.close()
            queued = int(r.llen(keys.queue_key(QUEUE)))
            left = int(r.llen(keys.inprogress_key(QUEUE, DEAD)))
            if dead != [DEAD] or moved != jobs or queued != jobs or left:
                raise SystemExit(
                    f"recovery went wrong: dead nodes {dead}, moved {moved:,}, "
                    f"queue {queued:,}, still in progress {left:,} (of {jobs:,})"
                )
            if r.sismember(keys.NODES, DEAD):
                raise SystemExit("the dead node is still registered after its recovery")
    finally:
        server.cleanup()
    return Recovery(jobs, seconds, sum(ran.values()), queued, left)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.recovery",
        description="Time a live node giving a dead node's in-progress jobs back.",
    )
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs the dead node held")
    parser.add_argument("--runs", type=int, default=3, help="recoveries, each on a fresh server")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.runs < 1:
        parser.error("--jobs and --runs must be at least 1")
    print(f"{client_stack()}; {os.cpu_count()} CPUs; standard jobs, NodeStore.recover")
    print(HEADER)
    for _ in range(args.runs):
        print(run_recovery(args.jobs).line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
