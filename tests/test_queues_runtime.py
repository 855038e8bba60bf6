"""Queues added and removed while a node runs jobs."""

from __future__ import annotations

import time

from tests.conftest import wait_for
from verk_actors import Client, QueueSpec
from verk_actors.actors.messages import (
    AddQueue,
    QueueAdded,
    QueueRemoved,
    RemoveQueue,
    RequestFailed,
)


def test_add_queue_at_runtime_runs_its_jobs(start_verk, redis_server, r) -> None:
    """AddQueue starts a queue that then runs its jobs; adding it twice is refused."""
    node = start_verk()
    with Client(url=redis_server.url) as client:
        client.enqueue("Record", redis_server.url, "mail", "m1", queue="mail")
    assert isinstance(node.asys.ask(node.root, AddQueue("mail", 2), 10), QueueAdded)
    wait_for(lambda: r.llen("mail") == 1)
    again = node.asys.ask(node.root, AddQueue("mail", 2), 10)
    assert isinstance(again, RequestFailed) and "already" in again.message
    bad = node.asys.ask(node.root, AddQueue("bad name", 0), 10)
    assert isinstance(bad, RequestFailed) and bad.error_class == "ConfigurationError"
    node.stop()


def test_remove_queue_while_jobs_run_loses_nothing(start_verk, redis_server, r) -> None:
    """RemoveQueue lets running jobs finish and leaves the rest in the queue, none lost."""
    node = start_verk(queues=(QueueSpec("default", 2),), shutdown_timeout=5.0)
    with Client(url=redis_server.url) as client:
        client.enqueue_many("Sleep", ([redis_server.url, "log", i, 0.3] for i in range(20)))
    wait_for(lambda: r.llen("log") >= 2)
    reply = node.asys.ask(node.root, RemoveQueue("default"), 30)
    assert isinstance(reply, QueueRemoved)
    log = [x.decode() for x in r.lrange("log", 0, -1)]
    started = {x.split(":")[1] for x in log if x.startswith("start:")}
    ended = {x.split(":")[1] for x in log if x.startswith("end:")}
    assert started == ended, "a job was cut off although it had time to finish"
    assert not r.exists(f"inprogress:default:{node.node_id}")
    left = r.llen("queue:default")
    assert left + len(ended) == 20
    assert left > 0
    # The queue no longer runs here: nothing more starts.
    n = r.llen("log")
    time.sleep(0.7)
    assert r.llen("log") == n
    missing = node.asys.ask(node.root, RemoveQueue("default"), 10)
    assert isinstance(missing, RequestFailed)
    node.stop()
