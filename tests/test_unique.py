"""Unique jobs: one lock per class, queue and key, taken with the enqueue, freed when the
job starts or succeeds, expiring on its own; under races, through every door, with kills."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.conftest import ask_for, wait_for
from tests.nodeproc import ROOT, NodeProcess
from tests.unique_jobs import DONE, RUNS, SlowUnique
from verk_actors.actors.messages import Enqueue, Enqueued
from verk_actors.config.settings import Settings
from verk_actors.errors import InvalidJobError
from verk_actors.jobs.job import decode_job
from verk_actors.jobs.retry import Fate
from verk_actors.jobs.unique import unique_digest
from verk_actors.store import keys
from verk_actors.store.client import Client
from verk_actors.store.queue_store import Pending, QueueStore
from verk_actors.store.scripts import Scripts

QUEUE = keys.queue_key("default")


def lock_of(job_text: bytes) -> str:
    """The lock key a unique job's text names."""
    return keys.unique_lock_key(decode_job(job_text).extra["unique_digest"])


# --- the scripts -------------------------------------------------------------------------------


def test_unique_enqueue_and_release_scripts(r: redis.Redis) -> None:
    """``unique_enqueue`` writes once and names the holder; ``unique_release`` frees a lock
    only for the jid holding it."""
    scripts = Scripts(r)
    lock = keys.unique_lock_key("d1")
    assert scripts.unique_enqueue(r, "d1", "A", "q", jid="j1", ttl_ms=5000, at=None) == (
        True,
        "j1",
    )
    assert scripts.unique_enqueue(r, "d1", "B", "q", jid="j2", ttl_ms=5000, at=None) == (
        False,
        "j1",
    )
    assert r.lrange(keys.queue_key("q"), 0, -1) == [b"A"]
    assert r.smembers(keys.QUEUES) == {b"q"}
    assert scripts.unique_enqueue(r, "d2", "C", "q", jid="j3", ttl_ms=5000, at=1e10) == (
        True,
        "j3",
    )
    assert r.zscore(keys.SCHEDULE, "C") == 1e10
    assert scripts.unique_release(r, [("d1", "j2"), ("d2", "j3")]) == 1
    assert r.get(lock) == b"j1"
    assert scripts.unique_release(r, [("d1", "j1")]) == 1
    assert not r.exists(lock)


# --- enqueueing -------------------------------------------------------------------------------


def test_a_duplicate_writes_nothing_and_returns_the_holders_jid(
    redis_server, r: redis.Redis
) -> None:
    """While a job holds the lock, the same class, queue and key enqueue nothing, and
    return the jid of the job holding it (``enqueue_result`` says it was a duplicate)."""
    client = Client(r)
    url = redis_server.url
    jid = client.enqueue(SlowUnique, url, "a", 1)
    assert jid is not None
    assert client.enqueue(SlowUnique, url, "a", 2) == jid  # unique_key: the name only
    assert client.enqueue_result(SlowUnique, url, "a", 3) == (jid, False)
    assert client.enqueue_result(SlowUnique, url, "a", 3, at=time.time() + 60) == (jid, False)
    other = client.enqueue(SlowUnique, url, "b", 1)
    elsewhere = client.enqueue(SlowUnique, url, "a", 1, queue="low")
    assert other is not None and elsewhere is not None
    assert r.llen(QUEUE) == 2
    digest = unique_digest("SlowUnique", "default", "a")
    assert r.get(keys.unique_lock_key(digest)) == jid.encode()
    assert 29 < r.pttl(keys.unique_lock_key(digest)) / 1000 <= 30
    job = decode_job(r.lrange(QUEUE, -1, -1)[0])
    assert job.extra == {"unique_for": 30.0, "unique_until": "success", "unique_digest": digest}


def test_options_by_name_and_their_checks(r: redis.Redis) -> None:
    """``unique_for``/``unique_until`` work by name; bad values are refused before writing."""
    client = Client(r)
    first = client.enqueue("Mailer", 1, unique_for=5, unique_until="start")
    assert client.enqueue("Mailer", 1, unique_for=5) == first
    assert client.enqueue("Mailer", 2, unique_for=5) is not None
    with pytest.raises(InvalidJobError, match="needs unique_for"):
        client.enqueue("Mailer", 1, unique_until="start")
    with pytest.raises(InvalidJobError, match="more than 0"):
        client.enqueue("Mailer", 1, unique_for=0)
    with pytest.raises(InvalidJobError, match="'success' or 'start'"):
        client.enqueue("Mailer", 1, unique_for=5, unique_until="end")
    assert r.llen(QUEUE) == 2


def test_the_lock_expires_on_its_own(r: redis.Redis) -> None:
    """After ``unique_for`` seconds the lock is gone, whatever became of the job."""
    client = Client(r)
    first = client.enqueue("Mailer", 1, unique_for=0.3)
    assert client.enqueue("Mailer", 1, unique_for=0.3) == first
    time.sleep(0.45)
    assert client.enqueue_result("Mailer", 1, unique_for=0.3)[1]


def test_a_scheduled_unique_job_holds_its_lock_until_due_plus_unique_for(r: redis.Redis) -> None:
    """``enqueue_in`` schedules the job and the lock lives the delay plus ``unique_for``."""
    client = Client(r)
    jid = client.enqueue_in(20, "Mailer", 1, unique_for=5)
    assert jid is not None
    assert client.enqueue("Mailer", 1, unique_for=5) == jid
    assert r.zcard(keys.SCHEDULE) == 1 and r.llen(QUEUE) == 0
    ttl = r.pttl(keys.unique_lock_key(unique_digest("Mailer", "default", [1]))) / 1000
    assert 24 < ttl <= 25


def test_many_enqueuers_at_once_make_exactly_one_job(redis_server, r: redis.Redis) -> None:
    """Twenty threads, each with its own client, enqueue the same job at once: one jid."""
    start = threading.Barrier(20)
    results: list[tuple[str, bool]] = []

    def enqueue() -> None:
        with Client(url=redis_server.url) as client:
            start.wait()
            results.append(client.enqueue_result("Report", "today", unique_for=60))

    threads = [threading.Thread(target=enqueue) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [jid for jid, written in results if written]
    assert len(results) == 20 and len(winners) == 1
    assert {jid for jid, _ in results} == set(winners)  # the others got the winner's jid
    assert r.llen(QUEUE) == 1
    assert decode_job(r.lrange(QUEUE, 0, 0)[0]).jid == winners[0]


def test_the_cli_says_when_nothing_was_enqueued(redis_server, r: redis.Redis) -> None:
    """``enqueue --unique-for`` enqueues once; the duplicate says nothing was written."""
    argv = [sys.executable, "-m", "verk_actors", "enqueue", "Report", '"x"', "--unique-for", "60"]
    argv += ["--redis-url", redis_server.url]
    first = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
    second = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
    assert "enqueued Report" in first.stdout
    jid = decode_job(r.lrange(QUEUE, 0, 0)[0]).jid
    assert f"not enqueued: job {jid} of Report" in second.stdout
    assert r.llen(QUEUE) == 1


def test_enqueue_many_takes_each_jobs_lock(r: redis.Redis) -> None:
    """``enqueue_many`` of unique jobs writes each key once: a duplicate of a job in
    Redis or of an earlier one in the list gets the holder's jid and writes nothing."""
    client = Client(r)
    held = client.enqueue("Mailer", "a", unique_for=30)
    jids = client.enqueue_many("Mailer", [("a",), ("b",), ("c",), ("b",)], unique_for=30)
    assert jids[0] == held and jids[3] == jids[1]
    assert len({held, jids[1], jids[2]}) == 3
    queued = [decode_job(text) for text in r.lrange(QUEUE, 0, -1)]
    assert sorted(job.jid or "" for job in queued) == sorted([held, jids[1], jids[2]])
    assert all(job.extra["unique_for"] == 30.0 for job in queued)
    many = client.enqueue_many(SlowUnique, [("u", f"k{n}", 0) for n in range(2500)])
    assert len(set(many)) == 2500 and r.llen(QUEUE) == 2503  # three round trips
    assert client.enqueue_many(SlowUnique, [("u", "k7", 1)]) == [many[7]]
    with pytest.raises(InvalidJobError, match="job 1: args must be a list"):
        client.enqueue_many("Mailer", [("d",), "e"], unique_for=30)
    assert r.llen(QUEUE) == 2503


# --- freeing the lock ---------------------------------------------------------------------


@pytest.fixture
def store(redis_server) -> Iterator[QueueStore]:
    """The default queue's store of a node ``n1``, as its QueueManager uses it."""
    queue_store = QueueStore(Settings(redis_url=redis_server.url), "default", "n1")
    yield queue_store
    queue_store.close()


def test_freed_at_start_or_at_success_or_death_not_at_retry(
    r: redis.Redis, store: QueueStore
) -> None:
    """``start`` frees the lock when a node takes the job; ``success`` when it is acked
    or goes to dead, not when it goes to retry; a lock another jid holds is left alone."""
    client = Client(r)
    client.enqueue("Starts", 1, unique_for=60, unique_until="start")
    client.enqueue("Succeeds", 1, unique_for=60)
    client.enqueue("Dies", 1, unique_for=60)
    client.enqueue("Retries", 1, unique_for=60)
    taken, error = store.write(Pending(), 4)
    assert error is None and taken is not None and len(taken) == 4
    starts, succeeds, dies, retries = taken
    assert all(r.exists(lock_of(t)) for t in taken)
    store.release_started(taken)
    assert not r.exists(lock_of(starts))
    assert all(r.exists(lock_of(t)) for t in (succeeds, dies, retries))
    pending = Pending(
        acked=[succeeds],
        failed=[(dies, Fate.DEAD, 0.0, dies), (retries, Fate.RETRY, time.time() + 60, retries)],
    )
    assert store.write(pending, 0)[1] is None
    assert not r.exists(lock_of(succeeds)) and not r.exists(lock_of(dies))
    assert r.exists(lock_of(retries))
    r.set(lock_of(retries), "a-newer-job")
    store.write(Pending(acked=[retries]), 0)
    assert r.get(lock_of(retries)) == b"a-newer-job"


def test_a_job_without_unique_options_frees_nothing(r: redis.Redis, store: QueueStore) -> None:
    """Plain jobs take the usual path: acked, no lock touched, no extra field."""
    Client(r).enqueue("Plain", 1)
    taken, _ = store.write(Pending(), 1)
    assert taken is not None and b"unique" not in taken[0]
    store.release_started(taken)
    assert store.write(Pending(acked=taken), 0) == ([], None)
    assert r.keys("verk:unique:*") == []


def test_a_node_frees_the_lock_at_start_or_success(start_verk, asys, redis_server, r) -> None:
    """On a running node, enqueued by the ``Enqueue`` message: a job unique until start
    can be enqueued again while it runs; one unique until success only once it is done."""
    node = start_verk(imports=("tests.jobs", "tests.unique_jobs"))
    url = redis_server.url
    # By name, a message carries the unique options itself (the class's are not known).
    start_jid = ask_for(
        asys,
        node.root,
        Enqueue("SlowUniqueUntilStart", (url, "s", 1.5), unique_for=30, unique_until="start"),
        Enqueued,
    ).jid
    success_jid = ask_for(
        asys, node.root, Enqueue("SlowUnique", (url, "t", 1.5), unique_for=30), Enqueued
    ).jid
    assert start_jid is not None and success_jid is not None
    wait_for(lambda: r.llen(RUNS) == 2, timeout=15)
    assert r.llen(DONE) == 0
    again = ask_for(
        asys,
        node.root,
        Enqueue("SlowUniqueUntilStart", (url, "s", 0), unique_for=30, unique_until="start"),
        Enqueued,
    ).jid
    assert again is not None
    refused = ask_for(  # by name the key is every argument: these are the same
        asys, node.root, Enqueue("SlowUnique", (url, "t", 1.5), unique_for=30), Enqueued
    )
    assert refused.duplicate and refused.jid == success_jid
    wait_for(lambda: success_jid.encode() in r.lrange(DONE, 0, -1), timeout=15)
    wait_for(lambda: not r.keys("verk:unique:*"), timeout=5)
    after = ask_for(
        asys, node.root, Enqueue("SlowUnique", (url, "t", 0), unique_for=30), Enqueued
    ).jid
    assert after is not None
    node.stop()


# --- a node killed ------------------------------------------------------------------------


@pytest.fixture
def unique_nodes(run_node) -> Callable[[str], NodeProcess]:
    """``verk-actors start`` nodes running the unique workers (1 s heartbeat); killed after."""

    def start(node_id: str) -> NodeProcess:
        return run_node(
            node_id,
            "--import",
            "tests.unique_jobs",
            "--queue",
            "default=2",
            "--heartbeat-interval",
            "1",
            "--shutdown-timeout",
            "2",
        )

    return start


def test_a_killed_nodes_job_keeps_its_lock_and_runs_once(
    unique_nodes, redis_server, r: redis.Redis
) -> None:
    """A node dies running a unique job: duplicates stay refused, another node recovers
    the job and runs it to the end once, and its success frees the lock."""
    client = Client(r)
    url = redis_server.url
    first = unique_nodes("u-1")
    jid = client.enqueue(SlowUnique, url, "k", 2.0)
    assert jid is not None
    wait_for(lambda: r.llen(RUNS) == 1, timeout=15)
    first.kill_all()
    assert client.enqueue_result(SlowUnique, url, "k", 0) == (jid, False)
    second = unique_nodes("u-2")
    wait_for(lambda: r.llen(DONE) == 1, timeout=30)
    assert r.lrange(DONE, 0, -1) == [jid.encode()]
    assert r.lrange(RUNS, 0, -1) == [jid.encode(), jid.encode()]  # killed, then recovered
    wait_for(lambda: client.enqueue_result(SlowUnique, url, "k", 0)[1], timeout=5)
    wait_for(lambda: r.llen(DONE) == 2, timeout=15)
    second.terminate()
    assert len(set(r.lrange(DONE, 0, -1))) == 2
