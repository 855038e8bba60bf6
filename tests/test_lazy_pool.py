"""The lazy pool: a queue's workers start as jobs come, idle ones above min_workers stop."""

from __future__ import annotations

import collections

import redis

from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from tests.servers import RedisServer
from tests.test_recycle import _runs, _tree
from verk_actors import Client


def test_workers_start_as_jobs_come_and_idle_ones_stop(
    redis_server: RedisServer, r: redis.Redis, node_processes: list[NodeProcess]
) -> None:
    """min_workers 1 of 8: one worker at start; a backlog of waiting jobs starts more,
    every job runs once; idle for the timeout, the pool shrinks back to one worker,
    with no restart counted."""
    node = NodeProcess(
        "--redis-url",
        redis_server.url,
        "--import",
        "tests.recycle_jobs",
        "--queue",
        "default=8:min_workers=1",
        "--worker-idle-timeout",
        "1",
    )
    node_processes.append(node)
    node.start()
    wait_for(lambda: len(node.actor_pids("WorkerActor")) == 1)
    with Client(url=redis_server.url) as client:
        jids = {client.enqueue("SlowWhoRan", redis_server.url, "ran", 0.2) for _ in range(60)}
    wait_for(lambda: len(node.actor_pids("WorkerActor")) >= 4, timeout=60)
    wait_for(lambda: r.llen("ran") == 60, timeout=120)
    runs = _runs(r, "ran")
    assert sorted(jid for jid, _ in runs) == sorted(jids)
    assert len(collections.Counter(pid for _, pid in runs)) >= 4
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    wait_for(lambda: len(node.actor_pids("WorkerActor")) == 1, timeout=60)
    node.wait_for_line("idle worker(s) stopped")
    tree = _tree(redis_server.url)
    assert "restart" not in tree.split("WorkersManager")[1], tree
    assert "idle worker" not in node.output.replace("idle worker(s) stopped", ""), node.output
    # Jobs after the shrink still run (the pool grows again).
    with Client(url=redis_server.url) as client:
        client.enqueue_many("SlowWhoRan", ([redis_server.url, "again", 0.05] for _ in range(20)))
    wait_for(lambda: r.llen("again") == 20, timeout=60)
    assert node.terminate() == 0
