"""Batches: jobs written with their batch in one step, outcomes told to the batch in
the acks' write, callbacks enqueued exactly once; on real nodes, with a kill."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis

from tests.batch_jobs import (
    CALLBACKS,
    DONE,
    LOG,
    RUNS,
    Callback,
    FailOnce,
    Hopeless,
    Parent,
    Row,
)
from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Batch, BatchCallback, batch_status, list_batches
from verk_actors.errors import InvalidJobError, NotFoundError
from verk_actors.jobs.batch import FAILED, SUCCEEDED
from verk_actors.jobs.job import decode_job
from verk_actors.store import keys
from verk_actors.store.client import Client
from verk_actors.store.scripts import Scripts

# --- the script ------------------------------------------------------------------------------


def make_batch(r: redis.Redis, jids: list[str], **callbacks: object) -> str:
    """A batch of jobs named ``jids`` written by ``Batch`` (the jobs are ``Row`` jobs)."""
    with Batch(Client(r), description="test", **callbacks) as batch:  # type: ignore[arg-type]
        for jid in jids:
            batch.enqueue(Row, "redis://unused", 0, jid=jid)
    return batch.bid


def callback_jobs(r: redis.Redis, queue: str = "default") -> list[list[object]]:
    """The callback jobs waiting in ``queue``: their args, oldest first."""
    texts = reversed(r.lrange(keys.queue_key(queue), 0, -1))
    return [job.args for job in map(decode_job, texts) if job.class_name != "Row"]


def test_success_fires_complete_then_success_once(r: redis.Redis) -> None:
    """The last job's success enqueues complete then success; replaying the updates
    (a job acked twice) enqueues nothing more."""
    bid = make_batch(
        r, ["j1", "j2"], on_complete=(Callback, {"n": 1}), on_success=(Callback, {"n": 2})
    )
    scripts = Scripts(r)
    assert scripts.batch_update(r, {(bid, "j1"): SUCCEEDED}, now=time.time(), keep=60) == 0
    assert scripts.batch_update(r, {(bid, "j2"): SUCCEEDED}, now=time.time(), keep=60) == 2
    assert [(args[0]["event"], args[1]) for args in callback_jobs(r)] == [  # type: ignore[index]
        ("complete", {"n": 1}),
        ("success", {"n": 2}),
    ]
    for jid in ("j1", "j2"):
        assert scripts.batch_update(r, {(bid, jid): SUCCEEDED}, now=time.time(), keep=60) == 0
    assert len(callback_jobs(r)) == 2
    status = batch_status(r, bid)
    assert (status.total, status.pending, status.succeeded, status.fired) == (
        2,
        0,
        True,
        ("complete", "success"),
    )
    assert 0 < r.ttl(keys.batch_key(bid)) <= 60
    assert not r.exists(keys.batch_pending_key(bid))


def test_a_failure_completes_the_batch_and_its_retry_succeeds_it(r: redis.Redis) -> None:
    """complete fires once every job has run (one failed), success only once the failed
    one succeeds; a second failure of the same job is not counted again."""
    bid = make_batch(r, ["a", "b"], on_complete=Callback, on_success=Callback)
    scripts = Scripts(r)
    scripts.batch_update(r, {(bid, "a"): FAILED}, now=time.time(), keep=60)
    assert callback_jobs(r) == []
    assert scripts.batch_update(r, {(bid, "b"): SUCCEEDED}, now=time.time(), keep=60) == 1
    assert [args[0]["event"] for args in callback_jobs(r)] == ["complete"]  # type: ignore[index]
    scripts.batch_update(r, {(bid, "a"): FAILED}, now=time.time(), keep=60)
    status = batch_status(r, bid)
    assert (status.pending, status.failures, status.complete, status.succeeded) == (
        1,
        1,
        True,
        False,
    )
    assert scripts.batch_update(r, {(bid, "a"): SUCCEEDED}, now=time.time(), keep=60) == 1
    assert [args[0]["event"] for args in callback_jobs(r)] == ["complete", "success"]  # type: ignore[index]


def test_the_callback_job_is_a_whole_sidekiq_job(r: redis.Redis) -> None:
    """A fired callback is valid job JSON with a fresh enqueued_at, on the callback's
    queue (named in ``queues``), with options holding any JSON (empty lists too)."""
    options = {"ids": [], "nested": {"x": [1, {}]}, "text": 'a "quoted" é'}
    bid = make_batch(r, ["only"], on_success=BatchCallbackOn("low", options))
    before = time.time()
    Scripts(r).batch_update(r, {(bid, "only"): SUCCEEDED}, now=before + 5, keep=60)
    [text] = r.lrange(keys.queue_key("low"), 0, -1)
    fields = json.loads(text)
    assert fields["class"] == "Callback"
    assert fields["args"] == [{"bid": bid, "event": "success", "description": "test"}, options]
    assert fields["enqueued_at"] == pytest.approx(before + 5)
    assert fields["queue"] == "low" and "bid" not in fields
    assert b"low" in r.smembers(keys.QUEUES)


def BatchCallbackOn(queue: str, options: dict[str, object]) -> BatchCallback:
    """A callback running ``Callback`` on ``queue``."""
    return BatchCallback(Callback, options, queue=queue)


def test_only_jobs_that_ran_are_told_to_their_batch() -> None:
    """A batch job acked counts as succeeded, one failed (retry or dead) as failed, and
    one a limiter deferred (it has not run) is not told; jobs without a bid cost nothing."""
    from verk_actors.jobs.retry import Fate
    from verk_actors.store.queue_store import Pending, note_batches

    def text(jid: str, bid: str | None = "b1") -> bytes:
        extra = {"bid": bid} if bid else {}
        return json.dumps({"class": "Row", "args": [], "jid": jid, **extra}).encode()

    pending = Pending(
        acked=[text("ok"), text("plain", bid=None)],
        failed=[
            (text("retry"), Fate.RETRY, 1.0, b""),
            (text("dead"), Fate.DEAD, 1.0, b""),
            (text("limited"), Fate.DEFER, 1.0, b""),
        ],
    )
    note_batches(pending)
    assert pending.batched == {
        ("b1", "ok"): SUCCEEDED,
        ("b1", "retry"): FAILED,
        ("b1", "dead"): FAILED,
    }


def test_updates_for_unknown_or_expired_batches_do_nothing(r: redis.Redis) -> None:
    """A job whose batch expired is acked without effect (no keys made)."""
    assert Scripts(r).batch_update(r, {("gone", "j"): SUCCEEDED}, now=time.time(), keep=60) == 0
    assert r.keys("verk:batch:*") == []


# --- the Python API --------------------------------------------------------------------------


def test_a_batch_is_written_whole_in_one_step(r: redis.Redis) -> None:
    """submit writes the hash, the pending set and the jobs (with their bid) together."""
    with Batch(Client(r), description="import", on_success=Callback) as batch:
        jids = batch.enqueue_many(Row, [("u", n) for n in range(3)])
        jids.append(batch.enqueue(Row, "u", 9, queue="low"))
    assert r.smembers(keys.batch_pending_key(batch.bid)) == {j.encode() for j in jids}
    jobs = [decode_job(t) for t in r.lrange(keys.queue_key("default"), 0, -1)]
    jobs += [decode_job(t) for t in r.lrange(keys.queue_key("low"), 0, -1)]
    assert sorted(job.jid or "" for job in jobs) == sorted(jids)
    assert {job.extra["bid"] for job in jobs} == {batch.bid}
    status = batch_status(r, batch.bid)
    assert (status.total, status.pending, status.description) == (4, 4, "import")
    assert [s.bid for s in list_batches(r)] == [batch.bid]
    assert r.ttl(keys.batch_key(batch.bid)) > 0


def fill_then_fail(client: Client) -> None:
    """A ``with Batch`` block that adds a job, then raises."""
    with Batch(client) as batch:
        batch.enqueue(Row, "u", 1)
        raise ValueError("the block failed")


def test_bad_batches_are_refused_and_write_nothing(r: redis.Redis) -> None:
    """An empty batch, unique or unknown options, bad callbacks and a reopened batch that
    does not exist are refused with a clear error; nothing is written."""
    client = Client(r)
    with pytest.raises(InvalidJobError, match="at least one job"):
        Batch(client).submit()
    with pytest.raises(InvalidJobError, match="unique"):
        Batch(client).enqueue(Row, "u", 1, unique_for=10)
    with pytest.raises(InvalidJobError, match="on_success"):
        Batch(client, on_success=42)
    with pytest.raises(InvalidJobError, match="options must be a dict"):
        Batch(client, on_success=(Callback, [1]))
    unjsonable = Batch(client, on_success=(Callback, {"x": object()}))
    unjsonable.enqueue(Row, "u", 1)
    with pytest.raises(InvalidJobError, match="JSON"):
        unjsonable.submit()
    reopened = Batch.reopen("nope", client)
    reopened.enqueue(Row, "u", 1)
    with pytest.raises(NotFoundError, match="nope"):
        reopened.submit()
    with pytest.raises(ValueError, match="the block failed"):
        fill_then_fail(client)
    assert r.keys("*") == []


# --- on real nodes -------------------------------------------------------------------------


@pytest.fixture
def batch_node(run_node) -> Callable[[str], NodeProcess]:
    """``verk-actors start`` running the batch workers (4 workers, fast polls)."""

    def start(node_id: str) -> NodeProcess:
        return run_node(
            node_id,
            "--import",
            "tests.batch_jobs",
            "--queue",
            "default=4",
            "--poll-interval",
            "0.2",
            "--heartbeat-interval",
            "1",
        )

    return start


def callbacks(r: redis.Redis) -> list[tuple[str, str]]:
    """``(event, bid)`` of every callback that ran."""
    return [tuple(json.loads(raw)[:2]) for raw in r.lrange(CALLBACKS, 0, -1)]  # type: ignore[misc]


def test_a_batch_with_a_retry_and_children_calls_back_once_each(
    batch_node, redis_server, r: redis.Redis
) -> None:
    """Rows, a job that fails once and a job adding children to its batch: complete and
    success each run once, success after every child and the retry."""
    url = redis_server.url
    batch_node("b-1")
    options = {"url": url}
    with Batch(url=url, on_complete=(Callback, options), on_success=(Callback, options)) as batch:
        batch.enqueue_many(Row, [(url, n) for n in range(50)])
        batch.enqueue(FailOnce, url, "batch-test:failed-once")
        batch.enqueue(Parent, url, 5)
    wait_for(lambda: len(callbacks(r)) == 2, timeout=60)
    time.sleep(1.0)  # nothing more comes
    assert callbacks(r) == [("complete", batch.bid), ("success", batch.bid)]
    log = [entry.decode() for entry in r.lrange(LOG, 0, -1)]
    assert log[-1] == f"success {batch.bid}"
    assert sorted(e for e in log if e.startswith("child")) == [f"child {n}" for n in range(5)]
    assert "retried batch-test:failed-once" in log
    status = batch_status(r, batch.bid)
    assert (status.total, status.pending, status.failures, status.succeeded) == (57, 0, 1, True)
    assert r.scard(DONE) == 50


def test_a_dead_job_completes_its_batch_but_never_succeeds_it(
    batch_node, redis_server, r: redis.Redis
) -> None:
    """A job that goes to dead: complete runs, success does not, the status says so."""
    url = redis_server.url
    batch_node("b-1")
    options = {"url": url}
    with Batch(url=url, on_complete=(Callback, options), on_success=(Callback, options)) as batch:
        batch.enqueue(Row, url, 1)
        batch.enqueue(Hopeless, url)
    wait_for(lambda: callbacks(r), timeout=30)
    wait_for(lambda: r.zcard(keys.DEAD) == 1, timeout=10)
    time.sleep(1.5)
    assert callbacks(r) == [("complete", batch.bid)]
    status = batch_status(r, batch.bid)
    assert (status.pending, status.failures, status.complete, status.succeeded) == (
        1,
        1,
        True,
        False,
    )


def test_ten_thousand_jobs_and_a_killed_node_call_back_exactly_once(
    batch_node, redis_server, r: redis.Redis
) -> None:
    """A node is SIGKILLed a third of the way through a 10,000-job batch; another node
    recovers its jobs; every job runs and the success callback runs exactly once."""
    url = redis_server.url
    first = batch_node("b-1")
    with Batch(url=url, on_success=(Callback, {"url": url})) as batch:
        batch.enqueue_many(Row, [(url, n) for n in range(10_000)])
    wait_for(lambda: int(r.get(RUNS) or 0) >= 3_000, timeout=60)
    first.kill_all()
    assert callbacks(r) == []
    batch_node("b-2")
    wait_for(lambda: callbacks(r), timeout=120)
    time.sleep(2.0)
    assert callbacks(r) == [("success", batch.bid)]
    assert r.scard(DONE) == 10_000
    assert int(r.get(RUNS) or 0) >= 10_000
    assert batch_status(r, batch.bid).succeeded


def test_the_batches_command_lists_and_shows_batches(redis_server, r: redis.Redis, capsys) -> None:
    """``verk-actors batches`` lists batches with their progress; with a bid it shows one
    (as JSON too); an unknown bid exits 3."""
    from verk_actors.cli import main

    bid = make_batch(r, ["x1", "x2"], on_success=Callback)
    Scripts(r).batch_update(r, {(bid, "x1"): FAILED}, now=time.time(), keep=60)
    assert main(["batches", "--redis-url", redis_server.url]) == 0
    out = capsys.readouterr().out
    assert bid in out and "running" in out
    assert main(["batches", bid, "--json", "--redis-url", redis_server.url]) == 0
    [shown] = json.loads(capsys.readouterr().out)["batches"]
    assert (shown["bid"], shown["total"], shown["pending"], shown["failures"]) == (bid, 2, 2, 1)
    assert main(["batches", "nope", "--redis-url", redis_server.url]) == 3
    assert "no batch nope" in capsys.readouterr().err
