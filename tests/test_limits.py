"""Rate and concurrency limiters: the scripts, a job over its limit put back into
``schedule`` without using a retry, slots given back, and no cost for jobs without
limiters."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.servers import RedisServer
from verk_actors import Concurrent, Window, Worker, limited
from verk_actors.cli import main
from verk_actors.config.settings import Settings
from verk_actors.errors import ConfigurationError
from verk_actors.jobs.job import decode_job
from verk_actors.jobs.limits import DEFER_MAX, defer_delay, install_gate
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.jobs.retry import Fate
from verk_actors.jobs.running import JobOutcome, PreparedJob, run_prepared
from verk_actors.store import keys
from verk_actors.store.admin.limits import limiter_statuses
from verk_actors.store.limits import RedisLimitGate
from verk_actors.store.scripts import Scripts

SLOTS = keys.limit_slots_key("t")


class OneAtATime(Worker):
    """Holds "t" (one slot) while it runs; fails when its argument says so."""

    limits = (Concurrent("t", 1, lease=30),)

    def perform(self, fail: bool) -> None:
        if fail:
            raise RuntimeError("boom")


class TakesInside(Worker):
    """Takes "t" inside perform."""

    def perform(self) -> None:
        with limited(Concurrent("t", 1, lease=30)):
            pass


class Plain(Worker):
    """No limiter."""

    def perform(self) -> None:
        pass


class RateThenSlot(Worker):
    """Takes a window ("w") then a slot ("t")."""

    limits = (Window("w", 5, per=60), Concurrent("t", 1, lease=30))

    def perform(self) -> None:
        pass


REGISTRY = WorkerRegistry([OneAtATime, TakesInside, Plain, RateThenSlot])


@pytest.fixture
def gate(redis_server: RedisServer) -> Iterator[RedisLimitGate]:
    """A limiter gate on the test's Redis, installed for this process's jobs."""
    made = RedisLimitGate(redis_server.url, "node-t")
    install_gate(made)
    yield made
    made.close()


def run(cls: str, *args: Any, **fields: Any) -> JobOutcome:
    """Run one job of ``cls`` here, as a worker process would."""
    text = json.dumps({"class": cls, "args": list(args), "jid": "j1", "queue": "q", **fields})
    settings = Settings()
    return run_prepared(PreparedJob(text.encode(), REGISTRY, settings, "q"), 1, settings)


def test_concurrent_take_script(r: redis.Redis) -> None:
    """At most ``limit`` slots are held; a slot given back or whose lease ended is free."""
    scripts = Scripts(r)
    api = Concurrent("api", 2)
    assert scripts.limit_take(r, api, "a", 30) is None
    assert scripts.limit_take(r, api, "b", 0.3) is None
    wait = scripts.limit_take(r, api, "c", 30)
    assert wait is not None and 0 < wait <= 300  # b's lease ends first
    r.zrem(keys.limit_slots_key("api"), "a")
    assert scripts.limit_take(r, api, "c", 30) is None
    assert scripts.limit_take(r, api, "d", 30) is not None
    time.sleep(0.35)  # b's lease ends: its slot comes back
    assert scripts.limit_take(r, api, "d", 30) is None
    assert sorted(r.zrange(keys.limit_slots_key("api"), 0, -1)) == [b"c", b"d"]
    assert r.smembers(keys.LIMITS) == {b"api"}
    spec = r.hgetall(keys.limit_key("api"))
    assert (spec[b"kind"], spec[b"limit"], float(spec[b"lease"])) == (b"concurrent", b"2", 30.0)
    assert 29 < r.pttl(keys.limit_slots_key("api")) / 1000 <= 31


def test_window_take_script(r: redis.Redis) -> None:
    """At most ``limit`` takes in any ``per`` seconds; the window slides."""
    scripts = Scripts(r)
    rate = Window("rate", 3, per=0.5)
    assert scripts.limit_take(r, rate, "t0", 0) is None
    time.sleep(0.2)
    for n in (1, 2):
        assert scripts.limit_take(r, rate, f"t{n}", 0) is None
    wait = scripts.limit_take(r, rate, "t3", 0)
    assert wait is not None and 0 < wait <= 300  # when t0 leaves the window
    time.sleep(wait / 1000 + 0.05)
    assert scripts.limit_take(r, rate, "t3", 0) is None
    assert scripts.limit_take(r, rate, "t4", 0) is not None
    statuses = limiter_statuses(r)
    assert [(s.name, s.kind, s.limit, s.seconds) for s in statuses] == [("rate", "window", 3, 0.5)]
    assert 1 <= statuses[0].in_use <= 3


def test_fail_jobs_puts_a_deferred_job_in_schedule_uncounted(r: redis.Redis) -> None:
    """A deferred job leaves in-progress for ``schedule`` and counts as neither processed
    nor failed."""
    scripts = Scripts(r)
    r.lpush(keys.inprogress_key("q", "n"), b"orig")
    recorded = scripts.fail_jobs(
        r,
        "q",
        "n",
        "2026-12-07",
        [(b"orig", Fate.DEFER, 1e10, "later")],
        now=time.time(),
        dead_timeout=1e9,
        dead_max_jobs=10,
    )
    assert recorded == 1
    assert r.zrange(keys.SCHEDULE, 0, -1, withscores=True) == [(b"later", 1e10)]
    assert not r.exists(keys.inprogress_key("q", "n"), keys.RETRY, keys.STAT_FAILED)
    assert not r.exists(keys.STAT_PROCESSED)


def test_a_job_over_its_limit_is_deferred_without_using_a_retry(
    r: redis.Redis, gate: RedisLimitGate
) -> None:
    """A full limiter (declared or taken inside perform) sends the job to ``schedule``
    after a growing backoff: retry count, error fields and error handlers untouched."""
    Scripts(r).limit_take(r, Concurrent("t", 1), "someone-else", 30)
    for cls in ("OneAtATime", "TakesInside"):
        args = (False,) if cls == "OneAtATime" else ()
        before = time.time()
        outcome = run(cls, *args, retry_count=2)
        assert outcome.failure is not None and outcome.failure.fate is Fate.DEFER
        assert outcome.error_class == "OverLimitError"
        assert before + 0.5 <= outcome.failure.score <= time.time() + 0.75
        job = decode_job(outcome.failure.text)
        assert job.retry_count == 2 and job.extra == {"limited": 1}
        again = run(cls, *args, retry_count=2, limited=1)
        assert again.failure is not None
        assert decode_job(again.failure.text).extra == {"limited": 2}
        assert again.failure.score >= before + 1.0
    assert r.zrange(SLOTS, 0, -1) == [b"someone-else"]


def test_a_window_take_counts_only_if_the_job_ran(r: redis.Redis, gate: RedisLimitGate) -> None:
    """A window taken before a full slot is given back (the job did not run); once the
    job runs, its take stays in the window."""
    Scripts(r).limit_take(r, Concurrent("t", 1), "someone-else", 30)
    deferred = run("RateThenSlot")
    assert deferred.failure is not None and deferred.failure.fate is Fate.DEFER
    assert r.zcard(keys.limit_window_key("w")) == 0
    r.delete(SLOTS)
    assert run("RateThenSlot").ok
    assert r.zcard(keys.limit_window_key("w")) == 1 and r.zcard(SLOTS) == 0


def test_a_slot_is_given_back_when_the_job_ends(r: redis.Redis, gate: RedisLimitGate) -> None:
    """A job that succeeds or fails gives its slot back at once; a failure is an
    ordinary failure (retry)."""
    assert run("OneAtATime", False).ok
    assert r.zcard(SLOTS) == 0
    failed = run("OneAtATime", True)
    assert failed.failure is not None and failed.failure.fate is Fate.RETRY
    assert failed.error_class == "RuntimeError"
    assert r.zcard(SLOTS) == 0
    assert run("TakesInside").ok
    assert r.zcard(SLOTS) == 0


def test_a_job_without_limiters_never_reaches_redis(gate: RedisLimitGate) -> None:
    """The gate connects only when a job takes a limiter: plain jobs cost no command."""
    for _ in range(3):
        assert run("Plain").ok
    assert gate._client is None
    assert run("OneAtATime", False).ok
    assert gate._client is not None


def test_limiters_are_checked() -> None:
    """Bad names, limits and seconds, and a ``limits`` of something else, are refused."""
    with pytest.raises(ConfigurationError, match="name"):
        Concurrent("a b", 1)
    with pytest.raises(ConfigurationError, match="limit"):
        Concurrent("a", 0)
    with pytest.raises(ConfigurationError, match="per"):
        Window("a", 1, per=0)

    class Wrong(Worker):
        limits = ("api",)  # type: ignore[assignment]

    with pytest.raises(ConfigurationError, match=r"Wrong\.limits"):
        WorkerRegistry([Wrong])

    class NotAList(Worker):
        limits = 3  # type: ignore[assignment]

    with pytest.raises(ConfigurationError, match=r"NotAList\.limits"):
        WorkerRegistry([NotAList])


def test_defer_delay_grows_with_jitter_up_to_a_bound() -> None:
    """The backoff doubles per deferral from 0.5 s, up to 30 s, plus up to 50 % jitter,
    and is at least the limiter's own wait."""
    rng = random.Random(4)
    for count, low in ((1, 0.5), (2, 1.0), (3, 2.0), (50, DEFER_MAX)):
        delay = defer_delay(count, 0.0, rng)
        assert low <= delay <= low * 1.5
    assert 7.0 <= defer_delay(1, 7.0, rng) <= 10.5


def test_the_limits_command_shows_use_and_holders(
    redis_server: RedisServer, r: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """``verk-actors limits`` lists each limiter with its use and, for a concurrent one,
    the jobs and nodes holding its slots; ``--json`` the same for scripts."""
    assert main(["limits", "--redis-url", redis_server.url]) == 0
    assert "no limiters yet" in capsys.readouterr().out
    scripts = Scripts(r)
    scripts.limit_take(r, Concurrent("api", 2), "jid1@node-a/7.1", 60)
    scripts.limit_take(r, Window("rate", 5, per=60), "jid2@node-b/8.1", 0)
    assert main(["limits", "--redis-url", redis_server.url]) == 0
    out = capsys.readouterr().out
    assert "2 at once (lease 1m00s)" in out and "1/2" in out and "jid1 on node-a" in out
    assert "5 per 1m00s" in out and "1/5" in out
    assert main(["limits", "--json", "--redis-url", redis_server.url]) == 0
    shown = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)["limits"]}
    assert shown["api"]["holders"] == [
        {
            "holder": "jid1@node-a/7.1",
            "jid": "jid1",
            "node": "node-a",
            "lease_until": shown["api"]["holders"][0]["lease_until"],
        }
    ]
    assert shown["rate"]["in_use"] == 1 and shown["rate"]["per"] == 60.0
