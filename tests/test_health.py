"""``verk-actors health``: 0 while a node is alive and taking jobs, 1 with one line saying
why once it is not (stopped, killed, no such node, Redis away) — a liveness probe."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from tests.conftest import wait_for
from tests.nodeproc import ROOT, NodeProcess
from tests.servers import free_port

ENV = {"VERK_HEARTBEAT_INTERVAL": "1"}
"""A 1 s heartbeat: a node's lease lives 1.5 s."""


def _health(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VERK_REDIS_URL", "VERK_CONFIG")}
    return subprocess.run(
        [sys.executable, "-m", "verk_actors", "health", "--redis-url", url, *args],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_health_of_a_running_node_then_a_stopped_one(redis_server) -> None:
    """A running node is healthy, by host and by id (exit 0, one line on stdout); another
    id is not; once the node stopped, neither is it (exit 1, one line on stderr)."""
    url = redis_server.url
    node = NodeProcess("--redis-url", url, "--node-id", "probed", "--queue", "mail=3", env=ENV)
    node.start()
    try:
        by_host = _health(url)
        print(by_host.stdout, by_host.stderr)
        assert by_host.returncode == 0, by_host.stderr
        assert by_host.stdout.startswith("ok: node probed alive")
        assert "queues mail=3" in by_host.stdout
        assert len(by_host.stdout.splitlines()) == 1
        assert _health(url, "--node", "probed").returncode == 0
        as_json = _health(url, "--node", "probed", "--json")
        assert json.loads(as_json.stdout)["healthy"] is True
        other = _health(url, "--node", "nosuch")
        assert other.returncode == 1
        assert (
            other.stderr
            == "verk-actors: unhealthy: no node nosuch in Redis (never started, or stopped)\n"
        )
        assert node.terminate() == 0
    finally:
        node.kill_if_running()
    after = _health(url)
    print(after.stderr)
    assert after.returncode == 1
    assert after.stderr.startswith("verk-actors: unhealthy: no node of host")
    assert _health(url, "--node", "probed").returncode == 1


def test_a_killed_node_is_unhealthy_within_two_heartbeats(redis_server) -> None:
    """SIGKILL to every process of a node: its lease runs out and health says so."""
    url = redis_server.url
    node = NodeProcess("--redis-url", url, "--node-id", "doomed", env=ENV).start()
    try:
        assert _health(url, "--node", "doomed").returncode == 0
        node.signal_all(signal.SIGKILL)
        assert node.process is not None
        node.process.wait(10)
        killed = time.monotonic()

        def unhealthy() -> subprocess.CompletedProcess[str] | None:
            """health --node doomed exits 1."""
            result = _health(url, "--node", "doomed")
            return result if result.returncode == 1 else None

        result = wait_for(unhealthy, timeout=10, every=0.2)
        took = time.monotonic() - killed
        print(f"unhealthy {took:.1f} s after the kill: {result.stderr}")
        assert "has no heartbeat lease" in result.stderr
        assert "doomed" in result.stderr
        by_host = _health(url)
        assert by_host.returncode == 1
        assert f"no node of host {socket.gethostname()} holds a heartbeat lease" in by_host.stderr
    finally:
        node.kill_if_running()


def test_health_without_redis_is_unhealthy_within_its_timeout() -> None:
    """Redis out of reach: exit 1 at once, naming it."""
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    result = _health(url, "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("verk-actors: unhealthy: cannot reach Redis at redis://:***@")
    assert "secret" not in result.stderr
