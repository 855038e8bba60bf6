"""Several nodes on one Redis: dead-node recovery, racing recoverers, stalls, shared ids.

Each node is ``verk-actors start`` in a subprocess with a 1 s heartbeat (lease 1.5 s),
so a dead node's jobs must be back in a queue within two heartbeats of its death.
"""

from __future__ import annotations

import collections
import json
import re
import signal
import threading
import time
from collections.abc import Callable

import pytest

from tests.conftest import node_settings, wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Client
from verk_actors.store import keys
from verk_actors.store.node_store import NodeStore, node_facts

HEARTBEAT = 1.0
ENV = {"VERK_HEARTBEAT_INTERVAL": str(HEARTBEAT)}
MOVED = re.compile(r"node (\S+): node (\S+) is dead \(no lease\); moved (\d+) of its")


@pytest.fixture
def cluster(run_node) -> Callable[..., NodeProcess]:
    """Start nodes on the test's Redis (``cluster(node_id, concurrency)``); kill leftovers."""

    def start(node_id: str, concurrency: int = 4, *extra: str) -> NodeProcess:
        return run_node(
            node_id,
            "--queue",
            f"default={concurrency}",
            "--shutdown-timeout",
            "3",
            *extra,
            env=ENV,
        )

    return start


def _tokens(r, key: str, prefix: bytes) -> collections.Counter:
    return collections.Counter(
        x[len(prefix) :] for x in r.lrange(key, 0, -1) if x.startswith(prefix)
    )


def _moved_by(node: NodeProcess, dead: str) -> int:
    return sum(int(m[3]) for m in MOVED.finditer(node.output) if m[2] == dead)


def _assert_forgotten(r, node_id: str) -> None:
    assert not r.exists(keys.node_lease_key(node_id))
    assert not r.sismember(keys.NODES, node_id)
    assert not r.exists(keys.node_queues_key(node_id))
    assert not [i for i in r.smembers(keys.PROCESSES) if i.decode().endswith(f":{node_id}")]


def test_killed_node_jobs_recovered_within_two_heartbeats(cluster, redis_server, r) -> None:
    """SIGKILL of a node running jobs: a live node requeues them within two heartbeats."""
    url = redis_server.url
    a = cluster("a", 4)
    with Client(url=url) as client:
        client.enqueue_many("FirstSlow", ([url, "log", i, 60] for i in range(4)))
    wait_for(lambda: len(_tokens(r, "log", b"start:")) == 4)
    assert r.llen("inprogress:default:a") == 4
    b = cluster("b", 4)

    started = time.monotonic()
    a.kill_all()
    wait_for(lambda: r.llen("inprogress:default:a") == 0, timeout=10, every=0.005)
    recovered = time.monotonic() - started
    print(f"node a's 4 in-progress jobs recovered {recovered:.2f} s after its SIGKILL")
    assert recovered <= 2 * HEARTBEAT

    wait_for(lambda: len(_tokens(r, "log", b"end:")) == 4, timeout=20)
    assert set(_tokens(r, "log", b"start:").values()) == {2}  # on a (killed), then on b
    assert set(_tokens(r, "log", b"end:").values()) == {1}
    wait_for(lambda: not r.exists("inprogress:default:b"))
    assert r.llen("queue:default") == 0
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    wait_for(lambda: not r.sismember(keys.NODES, "a"))
    _assert_forgotten(r, "a")
    assert _moved_by(b, "a") == 4
    assert b.terminate() == 0


def test_two_nodes_racing_recovery_of_a_dead_node_move_each_job_once(
    cluster, redis_server, r
) -> None:
    """Two live nodes find the same dead node at once; its 3,000 jobs each run exactly once."""
    url = redis_server.url
    b1, b2 = cluster("b1", 4), cluster("b2", 4)
    with Client(url=url) as client:
        texts = [client.build("Record", [url, "ran", i]).to_json() for i in range(3000)]
    pipe = r.pipeline(transaction=True)  # the dead node appears all at once
    pipe.rpush("inprogress:default:ghost", *texts)
    pipe.sadd(keys.node_queues_key("ghost"), "default")
    pipe.sadd(keys.NODES, "ghost")
    pipe.execute()

    wait_for(lambda: r.llen("ran") >= 3000, timeout=60)
    wait_for(lambda: not r.exists("inprogress:default:b1", "inprogress:default:b2"), timeout=10)
    counts = collections.Counter(int(x) for x in r.lrange("ran", 0, -1))
    moved = {"b1": _moved_by(b1, "ghost"), "b2": _moved_by(b2, "ghost")}
    print(f"ghost's 3000 jobs moved back by {moved}; ran {sum(counts.values())} times")
    assert sorted(counts) == list(range(3000))
    assert set(counts.values()) == {1}, "a job moved (and ran) twice"
    assert sum(moved.values()) == 3000
    assert r.llen("queue:default") == 0
    wait_for(lambda: not r.sismember(keys.NODES, "ghost"))
    _assert_forgotten(r, "ghost")
    assert b1.terminate() == 0
    assert b2.terminate() == 0


def test_recovery_race_between_stores_moves_each_job_once(redis_server, r, monkeypatch) -> None:
    """Two NodeStores recovering one dead node in small batches at once move each job once."""
    monkeypatch.setattr("verk_actors.store.node_store.RECOVERY_BATCH", 7)
    texts = [json.dumps({"class": "Noop", "args": [i], "jid": f"j{i}"}) for i in range(3000)]
    r.rpush("inprogress:default:ghost", *texts)
    r.sadd(keys.node_queues_key("ghost"), "default")
    r.sadd(keys.NODES, "ghost")
    settings = node_settings(redis_server.url)
    stores = [NodeStore(settings, node_facts(name, "e", None, 1)) for name in ("live1", "live2")]
    moved = [0, 0]
    barrier = threading.Barrier(2)

    def recover(i: int) -> None:
        barrier.wait()
        moved[i] = stores[i].recover("ghost")

    threads = [threading.Thread(target=recover, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for store in stores:
        store.close()
    print(f"moved by each store: {moved}")
    queued = [t.decode() for t in r.lrange("queue:default", 0, -1)]
    assert sum(moved) == 3000
    assert sorted(queued) == sorted(texts), "each job is in the queue exactly once"
    assert not r.exists("inprogress:default:ghost")
    _assert_forgotten(r, "ghost")


def test_stalled_node_past_its_lease_loses_no_job(cluster, redis_server, r) -> None:
    """SIGSTOP of a node for 4 heartbeats mid-run, then SIGCONT: every job ends, none twice in
    retry, no in-progress leftovers, and the node goes on working."""
    url = redis_server.url
    a, b = cluster("a", 4), cluster("b", 4)
    with Client(url=url) as client:
        sleeps = client.enqueue_many("Sleep", ([url, "log", i, 0.05] for i in range(600)))
        fails = client.enqueue_many("Fail", ([url, "fails", i] for i in range(20)))
    assert len(sleeps) == 600
    wait_for(lambda: r.llen("inprogress:default:a") > 0 and len(_tokens(r, "log", b"end:")) > 60)

    stopped = a.signal_all(signal.SIGSTOP)
    stalled_at = time.monotonic()
    in_progress = r.llen("inprogress:default:a")
    print(f"SIGSTOP to {stopped} processes of node a with {in_progress} jobs in progress")
    assert in_progress > 0
    wait_for(lambda: r.llen("inprogress:default:a") == 0, timeout=10, every=0.01)
    recovered = time.monotonic() - stalled_at
    print(f"node b recovered node a's jobs {recovered:.2f} s into the stall")
    assert recovered <= 2 * HEARTBEAT
    time.sleep(max(0.0, 4 * HEARTBEAT - (time.monotonic() - stalled_at)))
    a.signal_all(signal.SIGCONT)
    print(f"SIGCONT after {time.monotonic() - stalled_at:.2f} s")

    wait_for(lambda: len(_tokens(r, "log", b"end:")) == 600, timeout=60)
    wait_for(lambda: len(set(r.lrange("fails", 0, -1))) == 20, timeout=30)
    wait_for(lambda: r.zcard("retry") >= 20, timeout=30)
    wait_for(lambda: not r.exists("inprogress:default:a", "inprogress:default:b"), timeout=20)
    ends = _tokens(r, "log", b"end:")
    retry = [json.loads(t) for t in r.zrange("retry", 0, -1)]
    print(
        f"jobs run: {sum(ends.values())} Sleep for 600, duplicates "
        f"{sum(ends.values()) - 600}; Fail attempts {r.llen('fails')} for 20; "
        f"retry {len(retry)}, dead {r.zcard('dead')}"
    )
    assert len(ends) == 600
    assert sorted(j["jid"] for j in retry) == sorted(fails), "each failed job once in retry"
    assert all(j["error_class"] == "ValueError" for j in retry)
    assert r.zcard("dead") == 0
    assert r.llen("queue:default") == 0
    assert "its lease had expired" in a.output
    assert _moved_by(b, "a") >= in_progress
    # Node a is a working member again: registered, and it runs new jobs.
    wait_for(lambda: r.exists(keys.node_lease_key("a")) and r.sismember(keys.NODES, "a"))
    b.terminate()
    with Client(url=url) as client:
        client.enqueue_many("Record", ([url, "after", i] for i in range(10)))
    wait_for(lambda: r.llen("after") == 10, timeout=20)
    assert a.terminate() == 0


def test_second_node_with_a_live_nodes_id_stops_and_disturbs_nothing(
    cluster, redis_server, r
) -> None:
    """A node started with the id of a live node waits, sees the lease renewed, exits 1;
    the live node's running jobs are not touched and it carries on."""
    url = redis_server.url
    first = cluster("same", 2)
    with Client(url=url) as client:
        client.enqueue_many("FirstSlow", ([url, "log", i, 3] for i in range(2)))
    wait_for(lambda: len(_tokens(r, "log", b"start:")) == 2)
    lease = r.get(keys.node_lease_key("same"))

    started = time.monotonic()
    second = NodeProcess(
        "--redis-url", url, "--node-id", "same", "--queue", "default=2", env=ENV
    ).start()
    code = second.process.wait(30)
    took = time.monotonic() - started
    print(f"second node with id 'same' exited {code} after {took:.2f} s")
    assert code == 1
    assert "is in use by a live node" in second.output
    assert took <= 1.5 * HEARTBEAT + HEARTBEAT + 10  # one lease, one renewal, start/stop
    assert not second.processes()
    assert r.get(keys.node_lease_key("same")) == lease, "the live node keeps its lease"

    wait_for(lambda: len(_tokens(r, "log", b"end:")) == 2, timeout=10)
    assert set(_tokens(r, "log", b"start:").values()) == {1}, "no running job was requeued"
    with Client(url=url) as client:
        client.enqueue_many("Record", ([url, "after", i] for i in range(10)))
    wait_for(lambda: r.llen("after") == 10, timeout=10)
    wait_for(lambda: not r.exists("inprogress:default:same"), timeout=10)
    assert r.llen("queue:default") == 0
    assert first.process.poll() is None
    assert first.terminate() == 0
