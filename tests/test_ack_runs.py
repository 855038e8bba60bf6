"""ack_jobs removes runs of jobs in a few calls, and exactly what one ``LREM -1`` per job
would remove: the same list left, the same count returned, whatever the order given."""

from __future__ import annotations

import random

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verk_actors.bench.measure import CommandCounter
from verk_actors.store import keys
from verk_actors.store.scripts import Scripts

Q = "default"
NODE = "node-a"
DAY = "2024-05-17"
INPROGRESS = keys.inprogress_key(Q, NODE)


def texts(n: int, prefix: str = "j") -> list[bytes]:
    """``n`` distinct job texts."""
    return [f'{{"class":"A","args":[],"jid":"{prefix}{i:06d}"}}'.encode() for i in range(n)]


def lrem_model(stored: list[bytes], given: list[bytes]) -> tuple[list[bytes], int]:
    """``stored`` (head first) after one ``LREM -1`` per text given, and how many went."""
    left, removed = list(stored), 0
    for text in given:
        for index in range(len(left) - 1, -1, -1):
            if left[index] == text:
                del left[index]
                removed += 1
                break
    return left, removed


def ack(r: redis.Redis, scripts: Scripts, stored: list[bytes], given: list[bytes]) -> int:
    r.delete(INPROGRESS)
    if stored:
        r.rpush(INPROGRESS, *stored)
    return scripts.ack_jobs(r, Q, NODE, DAY, given)


@pytest.fixture
def scripts(r: redis.Redis) -> Scripts:
    return Scripts(r)


def taken_in_batches(count: int) -> list[bytes]:
    """The in-progress list after ``count`` jobs were taken: newest at the head."""
    return texts(count)[::-1]


def counting(r: redis.Redis) -> CommandCounter:
    """A started count of the commands the server runs (``stop()`` gives them by name)."""
    counter = CommandCounter(r)
    counter.start()
    return counter


def test_a_run_at_the_tail_goes_with_one_trim(r: redis.Redis, scripts: Scripts) -> None:
    """The oldest jobs, given oldest first, leave with one LTRIM and no LREM."""
    stored = taken_in_batches(600)
    oldest = stored[::-1][:500]
    counter = counting(r)
    assert ack(r, scripts, stored, oldest) == 500
    assert r.lrange(INPROGRESS, 0, -1) == stored[:100]
    ran = counter.stop()
    assert ran.get("lrem", 0) == 0
    assert ran.get("ltrim", 0) == 1


def test_a_run_behind_older_running_jobs_keeps_them_in_order(
    r: redis.Redis, scripts: Scripts
) -> None:
    """A newer batch done before an older one: the older jobs stay, in their order."""
    stored = taken_in_batches(1500)  # batches: oldest 0-499, 500-999, newest 1000-1499
    jobs = stored[::-1]
    middle = jobs[500:1000]
    counter = counting(r)
    assert ack(r, scripts, stored, middle) == 500
    assert r.lrange(INPROGRESS, 0, -1) == (jobs[:500] + jobs[1000:])[::-1]
    ran = counter.stop()
    assert ran.get("lrem", 0) == 0


@pytest.mark.parametrize("count", [1, 7, 8, 16, 17, 81, 999, 1000, 1001, 2500])
def test_runs_of_every_length_at_the_head(r: redis.Redis, scripts: Scripts, count: int) -> None:
    """Runs shorter than, as long as and longer than one LRANGE window, up to the head."""
    stored = taken_in_batches(count + 7)
    jobs = stored[::-1]
    assert ack(r, scripts, stored, jobs[7:]) == count
    assert r.lrange(INPROGRESS, 0, -1) == jobs[:7][::-1]


def test_many_older_jobs_fall_back_to_lrem(r: redis.Redis, scripts: Scripts) -> None:
    """More than 20,000 older jobs are not set aside: each job of the run gets its LREM."""
    stored = taken_in_batches(20_020)
    jobs = stored[::-1]
    counter = counting(r)
    assert ack(r, scripts, stored, jobs[20_001:20_011]) == 10
    assert r.lrange(INPROGRESS, 0, -1) == (jobs[:20_001] + jobs[20_011:])[::-1]
    ran = counter.stop()
    assert ran.get("lrem", 0) == 10
    assert ran.get("rpush", 0) == 1  # the test's own


def test_scattered_jobs_go_one_lrem_each(r: redis.Redis, scripts: Scripts) -> None:
    """Every other job (no runs): one LREM each, nothing set aside, small windows."""
    stored = taken_in_batches(3_000)
    jobs = stored[::-1]
    counter = counting(r)
    assert ack(r, scripts, stored, jobs[::2]) == 1_500
    assert r.lrange(INPROGRESS, 0, -1) == jobs[1::2][::-1]
    ran = counter.stop()
    assert ran.get("lrem", 0) == 1_500
    assert ran.get("ltrim", 0) == 0
    assert ran.get("rpush", 0) == 1  # the test's own


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    size=st.integers(0, 150),
    runs=st.lists(st.tuples(st.integers(0, 160), st.integers(1, 90)), max_size=6),
    strangers=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_same_result_as_one_lrem_per_job(
    r: redis.Redis,
    scripts: Scripts,
    *,
    size: int,
    runs: list[tuple[int, int]],
    strangers: int,
    seed: int,
) -> None:
    """Runs anywhere, in any order, with texts not in the list among them."""
    stored = taken_in_batches(size)
    jobs = stored[::-1]
    given: list[bytes] = []
    for start, length in runs:
        given += jobs[start : start + length]
    given += texts(strangers, prefix="gone")
    rng = random.Random(seed)
    if rng.random() < 0.3:
        rng.shuffle(given)
    expected, removed = lrem_model(stored, given)
    assert ack(r, scripts, stored, given) == removed
    assert r.lrange(INPROGRESS, 0, -1) == expected


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    stored=st.lists(st.sampled_from([b"a", b"b", b"c", b"d"]), max_size=30),
    given=st.lists(st.sampled_from([b"a", b"b", b"c", b"d", b"e"]), max_size=30),
)
def test_same_jobs_left_when_texts_repeat(
    r: redis.Redis, scripts: Scripts, stored: list[bytes], given: list[bytes]
) -> None:
    """A text stored twice (a job queued twice): the same count goes and the same texts
    stay; which of two equal texts stays may differ, and equal texts are the same job."""
    expected, removed = lrem_model(stored, given)
    assert ack(r, scripts, stored, given) == removed
    assert sorted(r.lrange(INPROGRESS, 0, -1)) == sorted(expected)


def test_big_jobs_are_not_set_aside_beyond_a_few_megabytes(
    r: redis.Redis, scripts: Scripts
) -> None:
    """Jobs of 50 kB: a run behind 60 older ones (3 MB) goes one LREM a job instead of
    copying the older jobs through Lua; behind 10 (0.5 MB) it is cut out."""
    big = [t + b" " * 50_000 for t in taken_in_batches(100)]
    jobs = big[::-1]
    counter = counting(r)
    assert ack(r, scripts, big, jobs[60:80]) == 20
    assert r.lrange(INPROGRESS, 0, -1) == (jobs[:60] + jobs[80:])[::-1]
    ran = counter.stop()
    assert ran.get("lrem", 0) == 20
    counter = counting(r)
    assert ack(r, scripts, big, jobs[10:30]) == 20
    assert r.lrange(INPROGRESS, 0, -1) == (jobs[:10] + jobs[30:])[::-1]
    ran = counter.stop()
    assert ran.get("lrem", 0) == 0


def test_jobs_no_longer_in_progress_are_looked_for_once(r: redis.Redis, scripts: Scripts) -> None:
    """Ten jobs another node has recovered: where LPOS found nothing, no LREM scans for
    the job again; the last seven, too few to look for a run, get their LREM only."""
    stored = taken_in_batches(50)
    counter = counting(r)
    assert ack(r, scripts, stored, texts(10, prefix="gone")) == 0
    assert r.lrange(INPROGRESS, 0, -1) == stored
    ran = counter.stop()
    assert ran.get("lpos", 0) == 10 - 7  # the last 7 are too few to look for a run
    assert ran.get("lrem", 0) == 7
