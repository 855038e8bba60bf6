"""``async def perform`` is not supported yet: refused at registration, failed if it slips by."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ask_for, wait_for
from tests.nodeproc import ROOT
from verk_actors import Client
from verk_actors.actors.messages import DescribeTree, TreeNode


def test_start_refuses_a_module_with_an_async_worker(redis_server, tmp_path) -> None:
    """verk-actors start exits 2 naming the async worker and what to do, and runs nothing."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "verk_actors",
            "start",
            "--redis-url",
            redis_server.url,
            "--import",
            "tests.async_jobs",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "tests.async_jobs.AsyncRecord.perform is async" in result.stderr
    assert "asyncio.run" in result.stderr


def _worker_states(node) -> list[str]:
    tree = ask_for(node.asys, node.root, DescribeTree(1, "root"), TreeNode)
    found: list[str] = []
    stack = [tree]
    while stack:
        item = stack.pop()
        if item.kind == "WorkerActor":
            found.append(item.state)
        stack.extend(item.children)
    return found


def test_embedded_node_with_an_async_worker_acks_nothing(start_verk, redis_server, r) -> None:
    """A node told to import an async worker gets no worker up, so its job is never acked."""
    with Client(url=redis_server.url) as client:
        client.enqueue("AsyncRecord", redis_server.url, "ran", "a")
    node = start_verk(imports=("tests.async_jobs",))
    wait_for(lambda: _worker_states(node) == ["broken"] * 5)
    assert r.llen("queue:default") == 1
    assert not r.exists("ran") and not r.exists("stat:processed")
    node.stop()


def test_perform_that_returns_a_coroutine_fails_the_job(start_verk, redis_server, r) -> None:
    """A perform returning an awaitable is not acked: the job goes to retry as AsyncWorkerError."""
    node = start_verk()
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("ReturnsCoroutine", redis_server.url, "ran", "c")
    wait_for(lambda: r.zcard("retry") == 1)
    job = json.loads(r.zrange("retry", 0, -1)[0])
    assert (job["jid"], job["error_class"]) == (jid, "AsyncWorkerError")
    assert "perform returned coroutine, which was not awaited" in job["error_message"]
    assert not r.exists("ran")
    assert r.get("stat:failed") == b"1"
    node.stop()
