"""Prometheus metrics: a real node scraped over HTTP, its figures checked against Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.attack import listening_sockets
from tests.conftest import wait_for
from tests.servers import RedisServer, free_port
from tests.test_security import (
    ACTORS_OF_A_NODE,
    assert_loopback_and_unshared,
    in_process_node,
    started_node_pids,
)
from verk_actors.actors._metrics_tally import BUCKETS, NodeTally
from verk_actors.actors.messages import ActorRestarted, QueueFigures
from verk_actors.config.settings import QueueSpec
from verk_actors.store.admin.pause import pause_queue
from verk_actors.store.client import Client

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> tuple[str, Samples]:
    """The body of ``/metrics`` and its samples by (name, labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        body = reply.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return body, samples


def ready(port: int) -> tuple[str, Samples]:
    """The first scrape once the MetricsActor listens (it starts beside the node)."""

    def answered() -> tuple[str, Samples] | None:
        """The metrics port answers."""
        try:
            return scrape(port)
        except urllib.error.URLError:
            return None

    scraped: tuple[str, Samples] = wait_for(answered)
    return scraped


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def test_a_scrape_counts_what_redis_counts(start_verk: Any, r: redis.Redis) -> None:
    """After successes, failures (retried and dead), an unknown class and a crashed worker,
    the jobs, durations, sets, workers and restarts match Redis's counters and what ran."""
    port = free_port()
    node = start_verk(metrics_port=port)
    ready(port)
    url = node.settings.redis_url
    with Client(url=url) as client:
        for n in range(20):
            client.enqueue("Noop", n)
        for n in range(3):
            client.enqueue("Fail", url, "fails", n)  # retried later
        for n in range(2):
            client.enqueue("Fail", url, "fails", f"dead-{n}", retry=False)
        client.enqueue("NoSuchWorker", 1, retry=False)
        client.enqueue("Crash", url, "crashes", 1, retry=False)

    def all_counted() -> bool:
        """Redis counted 27 runs and the scrape shows as many."""
        if int(r.get("stat:processed") or 0) < 27:
            return False
        return total(scrape(port)[1], "verk_jobs_total", outcome="processed") >= 27

    wait_for(all_counted)

    def settled() -> tuple[str, Samples] | None:
        """The crashed worker's replacement is counted too."""
        scraped = scrape(port)
        return scraped if _restarted(scraped[1]) else None

    body, samples = wait_for(settled)
    print(body)
    processed, failed = int(r.get("stat:processed")), int(r.get("stat:failed"))
    assert (processed, failed) == (27, 7)
    jobs = {
        (dict(labels)["class"], dict(labels)["outcome"]): value
        for (name, labels), value in samples.items()
        if name == "verk_jobs_total"
    }
    assert jobs == {
        ("Noop", "processed"): 20,
        ("Fail", "processed"): 5,
        ("Fail", "failed"): 5,
        ("Fail", "retried"): 3,
        ("Fail", "dead"): 2,
        ("other", "processed"): 1,
        ("other", "failed"): 1,
        ("other", "dead"): 1,
        ("Crash", "processed"): 1,
        ("Crash", "failed"): 1,
        ("Crash", "dead"): 1,
    }
    assert total(samples, "verk_jobs_total", outcome="processed") == processed
    assert total(samples, "verk_jobs_total", outcome="failed") == failed
    # Durations: every run whose time its worker reported (not the crashed job's, nor
    # those of its batch that the manager settled from the dead worker's board).
    timed = {
        dict(labels)["class"]: value
        for (name, labels), value in samples.items()
        if name == "verk_job_duration_seconds_count"
    }
    assert set(timed) <= {"Noop", "Fail", "other"}
    assert 0 < timed["Noop"] <= 20
    assert sum(timed.values()) <= processed - 1
    for class_name, count in timed.items():
        buckets = [
            value
            for (name, labels), value in sorted(
                samples.items(), key=lambda item: float(dict(item[0][1]).get("le", "0"))
            )
            if name == "verk_job_duration_seconds_bucket" and ("class", class_name) in labels
        ]
        assert len(buckets) == len(BUCKETS) + 1
        assert buckets == sorted(buckets) and buckets[-1] == count
    assert total(samples, "verk_workers_killed_total", queue="default", reason="died") == 1
    assert total(samples, "verk_set_size", set="retry") == r.zcard("retry") == 3
    assert total(samples, "verk_set_size", set="dead") == r.zcard("dead") == 4
    assert total(samples, "verk_set_size", set="scheduled") == r.zcard("schedule") == 0
    assert total(samples, "verk_queue_size", queue="default") == r.llen("queue:default") == 0
    assert total(samples, "verk_queue_latency_seconds", queue="default") == 0
    assert total(samples, "verk_workers", queue="default", state="total") == 5
    assert total(samples, "verk_workers", queue="default", state="busy") == 0
    assert total(samples, "verk_redis_errors_total") == 0
    assert (
        total(samples, "verk_node_info", node_id=node.node_id, thespian_base="multiprocTCPBase")
        == 1
    )
    assert not any("jid" in dict(labels) for _, labels in samples)
    # Bound to loopback, as by default.
    assert ("127.0.0.1", port) in listening_sockets().values()


def _restarted(samples: Samples) -> bool:
    """The crashed worker's replacement is counted."""
    return total(samples, "verk_restarts_total", kind="WorkerActor", queue="default") == 1


def test_queue_size_and_latency_are_read_at_scrape_time(start_verk: Any, r: redis.Redis) -> None:
    """Jobs waiting in a paused queue show as its size, the oldest one's age as its
    latency; a queue this node does not work on is not shown."""
    pause_queue(r, "held")
    port = free_port()
    node = start_verk(queues=(QueueSpec("default", 2), QueueSpec("held", 1)), metrics_port=port)
    old = time.time() - 30
    for n in range(3):
        r.lpush(
            "queue:held",
            json.dumps({"class": "Noop", "args": [n], "jid": f"j{n}", "enqueued_at": old + n}),
        )
    r.lpush("queue:other", b'{"class":"Noop","args":[],"jid":"x","enqueued_at":1.0}')
    with Client(url=node.settings.redis_url) as client:
        client.enqueue_at(10**10, "Noop", 1)
    _, samples = ready(port)
    assert total(samples, "verk_queue_size", queue="held") == 3
    assert 30 <= total(samples, "verk_queue_latency_seconds", queue="held") < 60
    assert total(samples, "verk_set_size", set="scheduled") == 1
    assert not [k for k in samples if ("queue", "other") in k[1]]


def test_redis_errors_of_every_manager_are_counted_by_actor(
    start_verk: Any, redis_server: RedisServer
) -> None:
    """Redis stopped for a few seconds: the node, scheduler and queue managers' failed
    calls are counted under their own ``actor`` label, and their reconnects once it is back."""
    port = free_port()
    start_verk(metrics_port=port, poll_interval=0.2, heartbeat_interval=0.5)
    _, samples = ready(port)
    assert total(samples, "verk_redis_errors_total") == 0
    redis_server.stop()
    try:

        def failing_everywhere() -> Samples | None:
            """the node, scheduler and queue managers have each counted failures"""
            samples = scrape(port)[1]
            counted = [
                total(samples, "verk_redis_errors_total", actor=actor)
                for actor in ("node_manager", "schedule_manager", "queue_manager")
            ]
            return samples if all(counted) else None

        samples = wait_for(failing_everywhere, timeout=30, every=0.5)
        assert total(samples, "verk_redis_errors_total", actor="metrics") >= 1  # the scrapes
        assert total(samples, "verk_redis_up") == 0
    finally:
        redis_server.start()

    def reconnected() -> bool:
        """the node and scheduler managers counted a reconnect"""
        samples = scrape(port)[1]
        return all(
            total(samples, "verk_redis_reconnects_total", actor=actor) >= 1
            for actor in ("node_manager", "schedule_manager")
        )

    wait_for(reconnected, timeout=30, every=0.5)


def test_a_path_other_than_metrics_is_not_found(start_verk: Any) -> None:
    """Only /metrics (and /) answer; the rest is 404, the actor goes on serving."""
    port = free_port()
    start_verk(metrics_port=port)
    ready(port)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/secret", timeout=10)
    assert caught.value.code == 404
    assert scrape(port)[1]


def test_metrics_off_listens_on_nothing_more(start_verk: Any) -> None:
    """Without metrics_port no MetricsActor runs: the node has its usual processes, each
    with its one Thespian socket, and nothing listens on a metrics port."""
    start_verk()
    pids = started_node_pids(in_process_node, ACTORS_OF_A_NODE)
    assert len(pids) == ACTORS_OF_A_NODE
    assert_loopback_and_unshared(pids)  # one listening socket per process, no more


def test_start_without_prometheus_client_exits_2(redis_server: RedisServer) -> None:
    """``start --metrics-port`` without the extra says how to install it and exits 2."""
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from verk_actors.cli import main\n"
        f"sys.exit(main(['start', '--metrics-port', '{free_port()}', "
        f"'--redis-url', '{redis_server.url}']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'verk_actors[metrics]'" in done.stderr


def test_a_replaced_workers_manager_never_lowers_the_counts() -> None:
    """Totals of a WorkersManager that died are kept when its successor reports from 0."""
    tally = NodeTally()
    tally.queues = ("q",)
    tally.report("wm-1", QueueFigures("q", (("A", "processed", 5),), (), (("died", 1),), 1, 3, 0))
    tally.report("wm-2", QueueFigures("q", (("A", "processed", 2),), (), (), 0, 3, 1))
    tally.restarted(ActorRestarted("WorkersManager", "q"))
    sums = tally.totals("q")
    assert sums.jobs == {("A", "processed"): 7}
    assert sums.killed == {"died": 1}
    assert sums.replaced == 1
    assert tally.workers("q") == (0, 3)
    assert tally.restarts == {("WorkersManager", "q"): 1}
