"""Ctrl-C twice: the first stop waits for running jobs and says how to hurry it; the
second stops at once, and the running jobs go back to their queues, none lost."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.conftest import ask_for, wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Client, QueueSpec
from verk_actors.actors.messages import StopVerk, VerkStopped

SHUTDOWN_TIMEOUT = 30.0


def _jids(texts: list[bytes]) -> list[str]:
    return [json.loads(t)["jid"] for t in texts]


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_second_signal_stops_at_once_and_requeues_the_running_job(redis_server, r, second) -> None:
    """A 60 s job runs, shutdown_timeout is 30 s: the first SIGINT says it waits for 1
    running job and that Ctrl-C again stops now; the second signal has the launcher
    exit 0 within seconds, the job back in its queue (not in retry or dead), and a
    fresh node then runs it."""
    url = redis_server.url
    node = NodeProcess(
        "--redis-url",
        url,
        "--node-id",
        "hasty",
        "--queue",
        "default=2",
        "--shutdown-timeout",
        str(SHUTDOWN_TIMEOUT),
    ).start()
    with Client(url=url) as client:
        jid = client.enqueue("Sleep", url, "log", "long", 60)
    wait_for(lambda: b"start:long" in r.lrange("log", 0, -1))
    wait_for(lambda: r.hlen("verk:node:hasty:running") == 1, timeout=10)

    node.send_signal(signal.SIGINT)
    said = node.wait_for_line("Ctrl-C again", timeout=10)
    print(said)
    assert f"up to {SHUTDOWN_TIMEOUT:g} s for 1 running job;" in said
    time.sleep(1)
    assert node.process is not None and node.process.poll() is None, "still waiting for it"
    began = time.monotonic()
    node.send_signal(second)
    code = node.process.wait(SHUTDOWN_TIMEOUT)
    took = time.monotonic() - began
    print(f"second {signal.Signals(second).name}: exit {code} after {took:.2f} s")
    assert code == 0, node.output
    assert took < 8, node.output
    assert "stopping now" in node.output
    assert "1 unfinished jobs went back" in node.output
    assert _jids(r.lrange("queue:default", 0, -1)) == [jid]
    assert not r.exists("inprogress:default:hasty")
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert not node.processes(), "every process of the node is gone"

    fresh = NodeProcess("--redis-url", url, "--shutdown-timeout", "1").start()
    try:
        wait_for(lambda: r.lrange("log", 0, -1).count(b"start:long") == 2, timeout=30)
        assert r.llen("queue:default") == 0
        assert fresh.terminate() == 0
    finally:
        fresh.kill_if_running()


def test_stop_verk_with_a_timeout_hurries_a_stop_under_way(start_verk, redis_server, r) -> None:
    """Embedded: a StopVerk(timeout=0) sent while a graceful stop waits for a 60 s job
    stops it at once; both requests are answered, the job is back in its queue."""
    node = start_verk(queues=(QueueSpec("default", 1),), shutdown_timeout=60.0)
    url = redis_server.url
    with Client(url=url) as client:
        jid = client.enqueue("Sleep", url, "log", "long", 60)
    wait_for(lambda: b"start:long" in r.lrange("log", 0, -1))
    node.asys.tell(node.root, StopVerk())
    time.sleep(0.5)
    began = time.monotonic()
    reply = ask_for(node.asys, node.root, StopVerk(timeout=0.0), VerkStopped, timeout=20)
    took = time.monotonic() - began
    print(f"hurried stop answered {reply!r} after {took:.2f} s")
    assert took < 8
    assert reply.requeued == 1
    assert _jids(r.lrange("queue:default", 0, -1)) == [jid]
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
