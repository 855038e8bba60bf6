"""Threads and async queues added and removed at run time, on a node started without one."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import wait_for
from verk_actors import Client, QueueSpec
from verk_actors.actors.messages import (
    AddQueue,
    DescribeTree,
    QueueAdded,
    QueueRemoved,
    RemoveQueue,
    TreeNode,
)

ASYNC_IMPORTS = ("tests.jobs", "tests.lane_jobs", "tests.async_lane_jobs")


def _pids(node: TreeNode) -> set[int]:
    """The process of every actor in ``node``'s subtree."""
    found = {node.pid} if node.pid else set()
    for child in node.children:
        found |= _pids(child)
    return found


def _queue_pids(node, queue: str) -> set[int]:
    """The processes of ``queue``'s subtree, once its workers have all started."""
    tree = node.asys.ask(node.root, DescribeTree(1, "root"), 10)
    if not isinstance(tree, TreeNode):
        return set()
    for child in tree.children:
        if child.name == f"queue:{queue}":
            workers = [n for n in _walk(child) if n.kind in ("LaneWorkerActor", "WorkerActor")]
            if workers and all(w.pid for w in workers):
                return _pids(child)
    return set()


def _walk(node: TreeNode) -> list[TreeNode]:
    return [node, *(n for child in node.children for n in _walk(child))]


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _error(r, jid: str) -> tuple[str, str]:
    for text in r.zrange("retry", 0, -1):
        job = json.loads(text)
        if job["jid"] == jid:
            return job["error_class"], job["error_message"]
    return "", ""


def test_async_and_threads_queues_added_to_a_node_started_without_one(
    start_verk, redis_server, r
) -> None:
    """A node with one process-mode queue and async workers among its modules starts;
    AddQueue of an async and of a threads queue is answered QueueAdded as for a process
    queue, and their jobs run (the async ones awaited on the async queue); an async job
    on the process or the threads queue fails with AsyncWorkerError saying why."""
    node = start_verk(queues=(QueueSpec("default", 2),), imports=ASYNC_IMPORTS)
    assert node.asys.ask(node.root, AddQueue("crawl", 4, "async", 4), 10) == QueueAdded("crawl")
    assert node.asys.ask(node.root, AddQueue("mail", 2, "threads", 2), 10) == QueueAdded("mail")
    assert node.asys.ask(node.root, AddQueue("low", 1), 10) == QueueAdded("low")  # the same
    url = redis_server.url
    with Client(url=url) as client:
        client.enqueue_many("AsyncNap", ([url, "crawled", 0.2, i] for i in range(8)), queue="crawl")
        client.enqueue_many("ThreadNap", ([url, "mailed", 0.01, i] for i in range(4)), queue="mail")
        on_process = client.enqueue("AsyncNap", url, "never", 0.01, "p", queue="default")
        on_threads = client.enqueue("AsyncNap", url, "never", 0.01, "t", queue="mail")
    wait_for(lambda: r.llen("crawled") == 8 and r.llen("mailed") == 4, timeout=20)
    wait_for(lambda: r.zcard("retry") == 2, timeout=20)
    for jid in (on_process, on_threads):
        error_class, message = _error(r, jid)
        assert error_class == "AsyncWorkerError"
        assert "AsyncNap.perform is async, and only a queue in async mode runs" in message
    assert not r.exists("never")
    spans = [text.split() for text in r.lrange("crawled", 0, -1)]
    assert len({pid for _, pid, _, _ in spans}) == 1  # 4 lanes in one process
    assert max(float(b) for *_, b, _ in spans) - min(float(b) for *_, b, _ in spans) < 1.0
    node.stop()


@pytest.mark.parametrize("mode", ["async", "threads"])
def test_removed_lane_queue_leaves_no_process_behind(start_verk, redis_server, r, mode) -> None:
    """RemoveQueue of a lane queue added at run time: QueueRemoved, and every process of
    its subtree (supervisor, managers, the worker processes with their lanes) is gone."""
    node = start_verk(queues=(QueueSpec("default", 1),), imports=ASYNC_IMPORTS)
    assert node.asys.ask(node.root, AddQueue("crawl", 4, mode, 2), 10) == QueueAdded("crawl")
    worker = "AsyncNap" if mode == "async" else "ThreadNap"
    with Client(url=redis_server.url) as client:
        args = ([redis_server.url, "spans", 0.01, i] for i in range(4))
        client.enqueue_many(worker, args, queue="crawl")
    wait_for(lambda: r.llen("spans") == 4, timeout=20)
    pids = wait_for(lambda: _queue_pids(node, "crawl"))
    lane_pids = {int(text.split()[1]) for text in r.lrange("spans", 0, -1)}
    assert lane_pids <= pids and len(pids) >= 5  # supervisor, 2 managers, 2 workers
    assert all(_running(pid) for pid in pids)
    reply = node.asys.ask(node.root, RemoveQueue("crawl"), 30)
    assert reply == QueueRemoved("crawl", 0)
    wait_for(lambda: not [pid for pid in pids if _running(pid)], timeout=10)
    assert os.getpid() not in pids
    node.stop()
