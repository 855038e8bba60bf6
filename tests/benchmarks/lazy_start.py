"""How long a node takes to start, to run its first job, and what it holds idle.

Starts ``verk-actors start`` (the test workers importable) on a fresh Redis in which
one job already waits, and prints, for each run:

- **boot**: seconds from the launch to the log line saying the node runs;
- **first job**: seconds from the launch to the end of that job;
- **idle**: ``--idle`` seconds after the first job, the processes of the node and the
  sums of their PSS and RSS (``/proc/<pid>/smaps_rollup``).

Run from the checkout (every argument after ``--`` goes to ``verk-actors start``)::

    python -m tests.benchmarks.lazy_start --queues 1 --concurrency 25 --repeat 3
    python -m tests.benchmarks.lazy_start --queues 4 -- --min-workers 1
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
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


def memory(pids: list[int]) -> tuple[int, int]:
    """Summed PSS and RSS of ``pids``, in bytes (processes gone meanwhile left out)."""
    pss = rss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1]) * 1024
            elif line.startswith("Rss:"):
                rss += int(line.split()[1]) * 1024
    return pss, rss


def one_run(queues: int, concurrency: int, idle: float, extra: list[str]) -> dict[str, float]:
    server = RedisServer().start()
    node = None
    try:
        r = redis.Redis.from_url(server.url)
        with Client(url=server.url) as client:
            client.enqueue("Record", server.url, "first", 1, queue="q0")
        args = [a for n in range(queues) for a in ("--queue", f"q{n}={concurrency}")]
        node = NodeProcess("--redis-url", server.url, *args, *extra)
        began = time.monotonic()
        node.start(ready=None)
        booted = first = None
        deadline = began + 120
        while (booted is None or first is None) and time.monotonic() < deadline:
            now = time.monotonic()
            if first is None and r.llen("first"):
                first = now - began
            if booted is None and any(" running: queues" in line for line in node.lines):
                booted = now - began
            time.sleep(0.002)
        assert booted is not None and first is not None, node.output
        time.sleep(idle)
        pids = node.processes()
        pss, rss = memory(pids)
        return {"boot": booted, "first": first, "processes": len(pids), "pss": pss, "rss": rss}
    finally:
        if node is not None:
            node.terminate()
            node.kill_if_running()
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=25)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before memory")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("extra", nargs="*", help="after --: arguments of verk-actors start")
    args = parser.parse_args(argv)
    # The node's actor system daemonizes: as a subreaper this process stays its
    # ancestor, so the node's processes are found (as in the tests).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    runs = [
        one_run(args.queues, args.concurrency, args.idle, args.extra) for _ in range(args.repeat)
    ]
    for run in runs:
        print(
            f"boot {run['boot']:.2f} s, first job {run['first']:.2f} s, idle: "
            f"{run['processes']:.0f} processes, PSS {run['pss'] / 2**20:.0f} MB, "
            f"RSS {run['rss'] / 2**20:.0f} MB"
        )
    med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
    print(
        f"median of {len(runs)}: boot {med['boot']:.2f} s, first job {med['first']:.2f} s, "
        f"{med['processes']:.0f} processes, PSS {med['pss'] / 2**20:.0f} MB, "
        f"RSS {med['rss'] / 2**20:.0f} MB"
    )


if __name__ == "__main__":
    main()
