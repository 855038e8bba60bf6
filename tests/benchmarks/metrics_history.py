"""What the job metrics history costs: CPU per job, Redis memory, and page times.

First the work it adds to a job, in-process: a worker's report with the jobs'
``(class, seconds)`` (as the history needs them) against one without, pickled and
unpickled as Thespian sends it, and the WorkersManager's ``History.done``, at 1, 10
and 100 jobs a report (best of 5 differences).

Fills a private Redis with a full history (every minute of the 2 hours kept, every hour
of the 8 days kept) for 10 classes using 3 buckets each, then for 50 classes using all
15, and prints the memory it takes and the median time of each Metrics page and API
answer (in-process, Starlette's test client). Run from the checkout::

    python -m tests.benchmarks.metrics_history
"""

from __future__ import annotations

import json
import pickle
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from tests.servers import RedisServer  # noqa: E402
from verk_actors.actors.queue._history import History  # noqa: E402
from verk_actors.actors.queue._report import Report  # noqa: E402
from verk_actors.bench import workload  # noqa: E402
from verk_actors.config.settings import Settings  # noqa: E402
from verk_actors.store import keys  # noqa: E402
from verk_actors.store.metrics_history import (  # noqa: E402
    SLOTS,
    HistoryWriter,
    hour_of,
    increments,
    minute_of,
)
from verk_actors.web import create_app  # noqa: E402

PAGES = (
    "/job-metrics",
    "/job-metrics?window=24h",
    "/job-metrics?window=7d",
    "/api/metrics?window=7d",
    "/job-metrics/App::Worker7",
    "/job-metrics/App::Worker7?window=7d",
)


def fill(server: RedisServer, classes: int, buckets: int) -> None:
    """A full history: 120 minutes and 192 hours, each with every class."""
    row = [10.0, 1.0, 123_456.0] + [1.0] * buckets + [0.0] * (SLOTS - 3 - buckets)
    rows = {f"App::Worker{c}": row for c in range(classes)}
    now = time.time()
    writer = HistoryWriter(server.url, "bench")
    for minute in range(120):
        writer.write({minute_of(now - 60 * minute): rows})
    writer.close()
    client = server.client()
    for hour in range(2, 192):
        key = keys.metrics_hour_key(hour_of(now - 3600 * hour))
        client.hset(key, mapping=increments(rows))
    client.close()


def per_job(history: History, timed: bool, size: int, jobs: int = 60_000) -> float:
    """CPU microseconds a job costs from a worker's report to the manager's tally."""
    name = f"{workload.__name__}.BenchIncr"
    names = [json.loads(json.dumps(name)) for _ in range(size)]  # one str per job, as parsed
    rounds = jobs // size
    began = time.process_time()
    for _ in range(rounds):
        report = Report(timings=[] if timed else None)
        for ref in range(size):
            if timed:
                report.add(ref, None, 0.0004, names[ref])
            else:
                report.add(ref, None, 0.0004)
        done = pickle.loads(pickle.dumps(report.message(1, 1, finished=True)))
        if timed:
            history.done(done)
    return (time.process_time() - began) / (rounds * size) * 1e6


def main() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", imports=(workload.__name__,))
    history = History(settings, "bench", "bench")
    for size in (1, 10, 100):
        added = min(per_job(history, True, size) - per_job(history, False, size) for _ in range(5))
        print(f"{size:>3} jobs a report: the history adds {added:.2f} µs of CPU a job")
    for classes, buckets in ((10, 3), (50, 15)):
        server = RedisServer().start()
        try:
            client = server.client()
            base = int(client.info("memory")["used_memory"])
            fill(server, classes, buckets)
            used = int(client.info("memory")["used_memory"]) - base
            print(
                f"{classes} classes x {3 + buckets} fields: {client.dbsize()} hashes, "
                f"{used / 1e6:.1f} MB"
            )
            client.close()
            with TestClient(create_app(server.url)) as web:
                for path in PAGES:
                    times = []
                    for _ in range(6):
                        began = time.perf_counter()
                        assert web.get(path).status_code == 200, path
                        times.append(time.perf_counter() - began)
                    print(f"  {path:36s} {1000 * statistics.median(times[1:]):7.1f} ms")
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
