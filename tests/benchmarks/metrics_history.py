"""What the job metrics history costs in Redis memory, and how fast its pages answer.

Fills a private Redis with a full history (every minute of the 2 hours kept, every hour
of the 8 days kept) for 10 classes using 3 buckets each, then for 50 classes using all
15, and prints the memory it takes and the median time of each Metrics page and API
answer (in-process, Starlette's test client). Run from the checkout::

    python -m tests.benchmarks.metrics_history
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from tests.servers import RedisServer  # noqa: E402
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


def main() -> None:
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
