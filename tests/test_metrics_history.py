"""The job metrics history: the recorder's keys, sizes and TTLs in a real Redis, the
reads the dashboard makes of them, and a real node's jobs of two classes (one failing)
on /api/metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
from starlette.testclient import TestClient

from tests.conftest import Node, wait_for
from tests.ops_data import job_text
from tests.servers import RedisServer, free_port
from verk_actors.actors.messages import JobsDone
from verk_actors.actors.queue._history import History
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import Settings
from verk_actors.store.admin.job_metrics import class_periods, class_totals, periods
from verk_actors.store.metrics_history import (
    BUCKETS,
    HOUR_TTL,
    MINUTE_TTL,
    SLOTS,
    HistoryWriter,
    minute_of,
)
from verk_actors.web import create_app

NOON = 1_800_000_000 - 1_800_000_000 % 3600  # the start of an hour
"""A fixed hour, so two minutes of one test fall in the same hour."""


def row(executions: int, failures: int, us: float, *buckets: tuple[int, int]) -> list[float]:
    figures = [float(executions), float(failures), us] + [0.0] * (SLOTS - 3)
    for index, count in buckets:
        figures[3 + index] = count
    return figures


def test_the_writer_adds_minutes_and_their_hour_with_ttls(
    r: redis.Redis, redis_server: Any
) -> None:
    """Two writes over two minutes of one hour: each minute's hash holds its own sums,
    the hour's hash their total, with the minute and hour TTLs; zeros are not written."""
    writer = HistoryWriter(redis_server.url, "test")
    first, second = minute_of(NOON + 60), minute_of(NOON + 120)
    writer.write({first: {"A": row(3, 1, 12400.4, (0, 2), (5, 1))}})
    writer.write({first: {"A": row(1, 0, 2000.0, (0, 1))}, second: {"B": row(2, 2, 0.4)}})
    writer.close()
    assert sorted(k.decode() for k in r.keys("verk:metrics:*")) == [
        "verk:metrics:h:" + first[:13],
        "verk:metrics:m:" + first,
        "verk:metrics:m:" + second,
    ]
    minute = r.hgetall("verk:metrics:m:" + first)
    assert minute == {b"A|p": b"4", b"A|f": b"1", b"A|us": b"14400", b"A|b0": b"3", b"A|b5": b"1"}
    assert r.hgetall("verk:metrics:m:" + second) == {b"B|p": b"2", b"B|f": b"2"}
    hour = r.hgetall("verk:metrics:h:" + first[:13])
    assert hour == {**minute, b"B|p": b"2", b"B|f": b"2"}
    assert MINUTE_TTL - 60 < r.ttl("verk:metrics:m:" + first) <= MINUTE_TTL
    assert HOUR_TTL - 60 < r.ttl("verk:metrics:h:" + first[:13]) <= HOUR_TTL


def test_the_reads_over_a_window_and_period_by_period(r: redis.Redis, redis_server: Any) -> None:
    """The hour's window sums the minute hashes per class, the most time first; a class's
    periods list every minute of the hour, zeros where it did not run."""
    writer = HistoryWriter(redis_server.url, "test")
    writer.write(
        {
            minute_of(NOON + 60): {"A": row(3, 1, 30_000, (1, 3)), "B": row(1, 0, 500_000, (6, 1))},
            minute_of(NOON + 600): {"A": row(2, 0, 20_000, (1, 1))},
            minute_of(NOON - 3600): {"A": row(50, 0, 50_000, (0, 50))},  # outside the hour
        }
    )
    writer.close()
    now = NOON + 3599
    b, a = class_totals(r, "1h", now)
    assert (b.name, b.executions, b.us, b.average_ms) == ("B", 1, 500_000, 500.0)
    assert (a.name, a.executions, a.failures, a.us, a.timed) == ("A", 5, 1, 50_000, 4)
    assert a.average_ms == 12.5  # over the 4 jobs whose time is known
    total, rows = class_periods(r, "A", "1h", now)
    assert total == a and len(rows) == 60
    assert [(s - NOON, f.executions) for s, f in rows if f.executions] == [(60, 3), (600, 2)]
    [day_a] = [c for c in class_totals(r, "24h", now) if c.name == "A"]
    assert day_a.executions == 55
    assert len(periods("7d", now)) == 168 and periods("7d", now)[-1][0] == NOON


def done(*timings: tuple[str, float]) -> JobsDone:
    return JobsDone(1, tuple(range(len(timings))), 0.0, (), True, timings=timings)


def test_the_recorder_names_only_registered_classes_and_stays_bounded(
    r: redis.Redis, redis_server: Any
) -> None:
    """Jobs of many unknown classes count as one ``other`` class, so a minute's hash has
    at most one row of fields per registered class, however many jobs ran."""
    settings = Settings(redis_url=redis_server.url, imports=("tests.jobs",))
    history = History(settings, "n1", "default")
    for batch in range(200):
        history.done(done(("tests.jobs.Noop", 0.002), (f"Evil{batch}<script>", 0.02)))
    history.flush(time.monotonic())
    history.close()
    [key] = r.keys("verk:metrics:m:*")
    fields = r.hgetall(key)
    assert {f.decode().rpartition("|")[0] for f in fields} == {"tests.jobs.Noop", "other"}
    assert len(fields) <= 2 * SLOTS
    assert fields[b"tests.jobs.Noop|p"] == b"200" and fields[b"other|p"] == b"200"
    assert fields[b"tests.jobs.Noop|b0"] == b"200"  # <= 5 ms
    assert fields[b"tests.jobs.Noop|us"] == b"400000"
    assert fields[b"other|b" + str(BUCKETS.index(0.025)).encode()] == b"200"


def wait_metrics(web: TestClient, want: dict[str, tuple[int, int]]) -> dict[str, Any]:
    def recorded() -> dict[str, Any] | None:
        """/api/metrics shows the jobs that ran, by class"""
        data = web.get("/api/metrics").json()
        got = {c["class"]: (c["executions"], c["failures"]) for c in data["classes"]}
        return data if got == want else None

    found: dict[str, Any] = wait_for(recorded, timeout=60, every=0.5)
    return found


def test_a_node_records_two_classes_and_the_api_shows_them(
    start_verk: Callable[..., Node], r: redis.Redis, redis_server: RedisServer
) -> None:
    """A real node runs 30 jobs that succeed, 4 that fail (no retries) and one that kills
    its worker: /api/metrics and /api/metrics/<class> count exactly those, with their
    run times (none for the job whose worker died)."""
    node = start_verk(queues=(QueueSpec("default", 3), QueueSpec("crash", 1)))
    try:
        r.sadd("queues", "default", "crash")
        fine = [job_text(**{"class": "tests.jobs.Noop"}, args=[i]) for i in range(30)]
        bad = [
            job_text(**{"class": "tests.jobs.Fail"}, args=[redis_server.url, "fails", i], retry=0)
            for i in range(4)
        ]
        r.lpush("queue:default", *fine, *bad)
        crash = job_text(**{"class": "tests.jobs.Crash"}, args=[redis_server.url, "c", 0], retry=0)
        r.lpush("queue:crash", crash)  # its own queue: no other job shares its batch
        with TestClient(create_app(redis_server.url)) as web:
            want = {
                "tests.jobs.Noop": (30, 0),
                "tests.jobs.Fail": (4, 4),
                "tests.jobs.Crash": (1, 1),
            }
            data = wait_metrics(web, want)
            assert data["totals"]["executions"] == 35 and data["totals"]["failures"] == 5
            [died] = [c for c in data["classes"] if c["class"] == "tests.jobs.Crash"]
            assert sum(died["histogram"]) == 0 and died["average_ms"] is None
            [fail] = [c for c in data["classes"] if c["class"] == "tests.jobs.Fail"]
            assert sum(fail["histogram"]) == 4 and fail["average_ms"] >= 0
            detail = web.get("/api/metrics/tests.jobs.Noop").json()
            assert detail["totals"]["executions"] == 30 and len(detail["periods"]) == 60
            assert sum(p["executions"] for p in detail["periods"]) == 30
            assert sum(detail["totals"]["histogram"]) == 30
            assert detail["totals"]["total_ms"] > 0  # microseconds: quick jobs add up too
            for window in ("24h", "7d"):
                longer = web.get(f"/api/metrics?window={window}").json()
                assert longer["totals"]["executions"] == 35, window
            assert web.get("/api/metrics?window=2y").status_code == 400
            page = web.get("/job-metrics").text
            assert "tests.jobs.Noop" in page and "/job-metrics/tests.jobs.Fail?window=1h" in page
            assert "tests.jobs.Noop" in web.get("/job-metrics/tests.jobs.Noop?window=24h").text
    finally:
        node.stop()


def test_a_node_with_the_history_off_writes_none(
    start_verk: Callable[..., Node], r: redis.Redis
) -> None:
    """``metrics_history=False``: jobs run, and no history key is written."""
    node = start_verk(queues=(QueueSpec("default", 2),), metrics_history=False)
    try:
        r.sadd("queues", "default")
        r.lpush("queue:default", *(job_text(**{"class": "tests.jobs.Noop"}) for _ in range(10)))
        wait_for(lambda: int(r.get("stat:processed") or 0) >= 10, timeout=30)
    finally:
        node.stop()
    assert r.keys("verk:metrics:*") == []


def test_class_names_are_escaped_on_the_pages(r: redis.Redis, redis_server: Any) -> None:
    """A hostile class name in the history is shown as text, never as markup."""
    evil = '"><img src=x onerror=alert(1)><script>alert(1)</script>'
    writer = HistoryWriter(redis_server.url, "test")
    writer.write({minute_of(time.time()): {evil: row(1, 1, 3000, (0, 1))}})
    writer.close()
    with TestClient(create_app(redis_server.url)) as web:
        assert web.get("/api/metrics").json()["classes"][0]["class"] == evil
        page = web.get("/job-metrics").text
        assert "<script>alert(1)" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page
        detail = web.get("/job-metrics/" + evil.replace("/", "%2F").replace("<", "%3C"))
        assert detail.status_code == 200
        assert "<script>alert(1)" not in detail.text and "&lt;script&gt;" in detail.text


def test_figures_wait_while_redis_is_away_and_are_written_later(
    r: redis.Redis, redis_server: Any
) -> None:
    """A write that fails keeps the figures (merged with newer ones) for the next try,
    which writes them all once."""
    away = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", imports=("tests.jobs",))
    history = History(away, "n1", "default")
    history.done(done(("tests.jobs.Noop", 0.002)))
    history.flush(time.monotonic())
    assert history.failing and not history.due(time.monotonic())
    history.done(done(("tests.jobs.Noop", 0.002), ("tests.jobs.Noop", 0.002)))
    history.url, history.writer = redis_server.url, None  # Redis is back
    history.flush(time.monotonic())
    assert not history.failing and history.pending == {}
    history.close()
    total = sum(int(r.hget(k, "tests.jobs.Noop|p") or 0) for k in r.keys("verk:metrics:m:*"))
    assert total == 3
