"""Single-job enqueue: ``Client.enqueue`` against Sidekiq's ``Sidekiq::Client.push``.

::

    python -m tests.benchmarks.enqueue_vs_sidekiq            # 5,000 jobs, 3 runs each

Each run pushes ``--jobs`` jobs one at a time, one client, to a fresh Redis server
(``tests.servers.RedisServer``), Ruby and Python back to back, and prints jobs/s with
the median ratio. Both clients do the same Redis work per job: ``SADD queues`` and
``LPUSH`` in one round trip. Sidekiq 6.4 warns on every ``SADD`` (redis-rb 4.6);
the warnings go to /dev/null. Not part of the test run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from tests.interop.sidekiq import ensure_sidekiq, ruby_env  # noqa: E402
from tests.servers import RedisServer  # noqa: E402
from verk_actors import Client  # noqa: E402

RUBY = """
require "sidekiq"
n = Integer(ARGV[0])
Sidekiq::Client.push("class" => "X", "args" => [0], "queue" => "rb")
t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
n.times { |i| Sidekiq::Client.push("class" => "X", "args" => [i], "queue" => "rb") }
puts n / (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t)
"""


def sidekiq_rate(url: str, jobs: int) -> float:
    """Jobs/s of ``Sidekiq::Client.push``, one at a time."""
    done = subprocess.run(
        ["ruby", "-e", RUBY, str(jobs)],
        env=ruby_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout.strip().splitlines()[-1])


def verk_rate(url: str, jobs: int) -> float:
    """Jobs/s of ``Client.enqueue``, one at a time."""
    with Client(url=url) as client:
        client.enqueue("X", 0, queue="py")
        began = time.perf_counter()
        for i in range(jobs):
            client.enqueue("X", i, queue="py")
        return jobs / (time.perf_counter() - began)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.enqueue_vs_sidekiq")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"Sidekiq {ensure_sidekiq()}", file=sys.stderr)
    ruby, python = [], []
    for _ in range(args.runs):
        for rates, measure in ((ruby, sidekiq_rate), (python, verk_rate)):
            server = RedisServer().start()
            try:
                rates.append(measure(server.url, args.jobs))
            finally:
                server.cleanup()
    print(f"Sidekiq::Client.push   {', '.join(f'{r:,.0f}' for r in ruby)} jobs/s")
    print(f"verk_actors enqueue    {', '.join(f'{r:,.0f}' for r in python)} jobs/s")
    ratio = statistics.median(python) / statistics.median(ruby)
    print(f"median ratio verk / Sidekiq: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
