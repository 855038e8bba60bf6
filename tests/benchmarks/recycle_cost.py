"""What recycling costs: a node runs N quick jobs with and without ``max_jobs``.

Each run starts ``verk-actors start`` on a fresh Redis with N ``WhoRan`` jobs
waiting (``tests.recycle_jobs``: one RPUSH each) on one queue, and times from the
first job done to the last; it prints jobs per second and the worker processes
that ran them, so the time a recycle adds shows as the difference per recycle::

    python -m tests.benchmarks.recycle_cost --jobs 500 --max-jobs 0 10 1
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from tests.nodeproc import NodeProcess  # noqa: E402
from tests.servers import RedisServer  # noqa: E402
from verk_actors.store.client import Client  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36


def one_run(jobs: int, concurrency: int, max_jobs: int) -> tuple[float, int]:
    """Seconds from the first job done to the last, and the processes that ran them."""
    server = RedisServer().start()
    node = None
    try:
        r = redis.Redis.from_url(server.url)
        with Client(url=server.url) as client:
            client.enqueue_many("WhoRan", ([server.url, "ran"] for _ in range(jobs)))
        spec = f"default={concurrency}:max_jobs={max_jobs}"
        node = NodeProcess("--redis-url", server.url, "--import", "tests.recycle_jobs")
        node.args += ["--queue", spec]
        node.start(ready=None)
        first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = r.llen("ran")
            if done and first is None:
                first = (time.monotonic(), done)
            if done >= jobs:
                break
            time.sleep(0.001)
        assert first is not None
        seconds = time.monotonic() - first[0]
        pids = {item.split(b":")[1] for item in r.lrange("ran", 0, -1)}
        return seconds / max(1, jobs - first[1]) * jobs, len(pids)
    finally:
        if node is not None:
            node.terminate()
            node.kill_if_running()
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-jobs", type=int, nargs="+", default=[0, 10, 1])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    for round_ in range(args.repeat):
        for max_jobs in args.max_jobs:
            seconds, processes = one_run(args.jobs, args.concurrency, max_jobs)
            print(
                f"round {round_ + 1}, max_jobs {max_jobs}: {args.jobs / seconds:,.0f} jobs/s, "
                f"{seconds * 1000 / args.jobs:.2f} ms a job, {processes} worker processes",
                flush=True,
            )


if __name__ == "__main__":
    main()
