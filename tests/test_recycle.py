"""Recycling: a worker process is replaced after its queue's max_jobs jobs or once it
holds more than max_memory MB, between jobs, with every job run exactly once."""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import pytest
import redis

from tests.conftest import wait_for
from tests.nodeproc import ROOT, NodeProcess
from tests.servers import RedisServer, free_port
from tests.test_metrics import ready, scrape, total
from verk_actors import Client, QueueSpec
from verk_actors.actors.messages import AddQueue, QueueAdded
from verk_actors.actors.queue._exits import EXIT_GRACE
from verk_actors.config.file import load_config
from verk_actors.config.settings import Settings
from verk_actors.errors import ConfigurationError


def _runs(r: redis.Redis, key: str) -> list[tuple[str, int]]:
    """``(jid, pid)`` of each run the jobs recorded in ``key``."""
    return [
        (jid, int(pid)) for jid, pid in (item.decode().split(":") for item in r.lrange(key, 0, -1))
    ]


def _tree(url: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "verk_actors", "tree", "--redis-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return result.stdout


def test_a_leaking_job_gets_its_worker_recycled(start_verk, redis_server, r) -> None:
    """Jobs that each keep 20 MB: their workers are replaced once past 150 MB, every job
    runs exactly once, none is retried or dead, and nothing stays in progress."""
    node = start_verk(
        queues=(QueueSpec("default", 2, max_memory=150),),
        imports=("tests.jobs", "tests.recycle_jobs"),
    )
    with Client(url=redis_server.url) as client:
        jids = {client.enqueue("Leak", redis_server.url, "ran") for _ in range(30)}
    wait_for(lambda: r.llen("ran") == 30, timeout=120)
    runs = _runs(r, "ran")
    assert sorted(jid for jid, _ in runs) == sorted(jids)
    per_pid = collections.Counter(pid for _, pid in runs)
    # A worker starts at a few tens of MB and grows 20 MB a job: it is replaced after
    # at most 7 jobs (150 / 20 + 1, whatever it starts at), so 30 jobs need 5 or more.
    assert max(per_pid.values()) <= 8, per_pid
    assert len(per_pid) >= 5, per_pid
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    wait_for(lambda: not r.exists(f"inprogress:default:{node.node_id}"))
    node.stop()


def test_max_jobs_caps_each_worker_process(redis_server: RedisServer, r: redis.Redis) -> None:
    """With max_jobs 5, 50 jobs run exactly once each, no process runs more than 5;
    the recycles show in the log at INFO, in the tree and as a metric, and none counts
    as a restart."""
    port = free_port()
    node = NodeProcess(
        "--redis-url",
        redis_server.url,
        "--import",
        "tests.recycle_jobs",
        "--queue",
        "default=3:max_jobs=5",
        "--metrics-port",
        str(port),
    )
    node.start()
    try:
        ready(port)
        with Client(url=redis_server.url) as client:
            jids = {client.enqueue("WhoRan", redis_server.url, "ran") for _ in range(50)}
        wait_for(lambda: r.llen("ran") == 50, timeout=120)
        runs = _runs(r, "ran")
        assert sorted(jid for jid, _ in runs) == sorted(jids)
        per_pid = collections.Counter(pid for _, pid in runs)
        assert max(per_pid.values()) <= 5, per_pid
        assert len(per_pid) >= 10, per_pid
        assert r.zcard("retry") == 0 and r.zcard("dead") == 0
        node.wait_for_line("ran 5 jobs (max_jobs 5); recycling it")
        assert "INFO" in node.wait_for_line("recycling it")

        def counted() -> float:
            """The scrape counts the recycles."""
            return total(scrape(port)[1], "verk_workers_recycled_total", queue="default") >= 7

        wait_for(counted)
        samples = scrape(port)[1]
        assert total(samples, "verk_restarts_total", kind="WorkerActor") == 0
        tree = _tree(redis_server.url)
        assert "recycled" in tree, tree
        assert "restart" not in tree.split("WorkersManager")[1], tree
    finally:
        assert node.terminate() == 0


def test_limits_are_read_from_every_door(tmp_path) -> None:
    """--queue NAME=N:max_jobs=J:max_memory=M:min_workers=F, a TOML table and VERK_* set
    the limits;
    a bad option is refused saying what to write."""
    spec = QueueSpec.parse("images=4:max_jobs=100:max_memory=300:min_workers=1")
    assert (spec.concurrency, spec.max_jobs, spec.max_memory, spec.min_workers) == (4, 100, 300, 1)
    config = tmp_path / "verk.toml"
    config.write_text("[queues.images]\nconcurrency = 4\nmax_memory = 300\n")
    assert load_config(config)["queues"] == (QueueSpec("images", 4, max_memory=300),)
    env = {"VERK_MAX_JOBS_PER_WORKER": "50", "VERK_MAX_MEMORY_PER_WORKER": "500"}
    settings = Settings.from_env(env)
    assert (settings.max_jobs_per_worker, settings.max_memory_per_worker) == (50, 500)
    with pytest.raises(ConfigurationError, match="images=4:max_jobs=100"):
        QueueSpec.parse("images=4:max_jobs=lots")
    with pytest.raises(ConfigurationError, match="unknown option 'max_job'"):
        QueueSpec.parse("images=4:max_job=5")
    with pytest.raises(ConfigurationError, match="at least 0"):
        QueueSpec("images", 4, max_memory=-1)


def test_a_queue_added_at_runtime_takes_its_limits(start_verk, redis_server, r) -> None:
    """AddQueue with max_jobs 2: each of its worker processes runs at most 2 jobs."""
    node = start_verk(imports=("tests.jobs", "tests.recycle_jobs"))
    reply = node.asys.ask(node.root, AddQueue("mail", 2, max_jobs=2, min_workers=1), 10)
    assert isinstance(reply, QueueAdded), reply
    with Client(url=redis_server.url) as client:
        jids = {client.enqueue("WhoRan", redis_server.url, "ran", queue="mail") for _ in range(12)}
    wait_for(lambda: r.llen("ran") == 12, timeout=60)
    runs = _runs(r, "ran")
    assert sorted(jid for jid, _ in runs) == sorted(jids)
    assert max(collections.Counter(pid for _, pid in runs).values()) <= 2
    node.stop()


def test_a_batch_cut_short_by_a_recycle_gives_back_its_other_jobs(
    start_verk, redis_server, r
) -> None:
    """A backlog on one worker goes out in batches; the worker that passes max_memory
    mid-batch starts none of the rest: they go back to the queue and each job still
    runs exactly once."""
    with Client(url=redis_server.url) as client:
        jids = {client.enqueue("Leak", redis_server.url, "ran") for _ in range(40)}
    node = start_verk(
        queues=(QueueSpec("default", 1, max_memory=150),),
        imports=("tests.jobs", "tests.recycle_jobs"),
    )
    wait_for(lambda: r.llen("ran") == 40, timeout=180)
    runs = _runs(r, "ran")
    assert sorted(jid for jid, _ in runs) == sorted(jids)
    per_pid = collections.Counter(pid for _, pid in runs)
    assert max(per_pid.values()) <= 8, per_pid
    assert len(per_pid) >= 6, per_pid
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    wait_for(lambda: not r.exists(f"inprogress:default:{node.node_id}"))
    node.stop()


def test_recycling_and_lazy_options_are_refused_on_lane_queues() -> None:
    """max_jobs, max_memory and min_workers on a threads or async queue are refused,
    saying they apply to process mode only (they would be ignored there)."""
    from verk_actors.config.queue_spec import QueueSpec
    from verk_actors.errors import ConfigurationError

    for text in ("crawl=50:async:10:max_jobs=100", "mail=8:threads:max_memory=300"):
        with pytest.raises(ConfigurationError, match="process mode only"):
            QueueSpec.parse(text)
    with pytest.raises(ConfigurationError, match="min_workers applies to process mode only"):
        QueueSpec("crawl", 50, "async", 10, min_workers=2)
    assert QueueSpec.parse("images=4:max_jobs=100").max_jobs == 100


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_recycled_worker_whose_process_does_not_end_is_killed(
    redis_server: RedisServer, r: redis.Redis, node_processes: list[NodeProcess]
) -> None:
    """Jobs that leave a thread that never ends (their process cannot end): each worker
    is replaced after max_jobs 2 and its process, still there after its actor stopped, is
    killed EXIT_GRACE later, saying so; every job runs exactly once, and the queue's
    next jobs run on a new process."""
    node = NodeProcess(
        "--redis-url",
        redis_server.url,
        "--import",
        "tests.recycle_jobs",
        "--queue",
        "default=1:max_jobs=2",
    )
    node_processes.append(node)
    node.start()
    with Client(url=redis_server.url) as client:
        jids = {client.enqueue("LeavesThread", redis_server.url, "ran") for _ in range(4)}
        wait_for(lambda: r.llen("ran") == 4, timeout=30)
        stuck = {pid for _, pid in _runs(r, "ran")}
        assert len(stuck) == 2
        assert all(_alive(pid) for pid in stuck)  # their actors stopped, their processes not
        line = node.wait_for_line(f"did not end within {EXIT_GRACE:.0f} s", timeout=EXIT_GRACE + 10)
        assert "WARNING" in line and "(a thread that never ends?); killing it" in line
        wait_for(lambda: not any(_alive(pid) for pid in stuck), timeout=EXIT_GRACE + 5)
        later = {client.enqueue("WhoRan", redis_server.url, "ran") for _ in range(2)}
    wait_for(lambda: r.llen("ran") == 6, timeout=30)
    runs = _runs(r, "ran")
    assert sorted(jid for jid, _ in runs) == sorted(jids | later)
    assert not {pid for jid, pid in runs if jid in later} & stuck
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert node.terminate() == 0
