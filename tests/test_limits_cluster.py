"""Limiters across a cluster of ``verk-actors start`` nodes: a concurrent limit never
exceeded by five nodes, a window limit measured over seconds, and a node killed while
holding slots."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest
import redis

from tests.conftest import wait_for
from tests.limit_jobs import DONE, LATE, MOST, RUNNING, SEEN, STARTS
from tests.nodeproc import ROOT, NodeProcess
from tests.servers import RedisServer
from verk_actors import Concurrent
from verk_actors.store import keys
from verk_actors.store.client import Client
from verk_actors.store.scripts import Scripts


@pytest.fixture
def limit_nodes(
    redis_server: RedisServer, node_processes: list[NodeProcess]
) -> Callable[..., list[NodeProcess]]:
    """Start ``count`` nodes running the limiter workers, all at once, and wait until
    each runs: ``limit_nodes(count, prefix, workers)``; killed after the test."""

    def start(count: int, prefix: str, workers: int = 2) -> list[NodeProcess]:
        nodes = []
        for n in range(count):
            node = NodeProcess(
                "--redis-url",
                redis_server.url,
                "--node-id",
                f"{prefix}-{n}",
                "--import",
                "tests.limit_jobs",
                "--queue",
                f"default={workers}",
                "--heartbeat-interval",
                "1",
                "--poll-interval",
                "0.2",
                "--shutdown-timeout",
                "2",
            )
            node_processes.append(node)
            nodes.append(node.start(ready=None))
        for node in nodes:
            node.wait_for_line(" running: queues", timeout=60)
        return nodes

    return start


def starts(r: redis.Redis) -> dict[str, float]:
    """When each job (by jid) last started, in Redis's clock."""
    found: dict[str, float] = {}
    for entry in r.lrange(STARTS, 0, -1):
        jid, at = entry.decode().split()
        found[jid] = float(at)
    return found


def test_five_nodes_never_run_more_than_three_at_once(
    limit_nodes, redis_server: RedisServer, r: redis.Redis
) -> None:
    """Five nodes of two workers each run 24 jobs limited to 3 at once ("api", taken
    before perform or inside it): never more than 3 ran together (as the jobs counted
    themselves), all ran once, and none used a retry, failed or went to dead."""
    nodes = limit_nodes(5, "conc")
    client = Client(r)
    url = redis_server.url
    jids = [client.enqueue("ConcurrentJob", url, 0.3) for _ in range(18)]
    jids += [client.enqueue("InsideJob", url, 0.3) for _ in range(6)]
    wait_for(lambda: r.llen(DONE) == len(jids), timeout=180, every=0.2)
    assert sorted(r.lrange(DONE, 0, -1)) == sorted(j.encode() for j in jids if j)
    assert 2 <= int(r.get(MOST) or 0) <= 3
    assert int(r.get(RUNNING) or 0) == 0
    seen = [line.decode().split() for line in r.lrange(SEEN, 0, -1)]
    assert all(retry_count == "None" for _, _, retry_count in seen)
    assert any(int(limited) > 0 for _, limited, _ in seen)  # some were put back, and came
    assert r.zcard(keys.RETRY) == 0 and r.zcard(keys.DEAD) == 0
    assert not r.exists(keys.STAT_FAILED)
    # Acks are written a moment after the jobs end; a deferral is not counted.
    wait_for(lambda: int(r.get(keys.STAT_PROCESSED) or 0) == len(jids), timeout=10)
    assert not r.exists(keys.STAT_FAILED)
    wait_for(lambda: r.zcard(keys.limit_slots_key("api")) == 0, timeout=10)
    for node in nodes:
        node.terminate()


def test_a_window_limit_measured_over_seconds(
    limit_nodes, redis_server: RedisServer, r: redis.Redis
) -> None:
    """Two nodes run 25 jobs limited to 5 a second: no 6 of them took the limiter
    within a second (by the times it kept), so they took over 4 s."""
    nodes = limit_nodes(2, "win", workers=3)
    client = Client(r)
    client.enqueue_many("WindowJob", [(redis_server.url,)] * 25)
    wait_for(lambda: r.llen(DONE) == 25, timeout=180, every=0.2)
    started = starts(r)
    assert len(started) == 25
    # Each job noted its take's time; one that got to it over a second late (rare)
    # could not, and is left out: fewer takes only widen the gaps.
    late = {jid.decode() for jid in r.lrange(LATE, 0, -1)}
    times = sorted(at for jid, at in started.items() if jid not in late)
    assert len(times) >= 20
    gaps = [times[i + 5] - times[i] for i in range(len(times) - 5)]
    assert min(gaps) >= 0.99, gaps  # Redis's clock; 10 ms for float rounding
    assert times[-1] - times[0] >= (len(times) - 1) // 5 * 0.99
    seen = [line.decode().split() for line in r.lrange(SEEN, 0, -1)]
    assert all(retry_count == "None" for _, _, retry_count in seen)
    assert r.zcard(keys.RETRY) == 0 and not r.exists(keys.STAT_FAILED)
    for node in nodes:
        node.terminate()


def test_the_queue_runs_other_jobs_while_a_limiter_is_full(
    limit_nodes, redis_server: RedisServer, r: redis.Redis
) -> None:
    """While outsiders hold every slot of "api", the node's limited jobs wait in
    ``schedule`` and its other jobs of the same queue run; once the slots are free the
    limited jobs run, put back some times each and with no retry used."""
    url = redis_server.url
    scripts = Scripts(r)
    for n in range(3):
        assert scripts.limit_take(r, Concurrent("api", 3), f"outsider-{n}", 120) is None
    [node] = limit_nodes(1, "busy", workers=2)
    client = Client(r)
    jids = [client.enqueue("ConcurrentJob", url, 0.05) for _ in range(4)]
    client.enqueue_many("Record", [(url, "plain", n) for n in range(20)])
    wait_for(lambda: r.llen("plain") == 20, timeout=60)
    wait_for(lambda: r.zcard(keys.SCHEDULE) >= 1, timeout=30)  # put back, waiting
    assert r.llen(DONE) == 0
    r.delete(keys.limit_slots_key("api"))
    wait_for(lambda: r.llen(DONE) == 4, timeout=120, every=0.2)
    assert sorted(r.lrange(DONE, 0, -1)) == sorted(j.encode() for j in jids)
    seen = [line.decode().split() for line in r.lrange(SEEN, 0, -1)]
    assert len(seen) == 4
    assert all(int(limited) >= 1 and retry_count == "None" for _, limited, retry_count in seen)
    assert r.zcard(keys.RETRY) == 0 and not r.exists(keys.STAT_FAILED)
    node.terminate()


def limits_cli(url: str) -> dict[str, dict[str, object]]:
    """``verk-actors limits --json``, by limiter name."""
    out = subprocess.run(
        [sys.executable, "-m", "verk_actors", "limits", "--redis-url", url, "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return {entry["name"]: entry for entry in json.loads(out)["limits"]}


def test_a_killed_nodes_slots_come_back_after_their_lease(
    limit_nodes, redis_server: RedisServer, r: redis.Redis
) -> None:
    """A node SIGKILLed while its jobs hold all 3 slots (4 s leases): another node's
    jobs wait until those leases end, then every job runs, the killed ones again."""
    url = redis_server.url
    [first] = limit_nodes(1, "held", workers=3)
    client = Client(r)
    held = [client.enqueue("ShortLeaseJob", url, 3.0) for _ in range(3)]
    wait_for(lambda: r.llen(STARTS) == 3, timeout=60)
    shown = limits_cli(url)["api-kill"]
    assert shown["in_use"] == 3 and shown["kind"] == "concurrent" and shown["limit"] == 3
    assert {h["node"] for h in shown["holders"]} == {"held-0"}  # type: ignore[union-attr]
    leases_end = min(
        score for _, score in r.zrange(keys.limit_slots_key("api-kill"), 0, -1, withscores=True)
    )
    first.kill_all()
    [second] = limit_nodes(1, "after", workers=3)
    quick = [client.enqueue("ShortLeaseJob", url, 0.1) for _ in range(3)]
    wait_for(lambda: r.llen(DONE) == 6, timeout=120, every=0.2)
    assert sorted(r.lrange(DONE, 0, -1)) == sorted(j.encode() for j in held + quick if j)
    started = starts(r)
    # Every job that started after the kill (the new ones, and the killed ones run
    # again) did so once the dead node's leases had ended.
    assert min(started[j] for j in quick + held if j) >= leases_end - 0.01
    assert r.zcard(keys.RETRY) == 0
    wait_for(lambda: limits_cli(url)["api-kill"]["in_use"] == 0, timeout=10)
    second.terminate()
