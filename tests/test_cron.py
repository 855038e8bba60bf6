"""Periodic jobs: entries and their ticks, the claim script, catch-up, and real nodes racing.

Cron jobs go to a queue no node works on (``crontest``), so every job enqueued stays
there to be counted by the ``cron_tick`` it carries.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.nodeproc import ROOT, NodeProcess
from verk_actors.config.file import load_config
from verk_actors.config.settings import Settings
from verk_actors.errors import ConfigurationError
from verk_actors.jobs.cron import CronEntry, node_entries
from verk_actors.jobs.worker import Worker
from verk_actors.store import keys
from verk_actors.store.cron import TICK_TTL, CronStore, claim_tick, cron_statuses
from verk_actors.store.scripts import Scripts

Q = "crontest"
EVERY_SECOND = CronEntry("tick", "CronProbe", "* * * * * *", queue=Q)


def ticks_in(r: redis.Redis, queue: str = Q) -> collections.Counter[int]:
    """How many jobs of each tick wait in ``queue``."""
    return collections.Counter(
        json.loads(text)["cron_tick"] for text in r.lrange(keys.queue_key(queue), 0, -1)
    )


def assert_each_tick_once(counts: collections.Counter[int]) -> None:
    """Every tick from the first to the last was enqueued, and none twice."""
    assert counts, "no tick was enqueued"
    doubled = {t: n for t, n in counts.items() if n > 1}
    assert not doubled, f"ticks enqueued more than once: {doubled}"
    missing = sorted(set(range(min(counts), max(counts) + 1)) - set(counts))
    assert not missing, f"ticks never enqueued: {missing}"


# --- entries -----------------------------------------------------------------------------


def test_ticks_between_is_after_exclusive_until_inclusive() -> None:
    """An every-second entry ticks at each whole second after ``after`` up to ``until``."""
    assert EVERY_SECOND.ticks_between(100.5, 104) == [101, 102, 103, 104]
    assert EVERY_SECOND.ticks_between(100, 100.9) == []
    assert EVERY_SECOND.latest(104.3) == 104
    assert EVERY_SECOND.next_after(104.0) == 105


def test_five_field_expression_in_a_time_zone() -> None:
    """09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer."""
    entry = CronEntry("report", "Report", "0 9 * * *", tz="Europe/Berlin")
    winter = entry.next_after(1_700_000_000)  # 2023-11-14
    summer = entry.next_after(1_690_000_000)  # 2023-07-22
    assert time.gmtime(winter).tm_hour == 8
    assert time.gmtime(summer).tm_hour == 7


def test_bad_entries_are_refused_with_the_reason() -> None:
    """A bad expression, time zone or name says what to write instead."""
    with pytest.raises(ConfigurationError, match="cannot be read"):
        CronEntry("x", "W", "every minute")
    with pytest.raises(ConfigurationError, match="IANA"):
        CronEntry("x", "W", "* * * * *", tz="Mars/Olympus")
    with pytest.raises(ConfigurationError, match="':'"):
        CronEntry("a:b", "W", "* * * * *")
    with pytest.raises(ConfigurationError, match="NAME=CLASS"):
        CronEntry.parse("no-schedule=Report")


def test_entries_from_text_toml_and_a_worker_class(tmp_path: Path) -> None:
    """The flag's text, a TOML table and a Worker's ``cron`` make entries; one name twice
    is refused."""
    entry = CronEntry.parse("report=Report@Europe/Berlin 0 9 * * MON")
    assert (entry.name, entry.worker, entry.tz, entry.schedule) == (
        "report",
        "Report",
        "Europe/Berlin",
        "0 9 * * MON",
    )
    env = Settings.from_env({"VERK_CRON": "a=A */5 * * * *;b=B 0 9,17 * * *"})
    assert [e.schedule for e in env.cron] == ["*/5 * * * *", "0 9,17 * * *"]
    config = tmp_path / "verk.toml"
    config.write_text(
        'cron_catch_up = "skip"\n[cron.nightly]\nclass = "Report"\ncron = "0 3 * * *"\n'
        'tz = "Europe/Berlin"\nargs = [1, "x"]\nqueue = "reports"\n'
    )
    values = load_config(config)
    assert values["cron_catch_up"] == "skip"
    (nightly,) = values["cron"]
    assert (nightly.args, nightly.target_queue) == ((1, "x"), "reports")

    class Cleanup(Worker):
        queue = "low"
        cron = "*/10 * * * *"
        cron_args = ("old",)

    (from_class,) = node_entries((), [Cleanup])
    assert (from_class.name, from_class.target_queue, from_class.args) == (
        "Cleanup",
        "low",
        ("old",),
    )
    with pytest.raises(ConfigurationError, match="two cron entries"):
        node_entries([CronEntry("Cleanup", "Other", "* * * * *")], [Cleanup])


# --- the claim ---------------------------------------------------------------------------


def test_a_tick_is_enqueued_once_and_recorded_as_the_last(r: redis.Redis) -> None:
    """Claiming a tick twice enqueues one job; the entry's hash names the last tick and jid."""
    scripts = Scripts(r)
    assert claim_tick(r, scripts, EVERY_SECOND, 1000, mode="due", now=1000.1)
    assert not claim_tick(r, scripts, EVERY_SECOND, 1000, mode="due", now=1000.2)
    assert claim_tick(r, scripts, EVERY_SECOND, 999, mode="due", now=1000.3)  # late, not lost
    assert ticks_in(r) == {1000: 1, 999: 1}
    fields = r.hgetall(keys.cron_entry_key("tick"))
    assert fields[b"last_tick"] == b"1000"
    job = json.loads(r.lrange(keys.queue_key(Q), -1, -1)[0])
    assert fields[b"last_jid"] == job["jid"].encode()
    assert 0 < r.ttl(keys.cron_tick_key("tick", 1000)) <= TICK_TTL


def test_catch_up_only_enqueues_a_tick_later_than_the_last(r: redis.Redis) -> None:
    """A catch-up claim at or before the last tick (never run: the first sighting) is refused."""
    scripts = Scripts(r)
    assert not claim_tick(r, scripts, EVERY_SECOND, 1000, mode="catch_up", now=1000.5)  # no since
    r.hset(keys.cron_entry_key("tick"), "since", "1000.5")
    assert not claim_tick(r, scripts, EVERY_SECOND, 1000, mode="catch_up", now=1001)
    assert claim_tick(r, scripts, EVERY_SECOND, 1005, mode="catch_up", now=1006)
    assert not claim_tick(r, scripts, EVERY_SECOND, 1004, mode="catch_up", now=1006)
    assert not claim_tick(r, scripts, EVERY_SECOND, 1005 - TICK_TTL, mode="due", now=1006)
    assert ticks_in(r) == {1005: 1}


# --- catch-up ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["latest", "skip"])
def test_a_node_starting_after_missed_ticks(redis_server, r: redis.Redis, mode: str) -> None:
    """Ticks no node was up for: ``latest`` enqueues the most recent once, ``skip`` none."""
    entry = CronEntry("five", "CronProbe", "*/5 * * * * *", queue=Q)
    first = CronStore(redis_server.url, "a", [entry], mode)
    try:
        first.poll(1000.2)  # a new entry: nothing to catch up
        first.poll(1005.1)
        first.poll(1010.1)
    finally:
        first.close()
    assert ticks_in(r) == {1005: 1, 1010: 1}
    # Every node down from 1010.1 to 1032.4: ticks 1015..1030 missed.
    stores = [CronStore(redis_server.url, n, [entry], mode) for n in ("b", "c")]
    try:
        for store in stores:  # both start; one catch-up at most
            store.poll(1032.4)
        for store in stores:
            store.poll(1035.1)
    finally:
        for store in stores:
            store.close()
    caught = {1030: 1} if mode == "latest" else {}
    assert ticks_in(r) == {1005: 1, 1010: 1, **caught, 1035: 1}
    (status,) = cron_statuses(r)
    assert status.last_tick == 1035
    assert status.next_tick(1035.5) == 1040


def test_stores_racing_in_threads_enqueue_each_tick_once(redis_server, r: redis.Redis) -> None:
    """Four nodes' stores polling an every-second entry at once: each tick once, none missed."""
    stores = [CronStore(redis_server.url, f"n{i}", [EVERY_SECOND]) for i in range(4)]
    stop = time.time() + 4.0

    def run(store: CronStore) -> None:
        while time.time() < stop:
            store.poll()
            time.sleep(min(store.wait(), 0.2))

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    counts = ticks_in(r)
    assert_each_tick_once(counts)
    assert len(counts) >= 3


# --- real nodes --------------------------------------------------------------------------


@pytest.fixture
def cron_nodes(run_node, tmp_path: Path) -> Callable[..., NodeProcess]:
    """Start ``verk-actors start`` nodes with an every-second cron entry; kill leftovers."""
    config = tmp_path / "verk.toml"
    config.write_text(f'[cron.tick]\nclass = "CronProbe"\ncron = "* * * * * *"\nqueue = "{Q}"\n')

    def start(node_id: str, *extra: str) -> NodeProcess:
        return run_node(
            node_id,
            "--queue",
            "default=1",
            "--config",
            str(config),
            "--shutdown-timeout",
            "2",
            *extra,
        )

    return start


def test_three_nodes_one_killed_enqueue_each_tick_once(
    cron_nodes, redis_server, r: redis.Redis
) -> None:
    """Three nodes run an every-second entry, one SIGKILLed mid-run: no tick missed or doubled."""
    nodes = [cron_nodes(f"cron-{i}") for i in range(3)]
    time.sleep(3.0)
    nodes[1].kill_all()
    time.sleep(3.0)
    for node in (nodes[0], nodes[2]):
        node.terminate()
    counts = ticks_in(r)
    assert_each_tick_once(counts)
    assert len(counts) >= 5
    listed = subprocess.run(
        [sys.executable, "-m", "verk_actors", "cron", "--json", "--redis-url", redis_server.url],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    (row,) = json.loads(listed.stdout)["cron"]
    assert row["name"] == "tick"
    assert row["last_run"] == max(counts)


@pytest.mark.parametrize("mode", ["latest", "skip"])
def test_a_node_down_over_ticks(cron_nodes, r: redis.Redis, mode: str) -> None:
    """The only node is killed and started again: the ticks it missed follow ``cron_catch_up``
    (``latest``: the most recent missed tick is enqueued when it starts; ``skip``: none)."""
    node = cron_nodes("solo", "--cron-catch-up", mode)
    time.sleep(2.0)
    node.kill_all()
    killed_after = max(ticks_in(r))
    time.sleep(3.0)
    node = cron_nodes("solo", "--cron-catch-up", mode)
    time.sleep(2.0)
    node.terminate()
    counts = ticks_in(r)
    assert all(n == 1 for n in counts.values()), counts
    restarted = sorted(t for t in counts if t > killed_after)
    assert restarted == list(range(restarted[0], restarted[-1] + 1))
    assert restarted[0] > killed_after + 1, "the node was down over ticks"
    # A node notes when it first polls (seen_at, rewritten every 30 s only).
    started = float(r.hget(keys.cron_entry_key("tick"), "seen_at") or 0)
    if mode == "latest":
        assert restarted[0] <= started < restarted[0] + 1
        assert "caught up" in node.output
    else:
        assert restarted[0] > started
        assert "caught up" not in node.output
