"""Sidekiq's quiet and stop, sent through Redis as Sidekiq's Web sends them.

Sidekiq's Web pushes ``TSTP`` (quiet) or ``TERM`` (stop) onto ``<identity>-signals``;
a node pops one a heartbeat. Quiet: its queues take no new jobs, running jobs finish,
its process entry says ``quiet``. Stop: the node stops as on SIGTERM and
``verk-actors start`` exits 0.
"""

from __future__ import annotations

import time

import redis

from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Client
from verk_actors.store import keys

HEARTBEAT = 0.5


def _identity(r: redis.Redis, node_id: str) -> str:
    found = [i.decode() for i in r.smembers(keys.PROCESSES) if i.decode().endswith(f":{node_id}")]
    assert len(found) == 1, found
    return found[0]


def _signal(r: redis.Redis, identity: str, name: str) -> None:
    """What Sidekiq 6's ``Sidekiq::Process#signal`` does (the Web's buttons call it)."""
    with r.pipeline(transaction=True) as pipe:
        pipe.lpush(keys.process_signals_key(identity), name)
        pipe.expire(keys.process_signals_key(identity), 60)
        pipe.execute()


def test_tstp_quiets_the_node_and_term_stops_it(redis_server, r) -> None:
    """TSTP: the running job finishes, jobs enqueued after stay queued, the process
    entry says quiet; TERM: the launcher exits 0 and nothing is lost."""
    url = redis_server.url
    node = NodeProcess(
        "--redis-url",
        url,
        "--node-id",
        "hush",
        "--queue",
        "default=2",
        "--heartbeat-interval",
        str(HEARTBEAT),
    ).start()
    try:
        with Client(url=url) as client:
            client.enqueue("Record", url, "before", 1)
            client.enqueue("Sleep", url, "log", "long", 2 * HEARTBEAT * 3)
        wait_for(lambda: r.llen("before") == 1 and b"start:long" in r.lrange("log", 0, -1))
        identity = wait_for(lambda: _identity(r, "hush"))
        assert r.hget(identity, "quiet") == b"false"

        _signal(r, identity, "TSTP")
        wait_for(lambda: r.hget(identity, "quiet") == b"true", timeout=3 * HEARTBEAT + 2)
        assert not r.exists(keys.process_signals_key(identity))  # popped
        with Client(url=url) as client:
            jids = [client.enqueue("Record", url, "after", i) for i in range(5)]
        wait_for(lambda: b"end:long" in r.lrange("log", 0, -1), timeout=10)  # it finished
        time.sleep(4 * HEARTBEAT)
        assert r.llen("after") == 0
        assert r.llen("queue:default") == 5
        assert node.process is not None and node.process.poll() is None
        assert r.hget(identity, "quiet") == b"true"  # still, heartbeat after heartbeat

        _signal(r, identity, "TERM")
        assert node.process.wait(timeout=6 * HEARTBEAT + 10) == 0
        assert r.llen("queue:default") == 5  # nothing lost, nothing run
        queued = {j.decode() for j in r.lrange("queue:default", 0, -1)}
        assert all(any(jid in text for text in queued) for jid in jids)
        assert r.llen("after") == 0
        assert r.get("stat:processed") == b"2"
        assert not r.exists(keys.inprogress_key("default", "hush"))
        assert not r.sismember(keys.PROCESSES, identity)
        assert not r.exists(identity)
        assert not r.exists(keys.process_signals_key(identity))
    finally:
        node.kill_if_running()
