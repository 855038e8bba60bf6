"""Each Lua script of lua/, through verk_actors.store.scripts.Scripts, against a private Redis."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.servers import RedisServer
from verk_actors.jobs.retry import Fate
from verk_actors.store import keys
from verk_actors.store.scripts import DAY_COUNTER_TTL, SCRIPT_NAMES, Scripts

Q = "default"
NODE = "node-a"
DAY = "2024-05-17"
NOW = 1_700_000_000.0
QUEUE = keys.queue_key(Q)
INPROGRESS = keys.inprogress_key(Q, NODE)


@pytest.fixture
def scripts(r: redis.Redis) -> Scripts:
    """The scripts registered on the test's Redis client."""
    return Scripts(r)


def jobs(n: int, prefix: str = "j") -> list[bytes]:
    """``n`` distinct job texts, oldest first."""
    return [f'{{"class":"A","args":[{i}],"jid":"{prefix}{i}"}}'.encode() for i in range(n)]


def enqueue(r: redis.Redis, texts: list[bytes], queue: str = QUEUE) -> None:
    """LPUSH texts one by one, as clients enqueue (the first given is the oldest)."""
    for text in texts:
        r.lpush(queue, text)


def count(r: redis.Redis, key: str) -> int:
    """A counter's value, 0 when missing."""
    return int(r.get(key) or 0)


def test_every_script_has_a_file() -> None:
    """The Lua files under lua/ are exactly the scripts that have wrappers."""
    lua = Path(__file__).resolve().parent.parent / "lua"
    assert sorted(p.stem for p in lua.glob("*.lua")) == sorted(SCRIPT_NAMES)


# --- take_jobs ------------------------------------------------------------------------------


def test_take_jobs_fifo_into_inprogress(r: redis.Redis, scripts: Scripts) -> None:
    """take_jobs returns the oldest jobs first and puts the oldest at the in-progress tail."""
    j = jobs(4)
    enqueue(r, j)
    assert scripts.take_jobs(r, Q, NODE, 2) == [j[0], j[1]]
    assert r.lrange(INPROGRESS, 0, -1) == [j[1], j[0]]
    assert r.lrange(QUEUE, 0, -1) == [j[3], j[2]]
    assert scripts.take_jobs(r, Q, NODE, 10) == [j[2], j[3]]
    assert r.lrange(INPROGRESS, 0, -1) == [j[3], j[2], j[1], j[0]]
    assert not r.exists(QUEUE)


def test_take_jobs_takes_nothing_below_least(r: redis.Redis, scripts: Scripts) -> None:
    """With ``least``, a queue holding fewer jobs gives none (a standby runs them);
    one holding that many gives as many as asked, as without it."""
    j = jobs(8)
    enqueue(r, j[:7])
    assert scripts.take_jobs(r, Q, NODE, 100, least=8) == []
    assert r.llen(QUEUE) == 7
    assert not r.exists(INPROGRESS)
    enqueue(r, j[7:])
    assert scripts.take_jobs(r, Q, NODE, 5, least=8) == j[:5]
    assert r.llen(QUEUE) == 3
    assert scripts.take_jobs(r, Q, NODE, 5) == j[5:]  # least 1: as before


def test_take_jobs_count_limit(r: redis.Redis, scripts: Scripts) -> None:
    """take_jobs takes at most the count asked for."""
    enqueue(r, jobs(10))
    assert len(scripts.take_jobs(r, Q, NODE, 3)) == 3
    assert r.llen(QUEUE) == 7
    assert r.llen(INPROGRESS) == 3


def test_take_jobs_empty_queue(r: redis.Redis, scripts: Scripts) -> None:
    """take_jobs on an empty queue returns [] and creates no keys."""
    assert scripts.take_jobs(r, Q, NODE, 5) == []
    assert r.dbsize() == 0


def test_take_jobs_more_than_unpack_allows(r: redis.Redis, scripts: Scripts) -> None:
    """A take of 10,000 jobs (past Lua's unpack limit) moves them all, in order, losing none."""
    j = jobs(10_000)
    r.lpush(QUEUE, *j)
    assert scripts.take_jobs(r, Q, NODE, 10_000) == j
    assert r.lrange(INPROGRESS, 0, -1) == j[::-1]
    assert not r.exists(QUEUE)


# --- ack_jobs -------------------------------------------------------------------------------


def test_ack_jobs_removes_and_counts(r: redis.Redis, scripts: Scripts) -> None:
    """ack_jobs removes the exact texts given and counts them in total, day and queue counters."""
    j = jobs(3)
    enqueue(r, j)
    scripts.take_jobs(r, Q, NODE, 3)
    assert scripts.ack_jobs(r, Q, NODE, DAY, [j[0], j[2]]) == 2
    assert r.lrange(INPROGRESS, 0, -1) == [j[1]]
    assert count(r, keys.STAT_PROCESSED) == 2
    assert count(r, keys.processed_day_key(DAY)) == 2
    assert count(r, keys.processed_queue_key(Q)) == 2
    assert not r.exists(keys.STAT_FAILED)


def test_ack_jobs_counts_texts_not_present(r: redis.Redis, scripts: Scripts) -> None:
    """A text no longer in progress is not removed (0) but its execution is still counted."""
    r.lpush(INPROGRESS, b"other")
    assert scripts.ack_jobs(r, Q, NODE, DAY, [b"gone"]) == 0
    assert r.lrange(INPROGRESS, 0, -1) == [b"other"]
    assert count(r, keys.STAT_PROCESSED) == 1
    assert count(r, keys.processed_queue_key(Q)) == 1


def test_ack_jobs_removes_by_exact_bytes(r: redis.Redis, scripts: Scripts) -> None:
    """A differently spaced text of the same job does not remove the stored one."""
    r.lpush(INPROGRESS, b'{"class":"A","args":[]}')
    assert scripts.ack_jobs(r, Q, NODE, DAY, [b'{"class": "A", "args": []}']) == 0
    assert r.llen(INPROGRESS) == 1


def test_ack_jobs_day_ttl_only_when_created(r: redis.Redis, scripts: Scripts) -> None:
    """The day counter gets a TTL when ack_jobs creates it, and keeps its TTL afterwards."""
    day_key = keys.processed_day_key(DAY)
    scripts.ack_jobs(r, Q, NODE, DAY, [b"a"])
    assert DAY_COUNTER_TTL - 60 < r.ttl(day_key) <= DAY_COUNTER_TTL
    assert r.ttl(keys.STAT_PROCESSED) == -1
    assert r.ttl(keys.processed_queue_key(Q)) == -1
    r.expire(day_key, 100)
    scripts.ack_jobs(r, Q, NODE, DAY, [b"b", b"c"])
    assert 0 < r.ttl(day_key) <= 100
    assert count(r, day_key) == 3


def test_ack_jobs_nothing_given(r: redis.Redis, scripts: Scripts) -> None:
    """An ack of no texts returns 0 and creates no counter."""
    assert scripts.ack_jobs(r, Q, NODE, DAY, []) == 0
    assert r.dbsize() == 0


# --- fail_jobs ------------------------------------------------------------------------------


def fail(
    r: redis.Redis,
    scripts: Scripts,
    failures: list[tuple[bytes, Fate, float, str]],
    dead_timeout: float = 1e9,
    dead_max_jobs: int = 10_000,
) -> int:
    """fail_jobs on the test queue and node at NOW."""
    return scripts.fail_jobs(
        r, Q, NODE, DAY, failures, now=NOW, dead_timeout=dead_timeout, dead_max_jobs=dead_max_jobs
    )


def test_fail_jobs_moves_to_retry_and_dead(r: redis.Redis, scripts: Scripts) -> None:
    """fail_jobs moves each job from in-progress to retry or dead with the given score and text."""
    j = jobs(3)
    enqueue(r, j)
    scripts.take_jobs(r, Q, NODE, 3)
    recorded = fail(
        r,
        scripts,
        [(j[0], Fate.RETRY, NOW + 30.5, "retry-text"), (j[1], Fate.DEAD, NOW, "dead-text")],
    )
    assert recorded == 2
    assert r.lrange(INPROGRESS, 0, -1) == [j[2]]
    assert r.zrange(keys.RETRY, 0, -1, withscores=True) == [(b"retry-text", NOW + 30.5)]
    assert r.zrange(keys.DEAD, 0, -1, withscores=True) == [(b"dead-text", NOW)]
    for key in (
        keys.STAT_PROCESSED,
        keys.processed_day_key(DAY),
        keys.processed_queue_key(Q),
        keys.STAT_FAILED,
        keys.failed_day_key(DAY),
        keys.failed_queue_key(Q),
    ):
        assert count(r, key) == 2, key
    assert r.ttl(keys.failed_day_key(DAY)) > 0
    assert r.ttl(keys.processed_day_key(DAY)) > 0
    assert r.ttl(keys.STAT_FAILED) == -1


def test_fail_jobs_skips_jobs_no_longer_in_progress(r: redis.Redis, scripts: Scripts) -> None:
    """A failed job that left in-progress (recovered elsewhere) is not added, but is counted."""
    r.lpush(INPROGRESS, b"still-here")
    recorded = fail(
        r,
        scripts,
        [(b"recovered", Fate.RETRY, NOW, "r-text"), (b"recovered2", Fate.DEAD, NOW, "d-text")],
    )
    assert recorded == 0
    assert not r.exists(keys.RETRY)
    assert not r.exists(keys.DEAD)
    assert r.lrange(INPROGRESS, 0, -1) == [b"still-here"]
    assert count(r, keys.STAT_FAILED) == 2
    assert count(r, keys.STAT_PROCESSED) == 2


def test_fail_jobs_trims_dead_by_age(r: redis.Redis, scripts: Scripts) -> None:
    """Burying a job removes dead jobs older than the dead timeout."""
    r.zadd(keys.DEAD, {b"ancient": NOW - 1000, b"recent": NOW - 10})
    r.lpush(INPROGRESS, b"x")
    fail(r, scripts, [(b"x", Fate.DEAD, NOW, "x-dead")], dead_timeout=500)
    assert r.zrange(keys.DEAD, 0, -1) == [b"recent", b"x-dead"]


def test_fail_jobs_trims_dead_by_size(r: redis.Redis, scripts: Scripts) -> None:
    """Burying a job keeps only the newest dead_max_jobs dead jobs."""
    r.zadd(keys.DEAD, {f"old{i}".encode(): NOW - 100 + i for i in range(5)})
    r.lpush(INPROGRESS, b"x")
    fail(r, scripts, [(b"x", Fate.DEAD, NOW, "x-dead")], dead_max_jobs=3)
    assert r.zrange(keys.DEAD, 0, -1) == [b"old3", b"old4", b"x-dead"]


def test_fail_jobs_to_retry_does_not_trim_dead(r: redis.Redis, scripts: Scripts) -> None:
    """A failure that only goes to retry leaves the dead set alone."""
    r.zadd(keys.DEAD, {b"ancient": 1.0})
    r.lpush(INPROGRESS, b"x")
    fail(r, scripts, [(b"x", Fate.RETRY, NOW, "x-retry")], dead_timeout=10, dead_max_jobs=0)
    assert r.zrange(keys.DEAD, 0, -1) == [b"ancient"]


# --- requeue_jobs ---------------------------------------------------------------------------


def test_requeue_jobs_to_consuming_end(r: redis.Redis, scripts: Scripts) -> None:
    """Only jobs still in progress go back, to the consuming end: the first given runs first."""
    j = jobs(3)
    enqueue(r, j)
    scripts.take_jobs(r, Q, NODE, 3)
    pending = jobs(1, prefix="p")
    enqueue(r, pending)
    assert scripts.requeue_jobs(r, Q, NODE, [j[2], j[0], b"not-in-progress"]) == 2
    assert r.lrange(INPROGRESS, 0, -1) == [j[1]]
    assert scripts.take_jobs(r, Q, NODE, 1) == [j[2]]
    assert scripts.take_jobs(r, Q, NODE, 1) == [j[0]]
    assert scripts.take_jobs(r, Q, NODE, 1) == pending
    assert scripts.take_jobs(r, Q, NODE, 1) == []


# --- requeue_inprogress ---------------------------------------------------------------------


def test_requeue_inprogress_in_batches_oldest_next(r: redis.Redis, scripts: Scripts) -> None:
    """Batches move in-progress jobs back to run before the pending ones, oldest first."""
    j = jobs(5)
    enqueue(r, j)
    scripts.take_jobs(r, Q, NODE, 5)
    pending = jobs(1, prefix="p")
    enqueue(r, pending)
    assert scripts.requeue_inprogress(r, Q, NODE, 2) == (2, 3)
    assert scripts.requeue_inprogress(r, Q, NODE, 2) == (2, 1)
    assert scripts.requeue_inprogress(r, Q, NODE, 2) == (1, 0)
    assert scripts.requeue_inprogress(r, Q, NODE, 2) == (0, 0)
    assert not r.exists(INPROGRESS)
    assert scripts.take_jobs(r, Q, "other", 10) == [*j, *pending]


def test_requeue_inprogress_only_if_dead(r: redis.Redis, scripts: Scripts) -> None:
    """With only_if_dead, nothing moves while the lease exists (moved -1); then all moves."""
    j = jobs(3)
    enqueue(r, j)
    scripts.take_jobs(r, Q, NODE, 3)
    r.set(keys.node_lease_key(NODE), "alive", ex=60)
    assert scripts.requeue_inprogress(r, Q, NODE, 10, only_if_dead=True) == (-1, 3)
    assert r.llen(INPROGRESS) == 3
    assert not r.exists(QUEUE)
    r.delete(keys.node_lease_key(NODE))
    assert scripts.requeue_inprogress(r, Q, NODE, 10, only_if_dead=True) == (3, 0)
    assert scripts.take_jobs(r, Q, "other", 10) == j


def test_requeue_inprogress_large_batch(r: redis.Redis, scripts: Scripts) -> None:
    """A batch of 9,000 (past Lua's unpack limit) moves, oldest to the consuming end."""
    j = jobs(10_000)
    r.lpush(INPROGRESS, *j)
    assert scripts.requeue_inprogress(r, Q, NODE, 9_000) == (9_000, 1_000)
    assert r.lrange(QUEUE, -3, -1) == [j[1002], j[1001], j[1000]]
    assert r.llen(QUEUE) == 9_000
    assert scripts.requeue_inprogress(r, Q, NODE, 9_000) == (1_000, 0)
    assert r.lrange(QUEUE, -2, -1) == [j[1], j[0]]


def test_requeue_inprogress_two_callers_alternately(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    """Two clients recovering one node alternately move every job exactly once."""
    j = jobs(50)
    r.lpush(INPROGRESS, *j)
    clients = [redis_server.client(), redis_server.client()]
    try:
        callers = [Scripts(c) for c in clients]
        remaining = [1, 1]
        turn = 0
        while any(remaining):
            _, remaining[turn] = callers[turn].requeue_inprogress(clients[turn], Q, NODE, 3)
            turn = 1 - turn
    finally:
        for c in clients:
            c.close()
    assert Counter(r.lrange(QUEUE, 0, -1)) == Counter(j)
    assert not r.exists(INPROGRESS)


def test_requeue_inprogress_concurrent_threads(redis_server: RedisServer, r: redis.Redis) -> None:
    """Four threads recovering one node at once move every job exactly once."""
    j = jobs(2_000)
    r.lpush(INPROGRESS, *j)
    errors: list[BaseException] = []

    def recover() -> None:
        client = redis_server.client()
        try:
            caller = Scripts(client)
            while True:
                moved, _ = caller.requeue_inprogress(client, Q, NODE, 7)
                if moved <= 0:
                    return
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=recover) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    queued = r.lrange(QUEUE, 0, -1)
    assert len(queued) == len(j)
    assert Counter(queued) == Counter(j)


# --- enqueue_due ----------------------------------------------------------------------------


def test_enqueue_due_moves_members(r: redis.Redis, scripts: Scripts) -> None:
    """Members go to their queue lists (queues set updated) or to dead, leaving the set."""
    r.zadd(keys.SCHEDULE, {b"m1": 1.0, b"m2": 2.0, b"m3": 3.0, b"m4": 4.0, b"later": NOW + 99})
    moves = [(b"m1", "a", "t1"), (b"m2", "b", "t2"), (b"m3", None, "t3-dead"), (b"m4", "a", "t4")]
    assert scripts.enqueue_due(r, keys.SCHEDULE, moves, now=NOW) == 4
    assert r.lrange(keys.queue_key("a"), 0, -1) == [b"t4", b"t1"]
    assert r.lrange(keys.queue_key("b"), 0, -1) == [b"t2"]
    assert r.smembers(keys.QUEUES) == {b"a", b"b"}
    assert r.zrange(keys.DEAD, 0, -1, withscores=True) == [(b"t3-dead", NOW)]
    assert r.zrange(keys.SCHEDULE, 0, -1) == [b"later"]


def test_enqueue_due_skips_members_already_moved(r: redis.Redis, scripts: Scripts) -> None:
    """A member another caller removed first is skipped, so concurrent callers enqueue once."""
    r.zadd(keys.RETRY, {b"m1": 1.0, b"m2": 2.0})
    r.zrem(keys.RETRY, b"m1")
    moves = [(b"m1", "a", "t1"), (b"m2", "a", "t2")]
    assert scripts.enqueue_due(r, keys.RETRY, moves, now=NOW) == 1
    assert scripts.enqueue_due(r, keys.RETRY, moves, now=NOW) == 0
    assert r.lrange(keys.queue_key("a"), 0, -1) == [b"t2"]
    assert not r.exists(keys.RETRY)


def test_enqueue_due_nothing_moved_creates_no_queue(r: redis.Redis, scripts: Scripts) -> None:
    """When no member is still in the set, no queue list or queues entry is created."""
    assert scripts.enqueue_due(r, keys.SCHEDULE, [(b"gone", "a", "t")], now=NOW) == 0
    assert r.dbsize() == 0


# --- NOSCRIPT and byte-exactness ------------------------------------------------------------


def test_wrappers_survive_script_flush(r: redis.Redis, scripts: Scripts) -> None:
    """After SCRIPT FLUSH direct calls reload by themselves; a pipeline reports NOSCRIPT
    (no SCRIPT EXISTS round trip before each execute) and works again after load()."""
    j = jobs(3)
    enqueue(r, j)
    assert scripts.take_jobs(r, Q, NODE, 1) == [j[0]]
    r.script_flush()
    assert r.script_exists(*[s.sha for s in scripts._scripts.values()]) == [False] * len(
        SCRIPT_NAMES
    )
    assert scripts.take_jobs(r, Q, NODE, 1) == [j[1]]
    r.script_flush()
    pipe = r.pipeline(transaction=False)
    scripts.ack_jobs(pipe, Q, NODE, DAY, [j[0]])
    scripts.take_jobs(pipe, Q, NODE, 1)
    results = pipe.execute(raise_on_error=False)
    assert all(isinstance(x, redis.exceptions.NoScriptError) for x in results)
    scripts.load(r)
    scripts.ack_jobs(pipe, Q, NODE, DAY, [j[0]])
    scripts.take_jobs(pipe, Q, NODE, 1)
    assert pipe.execute() == [1, [j[2]]]


def test_queue_store_writes_through_a_script_flush(redis_server: RedisServer, r) -> None:
    """QueueStore.write reloads the scripts after NOSCRIPT and writes everything once."""
    from verk_actors.config.settings import Settings
    from verk_actors.store.queue_store import Pending, QueueStore

    j = jobs(3)
    enqueue(r, j)
    store = QueueStore(Settings(redis_url=redis_server.url), Q, NODE)
    try:
        taken, error = store.write(Pending(), 2)
        assert error is None and taken == [j[0], j[1]]
        r.script_flush()
        pending = Pending(acked=[j[0]])
        taken, error = store.write(pending, 5)
        assert error is None
        assert taken == [j[2]]
        assert not pending
        assert r.lrange(INPROGRESS, 0, -1) == [j[2], j[1]]
        assert r.get("stat:processed") == b"1"
    finally:
        store.close()


def test_job_bytes_unchanged_through_scripts(r: redis.Redis, scripts: Scripts) -> None:
    """A job with "args":[] and a big integer keeps its exact bytes through take and requeue."""
    text = b'{"class":"A","args":[],"big":123456789012345678901234567890,"f":1.10,"e":{}}'
    r.lpush(QUEUE, text)
    assert scripts.take_jobs(r, Q, NODE, 1) == [text]
    assert r.lrange(INPROGRESS, 0, -1) == [text]
    assert scripts.requeue_jobs(r, Q, NODE, [text]) == 1
    assert r.lrange(QUEUE, 0, -1) == [text]
    assert scripts.take_jobs(r, Q, NODE, 1) == [text]
    assert scripts.requeue_inprogress(r, Q, NODE, 10) == (1, 0)
    assert r.lrange(QUEUE, 0, -1) == [text]
    assert scripts.take_jobs(r, Q, NODE, 1) == [text]
    assert scripts.ack_jobs(r, Q, NODE, DAY, [text]) == 1


# --- renew_lease ------------------------------------------------------------------------------


def test_renew_lease_renews_reclaims_and_refuses(r: redis.Redis, scripts: Scripts) -> None:
    """Own lease: renewed (1); expired: claimed again (0); another epoch's: untouched (-1)."""
    lease = keys.node_lease_key(NODE)
    assert scripts.renew_lease(r, NODE, "epoch-a", 5.0) == 0  # missing: claimed
    assert r.get(lease) == b"epoch-a"
    r.pexpire(lease, 100)
    assert scripts.renew_lease(r, NODE, "epoch-a", 5.0) == 1
    assert 4000 < r.pttl(lease) <= 5000
    r.set(lease, "epoch-b", px=1000)
    assert scripts.renew_lease(r, NODE, "epoch-a", 5.0) == -1
    assert r.get(lease) == b"epoch-b"
    assert r.pttl(lease) <= 1000


# --- forget_node ------------------------------------------------------------------------------


def test_forget_node_only_when_dead_and_empty(r: redis.Redis, scripts: Scripts) -> None:
    """A node is forgotten only once its lease is gone and its in-progress lists are empty."""
    identity = keys.process_identity("host", 42, NODE)
    r.sadd(keys.NODES, NODE, "other")
    r.sadd(keys.node_queues_key(NODE), Q)
    r.hset(keys.node_info_key(NODE), "host", "host")
    r.sadd(keys.PROCESSES, identity, "someone-else")
    r.hset(identity, "info", "{}")
    r.hset(keys.process_workers_key(identity), "t", "{}")
    r.set(keys.node_lease_key(NODE), "epoch", px=60_000)
    assert not scripts.forget_node(r, NODE, identity, [Q])  # alive
    r.delete(keys.node_lease_key(NODE))
    r.lpush(INPROGRESS, b"job")
    assert not scripts.forget_node(r, NODE, identity, [Q])  # jobs left
    r.delete(INPROGRESS)
    assert scripts.forget_node(r, NODE, identity, [Q])
    assert r.smembers(keys.NODES) == {b"other"}
    assert r.smembers(keys.PROCESSES) == {b"someone-else"}
    for key in (
        keys.node_queues_key(NODE),
        keys.node_info_key(NODE),
        identity,
        keys.process_workers_key(identity),
    ):
        assert not r.exists(key)
