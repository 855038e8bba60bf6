"""``async def perform`` off an async-mode queue: refused at registration, failed at run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import wait_for
from tests.nodeproc import ROOT
from verk_actors import Client
from verk_actors.errors import VerkError


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


def test_embedded_node_with_an_async_worker_is_refused(start_verk, redis_server, r) -> None:
    """An embedded node told to import an async worker refuses to start, saying why,
    instead of starting with workers that never come up and a job never run."""
    with Client(url=redis_server.url) as client:
        client.enqueue("AsyncRecord", redis_server.url, "ran", "a")
    with pytest.raises(VerkError) as info:
        start_verk(imports=("tests.async_jobs",))
    assert "AsyncWorkerError" in str(info.value)
    assert "tests.async_jobs.AsyncRecord.perform is async" in str(info.value)
    assert r.llen("queue:default") == 1
    assert not r.exists("ran") and not r.exists("stat:processed")


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
