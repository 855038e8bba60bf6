"""``verk-actors bench``: a short run against a private Redis prints every figure."""

from __future__ import annotations

import json
import os
import time

import pytest
import redis

from tests.conftest import wait_for
from tests.servers import RedisServer
from verk_actors.bench import measure
from verk_actors.cli import EXIT_OK, EXIT_USAGE, main


def test_bench_prints_the_figures(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 500-job bench with --latency prints jobs/s, pickup p50/p99, commands and memory."""
    code = main(["bench", "--jobs", "500", "--latency", "--redis-url", redis_server.url])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert "500 jobs" in out
    assert "jobs/s" in out
    assert "p50" in out and "p99" in out
    assert "commands per job" in out
    assert "per worker slot" in out
    assert f"redis-py {redis.__version__}" in out  # the client the job's INCR ran on
    assert "drain: " in err or "starting the node" in err  # progress went to stderr
    client = redis_server.client()
    assert client.llen("queue:verk-bench") == 0
    assert not client.sismember("queues", "verk-bench")


def test_bench_json_counts_commands(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json gives the drain rate, and Redis commands per job count the enqueue's LPUSH."""
    code = main(["bench", "--jobs", "500", "--concurrency", "4", "--json",
                 "--redis-url", redis_server.url])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    figures = json.loads(out)
    assert figures["jobs"] == 500
    assert figures["drain_jobs"] == 500  # every job counted, the first ones too
    assert figures["concurrency"] == 4
    assert figures["drain_jobs_per_s"] > 0
    assert figures["enqueue_commands"]["lpush"] == 1  # enqueue_many: one LPUSH per 1,000
    assert figures["commands_per_job"] > figures["enqueue_commands_per_job"]
    assert "info" not in figures["commands"]  # the bench's own look-ups are not counted
    assert figures["pickup_p50_ms"] is None
    assert 0 <= figures["drain_steal"] < 1  # Linux: read off /proc/stat


@pytest.mark.parametrize("mode", ["async:10", "threads:10"])
def test_bench_drains_sleeping_jobs_in_a_lane_mode(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """--mode and --sleep drain jobs that wait on a queue of 2 processes x 10 lanes."""
    code = main(["bench", "--jobs", "200", "--concurrency", "20", "--mode", mode,
                 "--sleep", "0.01", "--json", "--redis-url", redis_server.url])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    figures = json.loads(out)
    assert figures["drain_jobs"] == 200
    name = mode.partition(":")[0]
    assert f"({name}, 10 per process), jobs sleep 0.01 s" in figures["setting"]


def test_a_drain_counts_every_job_in_the_time_it_measures() -> None:
    """A drain of 10 jobs, 3 of them done at the first look that sees any, reports 10
    jobs timed from the last look that saw none (it once reported 7)."""
    counts = iter([0, 0, 3, 7, 10])
    looks: list[float] = []

    def done() -> int:
        looks.append(time.monotonic())
        return next(counts)

    started = time.monotonic()
    drain = measure.wait_drained(
        10, done, lambda: True, started=started, timeout=10, progress=measure.Progress(None)
    )
    after = time.monotonic()
    assert drain.jobs == 10
    assert looks[-1] - looks[1] <= drain.seconds  # timed from the second look (or before)
    assert drain.seconds < after - looks[0] - measure.POLL / 2  # not from the first
    assert drain.seconds < drain.wall
    assert drain.rate == 10 / drain.seconds


def test_bench_refuses_a_database_with_keys(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --redis-url database that holds keys is refused (exit 2) and left as it was."""
    client = redis_server.client()
    client.set("precious", "data")
    code = main(["bench", "--jobs", "10", "--redis-url", redis_server.url])
    _, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert "holds 1 key(s)" in err and "--force" in err
    assert client.keys("*") == [b"precious"]


def test_bench_force_runs_beside_data_and_keeps_it(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --force the bench runs on a database with keys, and leaves them and no queue."""
    client = redis_server.client()
    client.set("precious", "data")
    client.lpush("queue:default", "someone else's job")
    code = main(["bench", "--jobs", "200", "--concurrency", "2", "--force",
                 "--redis-url", redis_server.url])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert "200 jobs" in out
    assert client.get("precious") == b"data"
    assert client.lrange("queue:default", 0, -1) == [b"someone else's job"]
    assert client.llen("queue:verk-bench") == 0
    assert not client.sismember("queues", "verk-bench")


def test_bench_with_jobs_waiting_times_the_first_ones_and_deletes_the_rest(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--waiting leaves a long queue behind the timed jobs, then deletes it."""
    code = main(["bench", "--jobs", "300", "--waiting", "5000", "--concurrency", "2",
                 "--json", "--redis-url", redis_server.url])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    figures = json.loads(out)
    assert figures["waiting"] == 5000
    assert figures["drain_jobs"] >= 300
    assert figures["drain_jobs_per_s"] > 0
    client = redis_server.client()
    assert client.llen("queue:verk-bench") == 0
    assert not [k for k in client.keys("inprogress:*") if client.llen(k)]


def test_bench_refuses_latency_with_jobs_waiting(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pickup latency needs an idle node: --latency with --waiting is a usage error."""
    code = main(["bench", "--jobs", "10", "--waiting", "10", "--latency",
                 "--redis-url", redis_server.url])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert "idle node" in err
    assert redis_server.client().keys("*") == []


def test_steal_is_the_share_of_cpu_time_the_host_took(tmp_path, monkeypatch) -> None:
    """CPU steal is the 8th /proc/stat field's share of the ticks between two readings."""
    stat = tmp_path / "stat"
    monkeypatch.setattr(measure, "PROC_STAT", stat)
    stat.write_text("cpu  100 0 50 800 0 0 10 40 0 0\ncpu0 1 2 3\n")
    before = measure.cpu_ticks()
    stat.write_text("cpu  160 0 70 880 0 0 10 80 0 0\ncpu0 1 2 3\n")
    after = measure.cpu_ticks()
    assert before == (1000, 40) and after == (1200, 80)
    assert measure.stolen_share(before, after) == pytest.approx(40 / 200)
    assert measure.stolen_share(after, after) is None
    stat.unlink()
    assert measure.cpu_ticks() is None


def test_memory_sampler_takes_no_sample_while_paused() -> None:
    """A latency test runs with the sampler paused: no process list, no memory read."""
    calls: list[float] = []

    def find() -> list[int]:
        calls.append(time.monotonic())
        return [os.getpid()]

    with measure.MemorySampler(find, every=0.01) as sampler:
        measure.PSS_EVERY, saved = 0.0, measure.PSS_EVERY  # every sample a full one
        try:
            wait_for(lambda: len(calls) >= 3, timeout=5)
            with sampler.paused():
                begun = time.monotonic()
                time.sleep(0.3)
                ended = time.monotonic()
            wait_for(lambda: calls[-1] > ended, timeout=5)
        finally:
            measure.PSS_EVERY = saved
    assert not [t for t in calls if begun <= t <= ended]
    assert sampler.peak_rss > 0
