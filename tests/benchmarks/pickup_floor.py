"""The pickup-latency floor of this machine: a bare redis-py ``BLMOVE`` loop.

``run_floor()`` measures the same 200 pickups as the benchmark (``measure_pickups``)
on a consumer with no job system at all: one Python process blocked in ``BLMOVE`` on
the bench queue, which reads each job's enqueue time and records how long it waited.
What a job system adds to idle pickup is its latency minus this one.

Run as a module, it is that consumer: ``python -m tests.benchmarks.pickup_floor
JOB_URL COUNTER_URL``.
"""

from __future__ import annotations

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
from verk_actors.bench.drain import standard_pickups  # noqa: E402
from verk_actors.bench.measure import Progress  # noqa: E402
from verk_actors.bench.workload import PICKUP_KEY, QUEUE  # noqa: E402
from verk_actors.store.client import Client  # noqa: E402


def consume(job_url: str, counter_url: str) -> None:
    """Take jobs one by one and push each one's pickup time (seconds) to the counter."""
    jobs = redis.Redis.from_url(job_url)
    counter = redis.Redis.from_url(counter_url)
    source, target = f"queue:{QUEUE}", f"inprogress:{QUEUE}:floor"
    while True:
        text = jobs.blmove(source, target, 1, "RIGHT", "LEFT")
        if text is None:
            continue
        picked = time.monotonic() - json.loads(text)["args"][0]
        counter.rpush(PICKUP_KEY, repr(picked))
        jobs.lrem(target, -1, text)


def run_floor(progress: Progress) -> list[float]:
    """Pickup times (seconds) of the bare consumer, on fresh servers."""
    servers = [RedisServer().start() for _ in range(2)]
    consumer = None
    try:
        job_server, counter_server = servers
        command = [sys.executable, "-m", "tests.benchmarks.pickup_floor"]
        consumer = subprocess.Popen([*command, job_server.url, counter_server.url], cwd=ROOT)
        time.sleep(0.5)
        with Client(url=job_server.url) as client, counter_server.client() as counter:
            return standard_pickups(client, counter, progress)
    finally:
        if consumer is not None:
            consumer.terminate()
            consumer.wait(10)
        for server in servers:
            server.cleanup()


if __name__ == "__main__":
    consume(sys.argv[1], sys.argv[2])
