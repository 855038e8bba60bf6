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


def test_failing_job_goes_to_retry_with_contract_fields(start_verk, redis_server, r) -> None:
    """A job that raises lands in retry with error fields, retry_count 1 and a backoff score."""
    node = start_verk()
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("Fail", redis_server.url, "tries", "x", extra={"tags": ["a"]})
    before = time.time()
    wait_for(lambda: r.zcard("retry") == 1)
    [(text, score)] = r.zrange("retry", 0, -1, withscores=True)
    job = json.loads(text)
    assert job["jid"] == jid
    assert job["class"] == "Fail"
    assert job["error_class"] == "ValueError"
    assert job["error_message"] == "boom x"
    assert job["retry_count"] == 1
    assert job["failed_at"] >= before - 5
    assert "retried_at" not in job
    assert isinstance(job["error_backtrace"], list) and job["error_backtrace"]
    assert job["tags"] == ["a"]
    assert before + 1**4 + 15 + 1 * 2 - 5 <= score <= time.time() + 1**4 + 15 + 30 * 2
    wait_for(lambda: not r.exists(f"inprogress:default:{node.node_id}"))
    wait_for(lambda: r.get("stat:failed") == b"1")
    assert r.get("stat:processed") == b"1"
    node.stop()


def test_exhausted_job_goes_to_dead_after_its_retries(start_verk, redis_server, r) -> None:
    """A job with retry=1 runs twice (first try, one retry) and then lands in dead."""
    node = start_verk()
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("Fail", redis_server.url, "tries", "y", retry=1)
    wait_for(lambda: r.zcard("retry") == 1)
    # Make the retry due now instead of in 18-76 s.
    [text] = r.zrange("retry", 0, -1)
    r.zadd("retry", {text: time.time() - 1})
    wait_for(lambda: r.zcard("dead") == 1, timeout=20)
    [dead] = r.zrange("dead", 0, -1)
    job = json.loads(dead)
    assert job["jid"] == jid
    assert job["retry_count"] == 2
    assert "retried_at" in job and "failed_at" in job
    assert r.lrange("tries", 0, -1) == [b"y", b"y"]
    assert r.zcard("retry") == 0
    node.stop()


def test_scheduled_job_runs_no_earlier_than_its_time(start_verk, redis_server, r) -> None:
    """A job scheduled 1.5 s ahead runs after that time, not before."""
    node = start_verk()
    with Client(url=redis_server.url) as client:
        due = time.time() + 1.5
        client.enqueue_at(due, "Record", redis_server.url, "at", "s")
    assert r.zcard("schedule") == 1
    wait_for(lambda: r.llen("at") == 1, timeout=10)
    assert time.time() >= due
    assert r.zcard("schedule") == 0
    node.stop()


def test_enqueue_by_actor_message_returns_jid(start_verk, redis_server, r) -> None:
    """An Enqueue message to VerkRoot is answered with the jid, and the job runs."""
    from verk_actors.actors.messages import Enqueue, Enqueued, RequestFailed

    node = start_verk()
    reply = node.asys.ask(node.root, Enqueue("Record", (redis_server.url, "msg", "m")), 10)
    assert isinstance(reply, Enqueued)
    wait_for(lambda: r.llen("msg") == 1)
    bad = node.asys.ask(node.root, Enqueue("Record", ({1, 2},)), 10)
    assert isinstance(bad, RequestFailed)
    assert bad.error_class == "InvalidJobError"
    assert "JSON" in bad.message
    node.stop()
