"""Redis refusing commands (error replies) or gone for longer than a lease: nodes keep
their leases and their timers, judge no live node dead, and pick up again at once."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from tests.servers import RedisServer, out_of_memory
from verk_actors import Client
from verk_actors.config.settings import Settings
from verk_actors.store import keys
from verk_actors.store.node_store import NodeStore, node_facts

HEARTBEAT = 1.0
ENV = {"VERK_HEARTBEAT_INTERVAL": str(HEARTBEAT), "VERK_POLL_INTERVAL": "0.2"}
DEAD_LINE = re.compile(r"node \S+: node (\S+) is dead \(no lease\)")


@pytest.fixture
def launch(node_processes: list[NodeProcess]) -> Callable[..., NodeProcess]:
    """Start ``verk-actors start`` nodes (1 s heartbeat, 0.2 s polls); kill leftovers."""

    def start(url: str, node_id: str) -> NodeProcess:
        node = NodeProcess(
            "--redis-url", url, "--node-id", node_id, "--queue", "default=2", env=ENV
        )
        node_processes.append(node)
        return node.start()

    return start


def test_idle_node_keeps_its_lease_and_its_queue_through_oom(start_verk, redis_server, r) -> None:
    """3 s of OOM replies (twice the lease) on an idle node: its lease never lapses, its
    heartbeat goes on, and jobs enqueued afterwards run at once (no standby left wedged)."""
    node = start_verk(heartbeat_interval=HEARTBEAT)
    lease = keys.node_lease_key(node.node_id)
    wait_for(lambda: r.exists(lease) and r.hget(keys.node_info_key(node.node_id), "beat"))
    time.sleep(0.5)  # idle: a worker waits on the queue itself
    lapsed = []
    with out_of_memory(r):
        until = time.monotonic() + 2 * 1.5 * HEARTBEAT
        while time.monotonic() < until:
            if not r.exists(lease):
                lapsed.append(round(until - time.monotonic(), 2))
            time.sleep(0.05)
    recovered_at = time.time()

    def described_again() -> bool:
        """The node wrote its description after Redis took writes again."""
        beat = r.hget(keys.node_info_key(node.node_id), "beat")
        return beat is not None and float(beat) > recovered_at

    assert not lapsed, "the lease lapsed during the OOM"
    wait_for(described_again, timeout=10 * HEARTBEAT)  # before the fix: never
    began = time.monotonic()
    with Client(url=redis_server.url) as client:
        client.enqueue_many("Record", ([redis_server.url, "ran", i] for i in range(20)))
    wait_for(lambda: r.llen("ran") == 20, timeout=10)  # before the fix: not in 120 s
    print(f"20 jobs enqueued after the OOM ran in {time.monotonic() - began:.2f} s")
    node.stop()


def test_redis_away_longer_than_a_lease_declares_no_node_dead(launch) -> None:
    """Redis stopped for 3 s (two leases) under two nodes: when it is back both renew
    their leases before either judges the other, so none is declared dead."""
    server = RedisServer(persist=True).start()
    try:
        a, b = launch(server.url, "a"), launch(server.url, "b")
        for node in (a, b):
            node.wait_for_line("queue default: running")  # holds its lease by then
        server.stop()
        time.sleep(3 * HEARTBEAT)
        server.start()
        r = server.client()

        def both_registered() -> bool:
            """Both nodes hold their leases and are in verk_nodes."""
            return all(
                r.exists(keys.node_lease_key(n)) and r.sismember(keys.NODES, n) for n in "ab"
            )

        wait_for(both_registered, timeout=10)
        time.sleep(3 * HEARTBEAT)  # every scan a node makes in that time finds both alive
        dead = [m[1] for node in (a, b) for m in DEAD_LINE.finditer(node.output)]
        print(f"declared dead after the outage: {dead}")
        assert not dead
        assert both_registered()
        r.close()
        assert a.terminate() == 0
        assert b.terminate() == 0
    finally:
        server.cleanup()


def test_scheduler_moves_due_jobs_within_a_poll_of_redis_returning(launch) -> None:
    """After 8 s without Redis, a due scheduled job moves within two polls (0.2 s) of
    Redis returning; the node said so once, not at every try, and the scheduler left
    it to the node."""
    server = RedisServer(persist=True).start()
    try:
        node = launch(server.url, "s")
        node.wait_for_line("queue default: running")  # the scheduler runs by then
        server.stop()
        time.sleep(8)
        server.start()
        began = time.monotonic()
        r = server.client()
        with Client(url=server.url) as client:
            client.enqueue_at(time.time() - 1, "Record", server.url, "ran", 1)
        wait_for(lambda: r.zcard("schedule") == 0, timeout=15, every=0.01)
        took = time.monotonic() - began
        said: list[str] = []

        def node_said_it_is_back() -> bool:
            """The node logged that Redis answers again."""
            said[:] = [line for line in node.output.splitlines() if "node s: Redis" in line]
            return any("answers again" in line for line in said)

        wait_for(node_said_it_is_back, timeout=10)
        print(f"due job moved {took:.2f} s after Redis returned; the node said:")
        print("\n".join(said))
        assert took <= 0.6, f"moved {took:.2f} s after Redis returned"
        assert len([s for s in said if "unavailable" in s]) == 1
        assert "scheduler: Redis" not in node.output
        r.close()
        assert node.terminate() == 0
    finally:
        server.cleanup()


def test_jobs_of_an_unregistered_node_without_lease_are_recovered(
    start_verk, redis_server, r
) -> None:
    """A node forgotten while stalled that took jobs before it registered again, then
    died: its in-progress list is found by a walk over the keys and its jobs run."""
    with Client(url=redis_server.url) as client:
        texts = [client.build("Record", [redis_server.url, "ran", i]).to_json() for i in range(30)]
    r.rpush("inprogress:default:ghost", *texts)
    r.sadd(keys.QUEUES, "default")
    assert not r.sismember(keys.NODES, "ghost")
    start_verk(heartbeat_interval=HEARTBEAT)
    wait_for(lambda: r.llen("ran") == 30, timeout=4 * HEARTBEAT + 5)
    assert sorted(int(x) for x in r.lrange("ran", 0, -1)) == list(range(30))
    assert not r.exists("inprogress:default:ghost")


def test_walk_finds_only_lists_of_unregistered_nodes_with_one_reading(redis_server, r) -> None:
    """The walk reports lists of nodes neither registered nor itself, and skips lists whose
    queue is unknown or ambiguous (queue names may hold ':')."""
    for key in (
        "inprogress:default:ghost",  # found
        "inprogress:default:live",  # registered: the dead-node scan's business
        "inprogress:default:me",  # this node
        "inprogress:mail:high:n1",  # queue mail:high, node n1: found
        "inprogress:a:b:n2",  # queue a with node b:n2, or queue a:b with node n2
        "inprogress:unknown:n3",  # no such queue
    ):
        r.rpush(key, "{}")
    r.sadd(keys.QUEUES, "default", "mail:high", "a", "a:b")
    r.sadd(keys.NODES, "live")
    store = NodeStore(Settings(redis_url=redis_server.url), node_facts("me", "e", None, 1))
    found, cursor = [], 0
    while True:
        cursor, lists = store.orphan_lists(cursor)
        found += lists
        if cursor == 0:
            break
    store.close()
    assert sorted(found) == [("default", "ghost"), ("mail:high", "n1")]
