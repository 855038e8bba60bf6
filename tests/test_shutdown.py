"""Graceful stop: SIGTERM/SIGINT to ``verk-actors start``, and StopVerk to an embedded node.

Running jobs get ``shutdown_timeout`` seconds; what still runs then is killed and put
back in its queue (never in retry); finished jobs are acked; the node leaves no lease,
no Sidekiq process entry, no process and no open admin port behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from tests.conftest import ask_for, wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Client, QueueSpec
from verk_actors.actors.messages import GetStatus, StopVerk, VerkStatus, VerkStopped
from verk_actors.actors.system import attach, root_of
from verk_actors.store import keys

SHUTDOWN_TIMEOUT = 2.0
GRACE = 5.0
"""Seconds a stop may take beyond ``shutdown_timeout`` (actor system teardown, 2 cores)."""


def _jids(texts: list[bytes]) -> list[str]:
    return [json.loads(t)["jid"] for t in texts]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _assert_node_left(r, node_id: str) -> None:
    """The node's lease, registration and Sidekiq process entry are gone."""
    assert not r.exists(keys.node_lease_key(node_id))
    assert not r.sismember(keys.NODES, node_id)
    assert not r.exists(keys.node_queues_key(node_id))
    assert not r.exists(keys.node_info_key(node_id))
    identities = [i.decode() for i in r.smembers(keys.PROCESSES)]
    assert not [i for i in identities if i.endswith(f":{node_id}")]
    assert not r.keys(f"*:{node_id}")  # no process hash either
    assert not r.keys(f"*:{node_id}:workers")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_node_within_shutdown_timeout_and_requeues_long_job(
    redis_server, r, signum
) -> None:
    """A stop signal drains for shutdown_timeout, requeues the long job, exits 0, leaves nothing."""
    node = NodeProcess(
        "--redis-url",
        redis_server.url,
        "--node-id",
        "stopper",
        "--queue",
        "default=3",
        "--shutdown-timeout",
        str(SHUTDOWN_TIMEOUT),
    ).start()
    assert _port_open(node.admin_port)
    url = redis_server.url
    with Client(url=url) as client:
        long_jid = client.enqueue("Sleep", url, "log", "long", 60)
        quick = client.enqueue_many("Record", ([url, "quick", i] for i in range(20)))
    wait_for(lambda: r.llen("quick") == 20 and b"start:long" in r.lrange("log", 0, -1))
    wait_for(lambda: r.get("stat:processed") == b"20", timeout=10)  # the quick ones are acked
    with Client(url=url) as client:
        medium_jid = client.enqueue("Sleep", url, "log", "medium", 1.0)
    wait_for(lambda: b"start:medium" in r.lrange("log", 0, -1))
    assert r.llen("inprogress:default:stopper") == 2

    started = time.monotonic()
    node.send_signal(signum)
    code = node.process.wait(SHUTDOWN_TIMEOUT + 30)
    took = time.monotonic() - started
    print(f"{signal.Signals(signum).name}: exit {code} after {took:.2f} s")

    assert code == 0, node.output
    assert took <= SHUTDOWN_TIMEOUT + GRACE
    log = r.lrange("log", 0, -1)
    assert b"end:medium" in log, "a job that ends within shutdown_timeout finishes"
    assert b"end:long" not in log, "the long job was killed"
    assert _jids(r.lrange("queue:default", 0, -1)) == [long_jid]
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert not r.exists("inprogress:default:stopper")
    assert r.get("stat:processed") == b"21"  # the quick ones and the medium one, acked
    assert medium_jid not in _jids(r.lrange("queue:default", 0, -1))
    assert not set(quick) & set(_jids(r.lrange("queue:default", 0, -1)))
    _assert_node_left(r, "stopper")
    assert not _port_open(node.admin_port), "the actor system's admin port is closed"
    assert not node.processes(), "every process of the node is gone"


def _stop_embedded_with_two_running(start_verk, redis_server, r):
    """An embedded node with two 60 s jobs running and three more queued, stopped by StopVerk.

    Returns the node, the reply, how long it took, every jid and the jids that were in
    progress at the stop (the two running, and any the node had taken ahead).
    """
    node = start_verk(queues=(QueueSpec("default", 2),), shutdown_timeout=1.0)
    url = redis_server.url
    inprogress = f"inprogress:default:{node.node_id}"
    with Client(url=url) as client:
        jids = client.enqueue_many("Sleep", ([url, "log", f"job{i}", 60] for i in range(5)))
    wait_for(lambda: r.llen("log") == 2)
    time.sleep(0.5)  # let the node take whatever it takes ahead
    taken = _jids(r.lrange(inprogress, 0, -1))
    assert set(jids[:2]) <= set(taken), "the two oldest jobs run"
    wait_for(lambda: r.exists(keys.node_lease_key(node.node_id)))
    started = time.monotonic()
    reply = ask_for(node.asys, node.root, StopVerk(), VerkStopped, timeout=30)
    took = time.monotonic() - started
    print(f"StopVerk with {len(taken)} jobs in progress answered {reply!r} after {took:.2f} s")
    return node, reply, took, jids, taken


def test_stop_verk_message_stops_gracefully(start_verk, redis_server, r) -> None:
    """StopVerk gives running jobs shutdown_timeout, then puts them back first in line."""
    node, reply, took, jids, taken = _stop_embedded_with_two_running(start_verk, redis_server, r)
    assert isinstance(reply, VerkStopped)
    assert 1.0 <= took <= 1.0 + GRACE
    # Queue order: the jobs given back run next (the consuming end is the right one).
    pending = _jids(r.lrange("queue:default", 0, -1))
    assert sorted(pending) == sorted(jids)
    assert set(pending[-len(taken) :]) == set(taken)
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert b"end:job0" not in r.lrange("log", 0, -1)
    assert not r.exists(f"inprogress:default:{node.node_id}")
    _assert_node_left(r, node.node_id)


def test_status_after_stop_verk_says_stopped(start_verk, redis_server, r) -> None:
    """After StopVerk, GetStatus says running=False, state "stopped"; a second stop is a no-op."""
    node, *_ = _stop_embedded_with_two_running(start_verk, redis_server, r)
    status = ask_for(node.asys, node.root, GetStatus(), VerkStatus)
    assert (status.running, status.state) == (False, "stopped")
    assert ask_for(node.asys, node.root, StopVerk(), VerkStopped) == VerkStopped(0)


def test_stop_verk_through_the_api_makes_the_launcher_exit_0(redis_server, r) -> None:
    """StopVerk sent to a `verk-actors start` node drains it, and the launcher exits 0."""
    url = redis_server.url
    node = NodeProcess("--redis-url", url, "--queue", "default=2").start()
    try:
        with Client(url=url) as client:
            client.enqueue("Sleep", url, "log", "a", 1.0)
        wait_for(lambda: r.llen("log") == 1)
        asys = attach(node.admin_port)
        reply = ask_for(asys, root_of(asys), StopVerk(), VerkStopped, timeout=30)
        assert reply == VerkStopped(0)
        assert r.lrange("log", 0, -1) == [b"start:a", b"end:a"]
        assert node.process is not None
        code = node.process.wait(20)
    finally:
        node.kill_if_running()
    assert code == 0
    assert "stopped through its API (StopVerk); exiting" in node.output
    wait_for(lambda: not node.processes())
    assert not _port_open(node.admin_port)


def test_stop_verk_reports_requeued_count(start_verk, redis_server, r) -> None:
    """VerkStopped.requeued counts the jobs the stop put back from in progress."""
    _, reply, _, _, taken = _stop_embedded_with_two_running(start_verk, redis_server, r)
    assert reply.requeued == len(taken)


def test_workers_manager_stopped_with_busy_workers_logs_no_error(redis_server, r) -> None:
    """A WorkersManager stopped by its supervisor while jobs run exits without a traceback."""
    url = redis_server.url
    node = NodeProcess("--redis-url", url, "--node-id", "rs", "--queue", "default=2").start()
    try:
        with Client(url=url) as client:
            client.enqueue_many("Sleep", ([url, "log", i, 1.0] for i in range(2)))
        wait_for(lambda: r.llen("log") == 2)
        [manager] = node.actor_pids("QueueManager")
        os.kill(manager, signal.SIGKILL)  # rest_for_one: the WorkersManager is stopped too
        node.wait_for_line("restarting queue_manager, workers_manager")
        wait_for(lambda: len([x for x in r.lrange("log", 0, -1) if x.startswith(b"end:")]) >= 2)
        time.sleep(1.0)  # the old workers have exited, their exits handled
    finally:
        assert node.terminate() == 0
    assert "mmap closed" not in node.output
