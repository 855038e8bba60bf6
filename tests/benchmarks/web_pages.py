"""How long the dashboard's pages take with 1,000,000 jobs in a queue and 100,000 in
retry (issue 15): each page and API answer timed in-process (Starlette's test client,
so no network), median of several runs, against a private Redis on a free port.

    .venv/bin/python -m tests.benchmarks.web_pages [--queue 1000000] [--retry 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from urllib.parse import quote

from starlette.testclient import TestClient

from tests.servers import RedisServer
from verk_actors.web import create_app

BATCH = 10_000


def job(i: int, **extra: object) -> str:
    return json.dumps(
        {
            "class": "Bill" if i % 10 else "Mail",
            "args": [i, f"customer-{i}", {"amount": i % 997}],
            "jid": f"{i:024x}",
            "queue": "big",
            "retry": True,
            "created_at": 1.7e9 + i,
            "enqueued_at": 1.7e9 + i,
            **extra,
        }
    )


def fill(server: RedisServer, queued: int, retries: int) -> None:
    r = server.client()
    r.sadd("queues", "big", "small")
    r.lpush("queue:small", *(job(i) for i in range(10)))
    for start in range(0, queued, BATCH):
        r.lpush("queue:big", *(job(i) for i in range(start, min(start + BATCH, queued))))
    now = time.time()
    failed = {"retry_count": 3, "error_class": "KeyError", "error_message": "no such customer"}
    for start in range(0, retries, BATCH):
        r.zadd(
            "retry",
            {job(i, **failed): now + i for i in range(start, min(start + BATCH, retries))},
        )
    r.zadd("dead", {job(i, **failed): now - i for i in range(1000)})
    r.zadd("schedule", {job(i): now + 3600 + i for i in range(1000)})
    r.close()


def timed(web: TestClient, path: str, runs: int) -> tuple[float, int]:
    times = []
    size = 0
    for _ in range(runs):
        start = time.perf_counter()
        response = web.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        size = len(response.content)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", type=int, default=1_000_000)
    parser.add_argument("--retry", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        start = time.perf_counter()
        fill(server, args.queue, args.retry)
        print(
            f"filled {args.queue:,} queued, {args.retry:,} retries in "
            f"{time.perf_counter() - start:.1f} s"
        )
        with TestClient(create_app(server.url)) as web:
            key = web.get(f"/api/retries?offset={args.retry // 2}&limit=1").json()["entries"][0][
                "key"
            ]
            paths = [
                "/",
                "/api/dashboard",
                "/api/stats",
                "/busy",
                "/queues",
                "/queues/big",
                f"/queues/big?offset={args.queue - 25}",
                f"/api/queues/big?offset={args.queue // 2}",
                "/retries",
                f"/retries?offset={args.retry - 25}",
                "/retries?sort=desc",
                f"/api/retries?offset={args.retry // 2}",
                "/retries?class=Mail",
                "/retries?class=Mail&offset=975",
                "/retries?q=customer-99999",
                "/retries?error_class=NoSuchError",
                f"/retries/{quote(key, safe='')}",
                "/dead",
                "/scheduled",
            ]
            print(f"{'page':48} {'ms (median of ' + str(args.runs) + ')':>18} {'bytes':>10}")
            for path in paths:
                ms, size = timed(web, path, args.runs)
                print(f"{path[:48]:48} {ms:18.1f} {size:10,}")
            token = web.cookies.get("verk_csrf")
            for label, path, form in (
                (
                    "POST delete 1 job from the 1M queue (scan)",
                    "/queues/action",
                    {"name": "big", "action": "delete", "jid": f"{args.queue // 2:024x}"},
                ),
                (
                    "POST delete 1 job at its listed offset",
                    "/queues/action",
                    {
                        "name": "big",
                        "action": "delete",
                        "jid": f"{args.queue // 2 + 7:024x}",
                        "pos": str(args.queue // 2 + 7),  # listed there before the delete above
                    },
                ),
                ("POST retry 1 entry by key", "/retries/action", {"action": "retry", "key": key}),
            ):
                start = time.perf_counter()
                response = web.post(path, data={**form, "csrf": token})
                ms = (time.perf_counter() - start) * 1000
                assert response.status_code == 200, response.text[:300]
                print(f"{label:48} {ms:18.1f}")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
