"""The jobs a node runs, as Redis shows them: the WorkersManagers' hash, the NodeStore's
Sidekiq process entry, and the node's resident memory."""

from __future__ import annotations

import json
import os
import time

import redis

from tests.conftest import node_settings
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.store import keys
from verk_actors.store.node_store import NodeStore, node_facts, tree_rss_kb
from verk_actors.store.running_jobs import (
    PUBLISH_EVERY,
    RETRY_AFTER,
    TTL,
    Running,
    RunningJobs,
    field,
)

JOB = b'{"class":"Noop","args":[1],"jid":"j1"}'


def test_running_jobs_show_each_change_once(redis_server, r: redis.Redis) -> None:
    """A queue's running jobs are written as Sidekiq work entries, again only when one
    changed and the last write is PUBLISH_EVERY old, and removed when they end."""
    shown = RunningJobs(node_settings(redis_server.url), "n1", "default")
    key = keys.node_running_key("n1")
    first, second = Running((1, 0), JOB, 1_700_000_000.9), Running((2, 3), JOB, 5.0)
    try:
        shown.publish({field("default", 0): first}, now=100.0)
        entry = json.loads(r.hget(key, "default-0"))
        assert entry == {"queue": "default", "payload": JOB.decode(), "run_at": 1_700_000_000}
        assert 0 < r.ttl(key) <= TTL
        r.hset(key, "default-0", "changed behind its back")
        shown.publish({field("default", 0): first}, now=100.0 + PUBLISH_EVERY)
        assert r.hget(key, "default-0") == b"changed behind its back"  # same job: no write
        shown.publish({field("default", 1): second}, now=100.1 + PUBLISH_EVERY)
        assert r.hkeys(key) == [b"default-1"]
        shown.publish({}, now=100.2 + PUBLISH_EVERY)
        assert r.hkeys(key) == [b"default-1"]  # too soon after the last write
        r.hset(key, "other-0", "another queue's")
        shown.publish({}, now=101.1 + PUBLISH_EVERY)
        assert r.hkeys(key) == [b"other-0"]
    finally:
        shown.close()


def test_running_jobs_survive_redis_going_away(redis_server, r: redis.Redis) -> None:
    """A write Redis does not take is tried again RETRY_AFTER later, whole; closing
    removes what is shown."""
    shown = RunningJobs(node_settings(redis_server.url), "n1", "default")
    key = keys.node_running_key("n1")
    try:
        redis_server.stop()
        shown.publish({field("default", 0): Running((1, 0), JOB, 1.0)}, now=100.0)
        assert shown.failing
        redis_server.start()
        r = redis_server.client()
        shown.publish({field("default", 0): Running((1, 0), JOB, 1.0)}, now=100.0 + 1)
        assert not r.exists(key)  # not before RETRY_AFTER
        shown.publish({field("default", 0): Running((1, 0), JOB, 1.0)}, now=100.0 + RETRY_AFTER)
        assert r.hkeys(key) == [b"default-0"]
        assert not shown.failing
    finally:
        shown.close()
    assert not r.exists(key)
    r.close()


def test_node_entry_counts_only_running_jobs(redis_server, r: redis.Redis) -> None:
    """Sidekiq's process entry shows as busy the jobs in the running hash, not the jobs in
    progress; its workers hash holds their entries; RSS is the node's; the tag once."""
    settings = node_settings(redis_server.url, queues=(QueueSpec("default", 3),))
    store = NodeStore(settings, node_facts("n1", "e", None, os.getpid()))
    try:
        r.rpush(keys.inprogress_key("default", "n1"), *[JOB] * 40)
        started = time.time() - 30
        work = json.dumps({"queue": "default", "payload": JOB.decode(), "run_at": int(started)})
        r.hset(keys.node_running_key("n1"), mapping={"default-0": work, "default-2": work})
        assert store.describe(settings.queues).busy == 2
        identity = store.facts.identity
        process = r.hgetall(identity)
        assert int(process[b"busy"]) == 2
        assert int(process[b"rss"]) >= tree_rss_kb(os.getpid()) // 2 > 10_000
        info = json.loads(process[b"info"])
        assert info["concurrency"] == 3
        assert [info["tag"], *info["labels"]].count("verk_actors") == 1
        workers = r.hgetall(keys.process_workers_key(identity))
        assert sorted(workers) == [b"default-0", b"default-2"]
        assert json.loads(workers[b"default-0"])["run_at"] == int(started)
        assert int(r.hget(keys.node_info_key("n1"), "busy")) == 2
        r.delete(keys.node_running_key("n1"))
        assert store.describe(settings.queues).busy == 0
        assert not r.exists(keys.process_workers_key(identity))
        store.leave()
        assert not r.exists(identity)
    finally:
        store.close()


def test_tree_rss_counts_the_descendants() -> None:
    """The resident memory of a process tree includes its children's."""
    alone = tree_rss_kb(os.getpid())
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only waits to be killed
        time.sleep(30)
        os._exit(0)
    try:
        assert tree_rss_kb(os.getpid()) > alone
        assert tree_rss_kb(child) > 0
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
    assert tree_rss_kb(2**22 + 12345) == 0  # no such process
