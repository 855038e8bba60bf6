"""``verk-actors start``: embedded Valkey by default, a given Redis otherwise, clean stop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import redis

from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from tests.servers import free_port
from verk_actors import Client
from verk_actors.store.embedded import DEFAULT_DATA_DIR, URL_FILE, EmbeddedRedis, running_url


def test_start_without_redis_url_runs_on_embedded_valkey() -> None:
    """No --redis-url: the first line names the embedded server and its URL; jobs run."""
    node = NodeProcess("--demo", env={"VERK_REDIS_URL": ""}).start()
    try:
        first = node.lines[0]
        assert "embedded Valkey" in first
        url = re.search(r"redis://127\.0\.0\.1:\d+/0", first).group(0)
        node.wait_for_line("demo job 10", timeout=30)
        node.wait_for_line("succeeded on retry 1", timeout=30)
        line = node.wait_for_line("the dashboard is at http://127.0.0.1:", timeout=10)
        dashboard = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        stats = json.loads(urllib.request.urlopen(dashboard + "api/stats", timeout=5).read())
        assert stats["totals"]["enqueued"] >= 0
        client = redis.Redis.from_url(url)
        wait_for(lambda: int(client.get("stat:processed") or 0) >= 13)
        client.close()
    finally:
        code = node.terminate()
    assert code == 0
    assert "stopped;" in node.output
    assert (node.cwd + "/verk-data") in node.output


def test_start_with_redis_url_and_sigterm_stops_cleanly(redis_server, r) -> None:
    """With --redis-url the node uses that Redis; SIGTERM lets running jobs finish, exit 0."""
    node = NodeProcess(
        "--redis-url", redis_server.url, "--queue", "default=2", "--queue", "low=1"
    ).start()
    with Client(url=redis_server.url) as client:
        client.enqueue("Sleep", redis_server.url, "log", "a", 1.0)
        client.enqueue("Record", redis_server.url, "low", "b", queue="low")
    wait_for(lambda: r.llen("log") == 1 and r.llen("low") == 1)
    assert node.terminate() == 0
    assert r.lrange("log", 0, -1) == [b"start:a", b"end:a"]
    assert "default=2, low=1" in node.output


def test_start_with_unknown_import_fails_fast_with_exit_2(tmp_path) -> None:
    """A module that cannot be imported stops start with exit code 2 and says which."""
    result = subprocess.run(
        [sys.executable, "-m", "verk_actors", "start", "--import", "no.such.module"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no.such.module" in result.stderr


def test_embedded_valkey_leads_a_session_of_its_own(tmp_path) -> None:
    """Out of the launcher's process group, the server never gets a terminal's Ctrl-C."""
    server = EmbeddedRedis(tmp_path / "data")
    url = server.start()
    try:
        client = redis.Redis.from_url(url)
        pid = int(client.info("server")["process_id"])
        client.close()
        assert os.getsid(pid) == pid != os.getsid(0)
    finally:
        server.stop()


def test_ctrl_c_on_embedded_valkey_lets_the_running_job_finish_and_be_acked() -> None:
    """Ctrl-C signals the launcher's whole process group: the node stops as on SIGTERM.

    When the embedded server was in that group it shut down at once: the running job
    could not write its end or its ack, and the stop logged Redis errors.
    """
    node = NodeProcess(env={"VERK_REDIS_URL": ""}, own_group=True).start()
    url = re.search(r"redis://127\.0\.0\.1:\d+/0", node.lines[0]).group(0)
    client = redis.Redis.from_url(url)
    try:
        with Client(url=url) as verk:
            verk.enqueue("Sleep", url, "log", "a", 1.0)
        wait_for(lambda: client.llen("log") == 1)
        node.interrupt_group()
        assert node.process is not None
        code = node.process.wait(60)
    finally:
        client.close()
        node.kill_if_running()
    assert code == 0
    assert "unavailable" not in node.output
    assert "could not" not in node.output
    reopened = EmbeddedRedis(Path(node.cwd) / "verk-data")
    client = redis.Redis.from_url(reopened.start())
    try:
        assert client.lrange("log", 0, -1) == [b"start:a", b"end:a"]
        assert client.keys("inprogress:*") == []
        assert int(client.get("stat:processed") or 0) == 1
    finally:
        client.close()
        reopened.stop()


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``verk-actors ARGS`` in ``cwd`` with no Redis configured."""
    env = {k: v for k, v in os.environ.items() if k not in ("VERK_REDIS_URL", "VERK_CONFIG")}
    return subprocess.run(
        [sys.executable, "-m", "verk_actors", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_commands_beside_a_node_on_embedded_valkey_use_its_server(tmp_path) -> None:
    """With no Redis configured, `stats` in the node's directory reads the node's server."""
    server = EmbeddedRedis(tmp_path / DEFAULT_DATA_DIR)
    url = server.start()
    try:
        assert running_url(tmp_path / DEFAULT_DATA_DIR) == url
        with Client(url=url) as client:
            client.enqueue("Noop", queue="here")
        result = _cli(tmp_path, "stats", "--json")
        assert result.returncode == 0, result.stderr
        assert url in result.stderr
        assert {"name": "here", "size": 1} in [
            {"name": q["name"], "size": q["size"]} for q in json.loads(result.stdout)["queues"]
        ]
        refused = _cli(tmp_path, "start")
        assert refused.returncode == 2
        assert "already runs" in refused.stderr and url in refused.stderr
    finally:
        server.stop()
    assert not (tmp_path / DEFAULT_DATA_DIR / URL_FILE).exists()
    assert running_url(tmp_path / DEFAULT_DATA_DIR) is None


def test_a_url_file_left_by_a_killed_node_is_ignored(tmp_path) -> None:
    """A node killed outright leaves its file; the server it names no longer answers."""
    (tmp_path / URL_FILE).write_text(f"redis://127.0.0.1:{free_port()}/0\n")
    assert running_url(tmp_path) is None
    (tmp_path / URL_FILE).write_text("redis://elsewhere.example:6379/0\n")
    assert running_url(tmp_path) is None


def test_a_url_file_naming_another_server_is_ignored(tmp_path, redis_server) -> None:
    """A server that answers on the file's port but keeps another directory is not it."""
    (tmp_path / URL_FILE).write_text(redis_server.url + "\n")
    assert running_url(tmp_path) is None
