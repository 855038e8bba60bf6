"""Redis out of reach: at ``verk-actors start`` (wait, saying so, or give up after
``--redis-wait``), and mid-run (one line when it goes, reminders, one when it is back)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from tests.conftest import wait_for
from tests.nodeproc import ROOT, NodeProcess
from tests.servers import RedisServer, free_port
from verk_actors import Client

ENV = {"VERK_HEARTBEAT_INTERVAL": "1"}


def _start(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verk_actors", "start", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_redis_wait_gives_up_with_exit_1_and_a_redacted_url() -> None:
    """Nothing listens on the port: after --redis-wait seconds start exits 1, naming the
    URL without its password and the bound, with no traceback and nothing started."""
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    began = time.monotonic()
    result = _start("--redis-url", url, "--redis-wait", "2", "--admin-port", str(free_port()))
    took = time.monotonic() - began
    print(result.stderr)
    assert result.returncode == 1
    assert "hunter2" not in result.stderr
    assert "did not answer within 2 s" in result.stderr
    assert re.search(r"redis://:\*+@127\.0\.0\.1:\d+/0", result.stderr)
    assert "Traceback" not in result.stderr
    assert "running: queues" not in result.stderr
    assert 2 <= took < 15


def test_redis_wait_from_the_environment() -> None:
    """VERK_REDIS_WAIT bounds the wait as --redis-wait does."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = subprocess.run(
        [sys.executable, "-m", "verk_actors", "start", "--redis-url", url],
        env={**os.environ, "PYTHONPATH": str(ROOT), "VERK_REDIS_WAIT": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "did not answer within 1 s" in result.stderr


def test_start_waits_for_redis_saying_so_then_runs_when_it_comes() -> None:
    """No bound: start keeps waiting, logs how long every 10 s, and starts the node once
    a server comes up on the port."""
    server = RedisServer()
    node = NodeProcess("--redis-url", server.url, env=ENV)
    try:
        node.start(ready=None)
        first = node.wait_for_line("unavailable", timeout=30)
        assert server.url in first
        node.wait_for_line("no time limit", timeout=5)
        reminder = node.wait_for_line("still failing after 1", timeout=20)
        print(reminder)
        assert "running: queues" not in node.output
        server.start()
        node.wait_for_line(" running: queues", timeout=30)
        assert node.terminate() == 0
    finally:
        node.kill_if_running()
        server.cleanup()


def test_redis_going_away_mid_run_is_one_line_then_reminders_then_one_line() -> None:
    """A node of two queues loses Redis for 13 s: the log says so once for the whole node
    (not once per actor), reminds after 10 s, says once that it is back; jobs run after."""
    server = RedisServer(persist=True).start()
    node = NodeProcess(
        "--redis-url", server.url, "--queue", "default=2", "--queue", "mail=2", env=ENV
    ).start()
    try:
        node.wait_for_line("queue mail: running")
        node.wait_for_line("queue default: running")
        server.stop()
        node.wait_for_line("unavailable", timeout=10)
        node.wait_for_line("still failing after 1", timeout=20)
        server.start()
        node.wait_for_line("answers again", timeout=20)
        time.sleep(3)  # every actor has met Redis again by now
        with Client(url=server.url) as client:
            client.enqueue("Record", server.url, "ran", 1, queue="mail")
        r = server.client()
        wait_for(lambda: r.llen("ran") == 1)
        r.close()
        lines = node.output.splitlines()
        print("\n".join(line for line in lines if "Redis at" in line))
        assert len([line for line in lines if "unavailable" in line]) == 1
        assert len([line for line in lines if "answers again" in line]) == 1
        assert len([line for line in lines if "still failing" in line]) >= 1
        assert node.terminate() == 0
    finally:
        node.kill_if_running()
        server.cleanup()
