"""``async def perform`` off an async-mode queue: refused by ``start``, failed at run."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from tests.conftest import node_settings, wait_for
from tests.nodeproc import ROOT
from verk_actors import Client, QueueSpec
from verk_actors.config.validate import check_node_settings


def test_start_refuses_a_module_with_an_async_worker(redis_server, tmp_path) -> None:
    """verk-actors start without an async queue exits 2 naming the async worker and what to do."""
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


def test_embedded_node_without_async_queue_starts_and_fails_async_jobs(
    start_verk, redis_server, r
) -> None:
    """An embedded node with an async worker but no async queue starts (AddQueue may add
    one); the async job on its process queue goes to retry as AsyncWorkerError, never
    acked unrun."""
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("AsyncRecord", redis_server.url, "ran", "a")
    node = start_verk(imports=("tests.jobs", "tests.async_jobs"))
    wait_for(lambda: r.zcard("retry") == 1)
    job = json.loads(r.zrange("retry", 0, -1)[0])
    assert (job["jid"], job["error_class"]) == (jid, "AsyncWorkerError")
    assert "tests.async_jobs.AsyncRecord.perform is async" in job["error_message"]
    assert not r.exists("ran")
    node.stop()


def test_node_check_warns_of_async_workers_without_async_queue(caplog) -> None:
    """The node's settings check admits async workers without an async queue, warning
    which ones wait for one; with an async queue it says nothing."""
    settings = node_settings("redis://127.0.0.1:1/0", imports=("tests.jobs", "tests.async_jobs"))
    with caplog.at_level(logging.WARNING, logger="verk_actors.config.validate"):
        registry = check_node_settings(settings)
        assert "AsyncRecord" in registry
        assert len(caplog.records) == 1
        assert "tests.async_jobs.AsyncRecord run only once one is added" in caplog.text
        check_node_settings(settings.with_changes(queues=(QueueSpec("crawl", 5, "async"),)))
        assert len(caplog.records) == 1


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
