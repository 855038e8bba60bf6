"""End to end: a node on multiprocTCPBase runs jobs from a real Redis."""

from __future__ import annotations

import collections
import json
import time

import redis

from tests.conftest import wait_for
from verk_actors import Client


def test_thousand_jobs_each_run_exactly_once(start_verk, redis_server, r: redis.Redis) -> None:
    """1,000 jobs enqueued all run exactly once; in-progress ends empty; counters match."""
    node = start_verk()
    with Client(url=redis_server.url) as client:
        jids = client.enqueue_many("Record", ([redis_server.url, "ran", i] for i in range(1000)))
    assert len(set(jids)) == 1000
    wait_for(lambda: r.llen("ran") >= 1000, timeout=60)
    wait_for(lambda: not r.exists(f"inprogress:default:{node.node_id}"), timeout=10)
    counts = collections.Counter(int(x) for x in r.lrange("ran", 0, -1))
    assert sorted(counts) == list(range(1000))
    assert set(counts.values()) == {1}
    assert r.llen("queue:default") == 0
    wait_for(lambda: r.get("stat:processed") == b"1000", timeout=10)
    assert r.get("stat:processed:default") == b"1000"
    assert r.get(f"stat:processed:{time.strftime('%Y-%m-%d', time.gmtime())}") == b"1000"
    assert r.get("stat:failed") is None
    node.stop()
