"""What a node tells of jobs on threads and async queues: job events, Prometheus
metrics and the metrics history, each counted exactly, as for process slots."""

from __future__ import annotations

import collections
from typing import Any

import redis

from tests.conftest import ask_for, wait_for
from tests.servers import free_port
from tests.test_events import collect
from tests.test_metrics import ready, scrape
from verk_actors import Client, QueueSpec
from verk_actors.actors.messages import JobFailed, JobFinished, JobStarted, Subscribe, Subscribed
from verk_actors.store.admin.job_metrics import class_totals

IMPORTS = ("tests.jobs", "tests.lane_jobs", "tests.async_lane_jobs")
QUEUES = (QueueSpec("crawl", 4, "async", 4), QueueSpec("mail", 4, "threads", 4))

OUTCOMES = {
    ("crawl", "AsyncNap", "processed"): 6,
    ("crawl", "AsyncFail", "processed"): 3,
    ("crawl", "AsyncFail", "failed"): 3,
    ("crawl", "AsyncFail", "retried"): 1,
    ("crawl", "AsyncFail", "dead"): 2,
    ("mail", "ThreadNap", "processed"): 5,
    ("mail", "Fail", "processed"): 3,
    ("mail", "Fail", "failed"): 3,
    ("mail", "Fail", "retried"): 1,
    ("mail", "Fail", "dead"): 2,
}
"""What ``_enqueue``'s jobs come to, by queue, class and outcome (Sidekiq counts a
failure as processed too)."""


def _enqueue(url: str) -> tuple[set[str], dict[str, tuple[str, str, str]]]:
    """Jobs that succeed and fail (retried once, dead twice) on each lane queue: the jids
    that succeed, and each failing jid's (queue, class, target)."""
    failing = {}
    with Client(url=url) as client:
        ok = set(
            client.enqueue_many(
                "AsyncNap", ([url, "ran", 0.01, i] for i in range(6)), queue="crawl"
            )
        )
        ok |= set(
            client.enqueue_many(
                "ThreadNap", ([url, "ran", 0.01, i] for i in range(5)), queue="mail"
            )
        )
        for queue, worker in (("crawl", "AsyncFail"), ("mail", "Fail")):
            for n, retry in enumerate((True, False, False)):
                jid = client.enqueue(worker, url, "fails", f"{queue}{n}", queue=queue, retry=retry)
                failing[jid] = (queue, worker, "retry" if retry else "dead")
    return ok, failing


def test_lane_jobs_publish_started_finished_and_failed(start_verk, redis_server) -> None:
    """A subscriber hears each job of an async and a threads queue start, and then finish
    or fail with its error and where it goes next, each once, from its own queue."""
    node = start_verk(queues=QUEUES, imports=IMPORTS)
    ask_for(node.asys, node.root, Subscribe(), Subscribed)
    ok, failing = _enqueue(redis_server.url)

    def complete(events: list[Any]) -> bool:
        ended = {e.jid for e in events if isinstance(e, JobFinished | JobFailed)}
        started = {e.jid for e in events if isinstance(e, JobStarted)}
        return ended >= ok | set(failing) and started >= ok | set(failing)

    events, dropped = collect(node.asys, complete)
    assert dropped == 0
    jobs = [e for e in events if isinstance(e, JobStarted | JobFinished | JobFailed)]
    counts = collections.Counter((type(e).__name__, e.jid) for e in jobs)
    assert set(counts.values()) == {1}  # none twice
    queue_of = {e.jid: e.queue for e in jobs if isinstance(e, JobStarted)}
    assert {jid: q for jid, q in queue_of.items() if jid in failing} == {
        jid: q for jid, (q, _, _) in failing.items()
    }
    finished = {e.jid: e for e in jobs if isinstance(e, JobFinished)}
    assert set(finished) == ok
    assert {(e.queue, e.class_name) for e in finished.values()} == {
        ("crawl", "AsyncNap"),
        ("mail", "ThreadNap"),
    }
    assert all(e.duration >= 0.005 and e.started_at > 0 for e in finished.values())
    failed = {e.jid: e for e in jobs if isinstance(e, JobFailed)}
    assert {jid: (e.queue, e.class_name, e.target) for jid, e in failed.items()} == failing
    assert {e.error_class for e in failed.values()} == {"ValueError"}
    assert {e.error_message.split()[0] for e in failed.values()} == {"async", "boom"}
    node.stop()


def test_a_scrape_counts_lane_jobs_exactly(start_verk, r: redis.Redis) -> None:
    """/metrics counts the jobs of an async and a threads queue by queue, class and
    outcome exactly as they ended, with a run time for each, and as Redis counts them."""
    port = free_port()
    node = start_verk(queues=QUEUES, imports=IMPORTS, metrics_port=port)
    ready(port)
    _enqueue(node.settings.redis_url)

    def counted() -> dict[tuple[str, str, str], float] | None:
        """the scrape counts every job"""
        samples = scrape(port)[1]
        jobs = {
            (labels["queue"], labels["class"], labels["outcome"]): value
            for (name, frozen), value in samples.items()
            if name == "verk_jobs_total" and (labels := dict(frozen))
        }
        return jobs if jobs.get(("mail", "Fail", "dead")) == 2 and len(jobs) >= 10 else None

    wait_for(lambda: r.get("stat:processed") == b"17", timeout=20)
    assert wait_for(counted, timeout=20) == OUTCOMES
    samples = scrape(port)[1]
    timed = {
        dict(frozen)["class"]: value
        for (name, frozen), value in samples.items()
        if name == "verk_job_duration_seconds_count"
    }
    assert timed == {"AsyncNap": 6, "AsyncFail": 3, "ThreadNap": 5, "Fail": 3}
    assert r.get("stat:failed") == b"6"
    node.stop()


def test_the_history_records_lane_jobs_by_class(start_verk, r: redis.Redis) -> None:
    """The metrics history holds each class run on an async and a threads queue (by the
    name it was enqueued with), with its executions and failures exactly."""
    node = start_verk(queues=QUEUES, imports=IMPORTS)
    _enqueue(node.settings.redis_url)
    wait_for(lambda: r.get("stat:processed") == b"17", timeout=20)
    node.stop()  # writes what the managers have summed
    want = {"AsyncNap": (6, 0), "AsyncFail": (3, 3), "ThreadNap": (5, 0), "Fail": (3, 3)}

    def recorded() -> dict[str, tuple[int, int]] | None:
        """the history holds the four classes"""
        got = {c.name: (c.executions, c.failures) for c in class_totals(r, "1h")}
        return got if got == want else None

    wait_for(recorded, timeout=15)
