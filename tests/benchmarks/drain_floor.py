"""The drain-rate ceiling of this machine for Python: bare redis-py runners, no job system.

``run_floor()`` drains the standard workload (``BenchIncr`` jobs, one ``INCR`` each on
a second server) with a few plain Python processes that take 100 jobs at a time with
``LPOP`` and, for each, parse its JSON and run the ``INCR`` on a dedicated connection:
no in-progress list, no acknowledgement, no retries, no actors. It is timed by the same
code as the benchmark (``wait_drained``). What a Python job system costs on top of its
jobs is the gap between its rate and this one.

Run as a module, it is one of those runners: ``python -m tests.benchmarks.drain_floor
JOB_URL COUNTER_URL``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from tests.servers import RedisServer  # noqa: E402
from verk_actors.actors.queue._cpu_gauge import machine_cores  # noqa: E402
from verk_actors.bench.measure import Drain, Progress, wait_drained  # noqa: E402
from verk_actors.bench.workload import COUNTER_KEY, QUEUE, BenchIncr  # noqa: E402
from verk_actors.store import keys  # noqa: E402
from verk_actors.store.client import Client  # noqa: E402

TAKE = 100


def consume(job_url: str, counter_url: str) -> None:
    """Take jobs 100 at a time and run each one's INCR until the queue is empty."""
    jobs = redis.Redis.from_url(job_url, single_connection_client=True)
    counter = redis.Redis.from_url(counter_url, single_connection_client=True)
    queue = keys.queue_key(QUEUE)
    while batch := jobs.lpop(queue, TAKE):
        for text in batch:
            json.loads(text)
            counter.incr(COUNTER_KEY)


def default_processes() -> int:
    """One runner per core and one more (the most jobs/s on 2 cores, measured)."""
    return machine_cores() + 1


def run_floor(jobs: int, processes: int, progress: Progress) -> Drain:
    """The bare runners' drain of ``jobs`` jobs, on fresh servers."""
    with contextlib.ExitStack() as stack:
        servers = [RedisServer().start() for _ in range(2)]
        for server in servers:
            stack.callback(server.cleanup)
        job_server, counter_server = servers
        with Client(url=job_server.url) as client:
            client.enqueue_many(BenchIncr, [()] * jobs, queue=QUEUE)
        counter = stack.enter_context(contextlib.closing(counter_server.client()))
        queue = stack.enter_context(contextlib.closing(job_server.client()))
        command = [sys.executable, "-m", "tests.benchmarks.drain_floor"]
        started = time.monotonic()
        runners = [
            subprocess.Popen([*command, job_server.url, counter_server.url], cwd=ROOT)
            for _ in range(processes)
        ]
        try:
            return wait_drained(
                jobs,
                lambda: int(counter.get(COUNTER_KEY) or 0),
                lambda: queue.llen(keys.queue_key(QUEUE)) == 0,
                started=started,
                timeout=60 + 0.005 * jobs,
                progress=progress,
                label=f"bare Python x{processes}",
            )
        finally:
            for runner in runners:
                runner.kill()
                runner.wait(10)


if __name__ == "__main__":
    consume(sys.argv[1], sys.argv[2])
