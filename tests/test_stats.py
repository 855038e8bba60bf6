"""Stats and node listings read from Redis, as Sidekiq::Stats and the node info hashes."""

from __future__ import annotations

import json
import time
from datetime import date

import redis

from tests.ops_data import add_to_set, job_text
from verk_actors import Client
from verk_actors.store import keys
from verk_actors.store.admin.nodes import NodeQueue, list_nodes
from verk_actors.store.admin.pause import pause_queue
from verk_actors.store.admin.stats import (
    history,
    in_progress,
    last_days,
    queue_stats,
    snapshot,
    totals,
)


def test_totals_read_the_counters_and_sets(r: redis.Redis) -> None:
    """Totals are stat:processed/failed, the set sizes and the sum of the queue lengths."""
    assert totals(r).processed == 0
    r.set(keys.STAT_PROCESSED, 42)
    r.set(keys.STAT_FAILED, 5)
    client = Client(r)
    client.enqueue_many("W", [[1], [2]])
    client.enqueue("W", queue="mail")
    add_to_set(r, keys.RETRY, 1.0)
    add_to_set(r, keys.DEAD, 1.0)
    add_to_set(r, keys.DEAD, 2.0)
    client.enqueue_in(60, "W")
    pause_queue(r, "mail")
    t = totals(r)
    assert (t.processed, t.failed, t.enqueued) == (42, 5, 3)
    assert (t.scheduled, t.retries, t.dead, t.queues, t.paused) == (1, 1, 2, 2, 1)


def test_history_per_utc_day(r: redis.Redis) -> None:
    """History reads stat:processed:<day> and stat:failed:<day> for the last N days."""
    today = date(2024, 3, 2)
    assert last_days(3, today) == ["2024-03-02", "2024-03-01", "2024-02-29"]
    r.set(keys.processed_day_key("2024-03-02"), 7)
    r.set(keys.failed_day_key("2024-03-02"), 1)
    r.set(keys.processed_day_key("2024-02-29"), 3)
    r.set(keys.processed_day_key("2024-02-28"), 99)  # outside the window
    days = history(r, 3, today=today)
    assert [(d.day, d.processed, d.failed) for d in days] == [
        ("2024-03-02", 7, 1),
        ("2024-03-01", 0, 0),
        ("2024-02-29", 3, 0),
    ]
    assert history(r, 0) == []


def test_queue_stats(r: redis.Redis) -> None:
    """Per queue: size, latency, processed, failed and paused, for every known queue."""
    r.sadd(keys.QUEUES, "default", "mail")
    r.lpush(keys.queue_key("default"), job_text(enqueued_at=950.0), job_text(enqueued_at=990.0))
    r.set(keys.processed_queue_key("default"), 10)
    r.set(keys.failed_queue_key("default"), 2)
    pause_queue(r, "mail")
    default, mail = queue_stats(r, now=1000.0)
    assert (default.name, default.size, default.latency) == ("default", 2, 50.0)
    assert (default.processed, default.failed, default.paused) == (10, 2, False)
    assert (mail.name, mail.size, mail.latency, mail.paused) == ("mail", 0, 0.0, True)
    assert queue_stats(r, ["mail"], now=1000.0) == [mail]


def test_in_progress_sums_over_the_nodes_that_hold_the_queue(r: redis.Redis) -> None:
    """In progress counts inprogress:<q>:<node> only for nodes whose queue set names q."""
    r.sadd(keys.NODES, "n1", "n2", "n3")
    r.sadd(keys.node_queues_key("n1"), "default", "mail")
    r.sadd(keys.node_queues_key("n2"), "default")
    r.rpush(keys.inprogress_key("default", "n1"), "a", "b")
    r.rpush(keys.inprogress_key("mail", "n1"), "c")
    r.rpush(keys.inprogress_key("default", "n2"), "d")
    r.rpush(keys.inprogress_key("default", "n3"), "not registered for default")
    r.rpush(keys.inprogress_key("mail", "stranger"), "not in verk_nodes")
    assert in_progress(r, ["default", "mail", "other"]) == {"default": 3, "mail": 1, "other": 0}
    r.sadd(keys.QUEUES, "default", "mail")
    assert {q.name: q.in_progress for q in queue_stats(r)} == {"default": 3, "mail": 1}


def test_nodes_alive_and_info(r: redis.Redis) -> None:
    """Nodes are verk_nodes; alive means the lease exists; the info hash fields are parsed."""
    now = time.time()
    r.sadd(keys.NODES, "alpha", "beta")
    r.set(keys.node_lease_key("alpha"), "epoch", ex=30)
    r.hset(
        keys.node_info_key("alpha"),
        mapping={
            "host": "h1",
            "pid": 123,
            "started_at": now - 60,
            "queues": json.dumps([{"name": "default", "concurrency": 25}, {"name": "mail"}]),
            "busy": 3,
            "admin_port": 1900,
            "beat": now,
            "version": "0.1.0",
            "color": "blue",
        },
    )
    r.hset(keys.node_info_key("beta"), mapping={"pid": "not a number", "queues": "{oops"})
    alpha, beta = list_nodes(r)
    assert (alpha.node_id, alpha.alive, alpha.host, alpha.pid) == ("alpha", True, "h1", 123)
    assert alpha.queues == (NodeQueue("default", 25), NodeQueue("mail", None))
    assert (alpha.busy, alpha.admin_port, alpha.version) == (3, 1900, "0.1.0")
    assert alpha.beat == now
    assert alpha.extra == {"color": "blue"}
    assert (beta.node_id, beta.alive, beta.pid, beta.queues, beta.host) == (
        "beta",
        False,
        None,
        (),
        None,
    )
    assert alpha.to_dict()["queues"][0] == {"name": "default", "concurrency": 25}


def test_snapshot_gathers_everything(r: redis.Redis) -> None:
    """A snapshot holds totals, queues, history and nodes, and turns into JSON."""
    Client(r).enqueue("W")
    r.sadd(keys.NODES, "n1")
    snap = snapshot(r, days=2)
    assert snap.totals.enqueued == 1
    assert [q.name for q in snap.queues] == ["default"]
    assert len(snap.history) == 2
    assert [n.node_id for n in snap.nodes] == ["n1"]
    data = json.loads(json.dumps(snap.to_dict()))
    assert data["totals"]["enqueued"] == 1
    assert data["queues"][0]["size"] == 1
