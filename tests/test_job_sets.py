"""The retry, schedule and dead sets through JobSet, against a real Redis."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from tests.ops_data import add_to_set, failed_fields, job_text
from tests.servers import RedisServer
from verk_actors.errors import ConfigurationError, MalformedJobError, NotFoundError
from verk_actors.jobs.retry import bury_malformed
from verk_actors.store import keys
from verk_actors.store.admin.job_sets import JobSet, glob_escape


def queued(r: redis.Redis, queue: str = "default") -> list[dict]:
    """The jobs of a queue, oldest first, as JSON objects."""
    return [json.loads(t) for t in reversed(r.lrange(keys.queue_key(queue), 0, -1))]


def test_set_names_and_aliases(r: redis.Redis) -> None:
    """`scheduled` names the schedule set, and an unknown name says which ones exist."""
    assert JobSet(r, "scheduled").key == keys.SCHEDULE
    assert JobSet(r, "dead").key == keys.DEAD
    with pytest.raises(ConfigurationError, match="retry, schedule"):
        JobSet(r, "failed")


def test_page_orders_by_score_and_dead_newest_first(r: redis.Redis) -> None:
    """Retry lists the next try first, dead the latest death first, both paged."""
    now = time.time()
    for n in range(5):
        add_to_set(r, keys.RETRY, now + n, args=[n])
        add_to_set(r, keys.DEAD, now - n, args=[n])
    retries = JobSet(r, "retry")
    assert retries.count() == 5
    assert [e.stored.job.args for e in retries.page(0, 2)] == [[0], [1]]
    assert [e.stored.job.args for e in retries.page(2, 2)] == [[2], [3]]
    assert [e.stored.job.args for e in retries.page(1, 2, newest_first=True)] == [[3], [2]]
    assert [e.stored.job.args for e in JobSet(r, "dead").page(0, 3)] == [[0], [1], [2]]
    assert retries.page(0, 0) == []
    assert retries.page(10, 5) == []


def test_malformed_members_are_listed_raw(r: redis.Redis) -> None:
    """A member that is not JSON, or has no class, is listed with its text and an error."""
    now = time.time()
    r.zadd(keys.DEAD, {"not json {": now, '{"jid": "j1", "args": []}': now + 1})
    add_to_set(r, keys.DEAD, now + 2)
    entries = JobSet(r, "dead").page(newest_first=False)
    assert entries[0].stored.job is None
    assert entries[0].stored.text == "not json {"
    assert "not valid JSON" in (entries[0].stored.error or "")
    assert entries[1].jid == "j1"
    assert entries[1].stored.job is None
    assert "class" in (entries[1].stored.error or "")
    assert entries[2].stored.job is not None
    assert entries[0].to_dict()["raw"] == "not json {"


def test_find_matches_the_exact_jid_only(r: redis.Redis) -> None:
    """Find by jid ignores members that merely contain the jid in another field."""
    now = time.time()
    jid, _ = add_to_set(r, keys.RETRY, now, jid="abc")
    add_to_set(r, keys.RETRY, now, jid="abcd", args=["abc"])
    for n in range(600):  # more than one ZSCAN page
        add_to_set(r, keys.RETRY, now + n)
    found = JobSet(r, "retry").find_all(jid)
    assert [e.jid for e in found] == ["abc"]
    assert JobSet(r, "retry").find("nope") is None
    with pytest.raises(NotFoundError, match="no job with jid 'nope' in the retry set"):
        JobSet(r, "retry").get("nope")


def test_find_jid_with_glob_characters(r: redis.Redis) -> None:
    """A jid holding MATCH pattern characters is found literally, not as a pattern."""
    add_to_set(r, keys.RETRY, 1.0, jid="a*b?[c]")
    add_to_set(r, keys.RETRY, 1.0, jid="axxb1c")
    assert [e.jid for e in JobSet(r, "retry").find_all("a*b?[c]")] == ["a*b?[c]"]
    assert glob_escape("a*b") == "a\\*b"


def test_delete_removes_the_exact_stored_text(r: redis.Redis) -> None:
    """Delete by jid ZREMs the stored bytes, even if another tool formatted the JSON."""
    text = '{ "class" : "HardWorker", "args" : [ ], "jid" : "spaced", "queue": "default" }'
    r.zadd(keys.DEAD, {text: 1.0})
    add_to_set(r, keys.DEAD, 2.0)
    dead = JobSet(r, "dead")
    assert dead.delete("spaced") == 1
    assert dead.count() == 1
    with pytest.raises(NotFoundError):
        dead.delete("spaced")


def test_retry_now_from_retry_lowers_retry_count(r: redis.Redis) -> None:
    """Retry now enqueues with enqueued_at=now and retry_count-1, keeping unknown fields."""
    jid, _ = add_to_set(
        r, keys.RETRY, time.time() + 3600, queue="mail", tags=["x"], bid="b1", **failed_fields(3)
    )
    assert JobSet(r, "retry").retry_now(jid, now=1234.5) == 1
    assert r.zcard(keys.RETRY) == 0
    [job] = queued(r, "mail")
    assert job["jid"] == jid
    assert job["enqueued_at"] == 1234.5
    assert job["retry_count"] == 2
    assert job["tags"] == ["x"]
    assert job["bid"] == "b1"
    assert job["error_message"] == "boom"
    assert r.sismember(keys.QUEUES, "mail")


def test_retry_now_from_dead_and_schedule(r: redis.Redis) -> None:
    """Dead jobs can be retried (retry_count-1, as Sidekiq); scheduled ones keep theirs."""
    dead_jid, _ = add_to_set(r, keys.DEAD, time.time(), **failed_fields(26))
    sched_jid, _ = add_to_set(r, keys.SCHEDULE, time.time() + 60, retry_count=1)
    no_count, _ = add_to_set(r, keys.DEAD, time.time(), queue=None)
    JobSet(r, "dead").retry_now(dead_jid)
    JobSet(r, "schedule").retry_now(sched_jid)
    JobSet(r, "dead").retry_now(no_count)
    by_jid = {j["jid"]: j for j in queued(r)}
    assert by_jid[dead_jid]["retry_count"] == 25
    assert by_jid[sched_jid]["retry_count"] == 1
    assert "retry_count" not in by_jid[no_count]
    assert by_jid[no_count]["queue"] == "default"
    assert r.zcard(keys.DEAD) == 0
    assert r.zcard(keys.SCHEDULE) == 0


def test_retry_now_refuses_what_cannot_run(r: redis.Redis) -> None:
    """A buried malformed text cannot be retried; the error says to delete it instead."""
    record = bury_malformed(b"garbage, not JSON", reason="not JSON", queue="default", now=1.0)
    r.zadd(keys.DEAD, {record.text: 1.0})
    jid = json.loads(record.text)["jid"]
    with pytest.raises(MalformedJobError, match="delete it instead"):
        JobSet(r, "dead").retry_now(jid)
    assert r.zcard(keys.DEAD) == 1
    with pytest.raises(NotFoundError):
        JobSet(r, "dead").retry_now("missing")


def test_retry_entry_moves_a_listed_entry_once(redis_server: RedisServer) -> None:
    """Two clients holding the same listed entry: exactly one enqueues it."""
    first, second = redis_server.client(), redis_server.client()
    try:
        add_to_set(first, keys.RETRY, 1.0)
        [a] = JobSet(first, "retry").page()
        [b] = JobSet(second, "retry").page()
        assert JobSet(first, "retry").retry_entry(a) is True
        assert JobSet(second, "retry").retry_entry(b) is False
        assert first.llen(keys.queue_key("default")) == 1
    finally:
        first.close()
        second.close()


def test_concurrent_retry_now_enqueues_once(redis_server: RedisServer) -> None:
    """Two clients racing retry_now on the same job, many times, enqueue it once each time."""
    rounds = 150
    clients = [redis_server.client() for _ in range(2)]
    sets = [JobSet(c, "retry") for c in clients]
    barrier = threading.Barrier(2)
    jids: list[str] = []
    wins: list[list[str]] = [[], []]
    lost_races: list[str] = []
    errors: list[BaseException] = []

    def racer(n: int) -> None:
        try:
            for i in range(rounds):
                barrier.wait(timeout=10)
                try:
                    sets[n].retry_now(jids[i])
                    wins[n].append(jids[i])
                except NotFoundError as exc:
                    if "left the retry set" in str(exc):  # both found it; the script chose
                        lost_races.append(jids[i])
        except BaseException as exc:  # reported below
            errors.append(exc)

    for _ in range(rounds):
        jid, _ = add_to_set(clients[0], keys.RETRY, 1.0, **failed_fields(2))
        jids.append(jid)
    threads = [threading.Thread(target=racer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert not errors
        assert sorted(wins[0] + wins[1]) == sorted(jids)
        assert not set(wins[0]) & set(wins[1])
        enqueued = [j["jid"] for j in queued(clients[0])]
        assert sorted(enqueued) == sorted(jids)
        assert clients[0].zcard(keys.RETRY) == 0
        assert lost_races, "the two callers never both found the job before one moved it"
    finally:
        for c in clients:
            c.close()


def test_retry_all_skips_malformed_members(r: redis.Redis) -> None:
    """Retry all enqueues every runnable job (over several batches) and leaves bad ones."""
    for n in range(250):
        add_to_set(r, keys.RETRY, float(n), args=[n], **failed_fields(1))
    r.zadd(keys.RETRY, {"garbage": 0.5, job_text(**{"class": None}): 300.0})
    result = JobSet(r, "retry").retry_all(now=99.0)
    assert (result.moved, result.skipped) == (250, 2)
    jobs = queued(r)
    assert [j["args"] for j in jobs] == [[n] for n in range(250)]
    assert all(j["retry_count"] == 0 and j["enqueued_at"] == 99.0 for j in jobs)
    assert r.zcard(keys.RETRY) == 2


def test_clear_deletes_the_set(r: redis.Redis) -> None:
    """Clear deletes every member and says how many there were."""
    for n in range(3):
        add_to_set(r, keys.SCHEDULE, float(n))
    assert JobSet(r, "schedule").clear() == 3
    assert not r.exists(keys.SCHEDULE)
    assert JobSet(r, "schedule").clear() == 0
