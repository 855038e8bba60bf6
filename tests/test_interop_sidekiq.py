"""Interoperability with the real Sidekiq 6.4 (Ruby) and with Elixir Verk's job shape.

Every test runs against its own Redis, with real processes: a verk_actors node on
multiprocTCPBase, Ruby snippets using Sidekiq's own client and API, and ``sidekiq``
servers running ``tests/interop/workers.rb``. Workers on both sides record what they
ran into the list ``interop:ran`` (see ``tests/interop_jobs.py``), so the tests
compare what one side wrote with what the other side ran.

Sidekiq is installed from Debian (``ruby-sidekiq``) when missing; where that is
impossible the tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import collections
import functools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.conftest import IN_CI, no_standby_waiting, wait_for
from tests.interop.sidekiq import SidekiqServer, SidekiqUnavailableError, ensure_sidekiq, run_ruby
from tests.interop_jobs import RAN, URL_ENV
from verk_actors import Client
from verk_actors.actors.messages import Enqueue, Enqueued
from verk_actors.config.settings import QueueSpec
from verk_actors.store.admin.pause import pause_queue, resume_queue

pytestmark = pytest.mark.interop

IMPORTS = ("tests.jobs", "tests.interop_jobs")

RICH_ARGS: list[Any] = [
    "plain ascii",
    "unicode: héllo wörld ✓ 日本語 🎉 Ω \u202ertl",
    'escapes: "quoted" back\\slash\nnew line\ttab \x00nul \u2028ls \x7f',
    "",
    0,
    -1,
    2**31,
    2**63 - 1,
    2**64 + 1,
    -(2**70),
    123456789012345678901234567890,
    3.141592653589793,
    -0.5,
    2.0,
    1e-07,
    1.5e300,
    None,
    True,
    False,
    [],
    {},
    [1, [2, [3, []]], "x"],
    {"nested": {"list": [1, "two", None, {"deep": [True, 2**65]}], "empty": {}, "none": None}},
    {"ключ": "значение", "emoji 🎉": ["✓"], "": 0},
]


def canon(value: Any) -> str:
    """JSON text that tells 1 from 1.0 and True from 1, with sorted keys."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def ran(r: redis.Redis) -> list[dict[str, Any]]:
    """Every execution recorded so far, by either side, oldest first."""
    return [json.loads(item) for item in r.lrange(RAN, 0, -1)]


def members(r: redis.Redis, zset: str) -> list[dict[str, Any]]:
    """The decoded members of a sorted set."""
    return [json.loads(item) for item in r.zrange(zset, 0, -1)]


def verk_job(class_name: str, args: list[Any], jid: str, **fields: Any) -> str:
    """A job text as Elixir Verk 1.7 writes it (verk-1.7-notes.md section 8)."""
    job: dict[str, Any] = {
        "args": json.dumps(args, separators=(",", ":"), ensure_ascii=False),
        "class": class_name,
        "created_at": None,
        "enqueued_at": int(time.time()),
        "error_backtrace": None,
        "error_message": None,
        "failed_at": None,
        "finished_at": None,
        "jid": jid,
        "max_retry_count": 3,
        "queue": "default",
        "retried_at": None,
        "retry_count": 0,
    }
    job.update(fields)
    return json.dumps(job, separators=(",", ":"), ensure_ascii=False)


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sidekiq_version() -> str:
    """Ruby Sidekiq 6.x, installed from Debian if missing (skip where impossible, not in CI)."""
    try:
        return ensure_sidekiq()
    except SidekiqUnavailableError as exc:
        reason = f"Ruby Sidekiq 6.x is needed for the interoperability tests: {exc}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def interop_url(sidekiq_version: str, redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The private Redis URL, also in the environment the node's workers inherit."""
    monkeypatch.setenv(URL_ENV, redis_server.url)
    return str(redis_server.url)


@pytest.fixture
def asys(interop_url: str, asys: Any) -> Any:
    """conftest's actor system, started after ``interop_url`` so its actors see the URL."""
    return asys


@pytest.fixture
def ruby(interop_url: str) -> Callable[..., Any]:
    """``ruby(script, data=None)``: run a Ruby snippet against the private Redis."""
    return functools.partial(run_ruby, interop_url)


@pytest.fixture
def start_sidekiq(interop_url: str) -> Iterator[Callable[..., SidekiqServer]]:
    """``start_sidekiq(queues=...)``: a running Sidekiq server, stopped after the test."""
    servers: list[SidekiqServer] = []

    def start(**options: Any) -> SidekiqServer:
        server = SidekiqServer(interop_url, **options)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.cleanup()


# --- Ruby snippets -------------------------------------------------------------------

PUSH_RICH_RB = """
args = INPUT + [2**100, -(2**65), 1.0 / 3, Float::MAX, 5.0e-324, 10.0,
                {"from ruby" => [nil, true, false, "ü"]}]
jids = [
  Sidekiq::Client.push("class" => "InteropRecord", "args" => args),
  Sidekiq::Client.push("class" => "InteropRecord", "args" => args, "queue" => "critical"),
]
emit({"jids" => jids, "args" => args})
"""

READ_QUEUE_AND_SCHEDULE_RB = """
q = Sidekiq::Queue.new(INPUT["queue"])
jobs = q.map { |j|
  {"klass" => j.klass, "display_class" => j.display_class, "args" => j.args, "jid" => j.jid,
   "queue" => j.queue, "enqueued_at" => j.enqueued_at.to_f, "created_at" => j.created_at.to_f}
}
scheduled = Sidekiq::ScheduledSet.new.map { |e|
  {"klass" => e.klass, "args" => e.args, "jid" => e.jid, "queue" => e.queue, "at" => e.at.to_f}
}
stats = Sidekiq::Stats.new
emit({"queues" => Sidekiq::Queue.all.map(&:name), "size" => q.size, "latency" => q.latency,
      "jobs" => jobs, "scheduled_size" => Sidekiq::ScheduledSet.new.size, "scheduled" => scheduled,
      "enqueued" => stats.enqueued, "stats_scheduled" => stats.scheduled_size,
      "found" => Sidekiq::ScheduledSet.new.find_job(INPUT["scheduled_jid"])&.jid})
"""

READ_FAILURES_RB = """
def describe(entry)
  return nil if entry.nil?
  {"klass" => entry.klass, "args" => entry.args, "jid" => entry.jid, "queue" => entry.queue,
   "error_class" => entry["error_class"], "error_message" => entry["error_message"],
   "retry_count" => entry["retry_count"], "failed_at" => entry["failed_at"],
   "error" => entry.error?, "backtrace" => entry.error_backtrace, "at" => entry.at.to_f,
   "tags" => entry.tags}
end
stats = Sidekiq::Stats.new
history = Sidekiq::Stats::History.new(1)
emit({"retry" => describe(Sidekiq::RetrySet.new.find_job(INPUT["retry_jid"])),
      "dead" => describe(INPUT["dead_jid"] && Sidekiq::DeadSet.new.find_job(INPUT["dead_jid"])),
      "retry_size" => Sidekiq::RetrySet.new.size, "dead_size" => Sidekiq::DeadSet.new.size,
      "processed" => stats.processed, "failed" => stats.failed,
      "stats_retry_size" => stats.retry_size, "stats_dead_size" => stats.dead_size,
      "history_processed" => history.processed, "history_failed" => history.failed})
"""

RETRY_FROM_RUBY_RB = """
entry = Sidekiq::RetrySet.new.find_job(INPUT["jid"])
entry.retry
emit({"retried" => entry.jid})
"""

PUSH_FAILING_RB = """
common = {"tags" => ["billing", "ü"], "bid" => "b-42", "backtrace" => 3,
          "custom" => {"nested" => [1, nil, {}]}, "retry" => 5}
emit({
  "recovers" => Sidekiq::Client.push(
    common.merge("class" => "InteropSidekiqFails", "args" => ["recovers", 2**70])),
  "fails" => Sidekiq::Client.push(
    common.merge("class" => "InteropAlwaysFails", "args" => ["fails again", {"x" => []}])),
})
"""

PUSH_EACH_RB = """
emit(INPUT["args"].map { |args|
  Sidekiq::Client.push("class" => "InteropRecord", "queue" => INPUT["queue"], "args" => args)
})
"""

READ_PROCESSES_RB = """
fields = %w[identity hostname pid started_at concurrency queues tag labels busy beat quiet]
procs = Sidekiq::ProcessSet.new.map { |p| fields.to_h { |k| [k, p[k]] } }
work = Sidekiq::WorkSet.new.map { |process, thread, w|
  {"process" => process, "thread" => thread, "queue" => w["queue"], "run_at" => w["run_at"],
   "jid" => w["payload"]["jid"], "class" => w["payload"]["class"]}
}
emit({"processes" => procs, "size" => Sidekiq::ProcessSet.new.size,
      "total_concurrency" => Sidekiq::ProcessSet.new.total_concurrency,
      "stats_processes" => Sidekiq::Stats.new.processes_size,
      "work" => work, "work_size" => Sidekiq::WorkSet.new.size})
"""

READ_BUSY_RB = """
procs = Sidekiq::ProcessSet.new.select { |p| p["identity"].include?(INPUT["node"]) }.map { |p|
  {"busy" => p["busy"], "concurrency" => p["concurrency"], "rss" => p["rss"],
   "tag" => p["tag"], "labels" => p["labels"], "identity" => p["identity"],
   "beat" => p["beat"]}
}
work = Sidekiq::Workers.new.map { |process, thread, w|
  {"process" => process, "thread" => thread, "run_at" => w["run_at"],
   "jid" => w["payload"]["jid"], "args" => w["payload"]["args"]}
}
emit({"processes" => procs, "work" => work})
"""


# --- tests ---------------------------------------------------------------------------


def test_sidekiq_client_job_runs_on_verk_with_args_intact(start_verk, ruby, r: redis.Redis) -> None:
    """Jobs pushed by Sidekiq::Client run on a verk_actors node with all argument types intact."""
    node = start_verk(imports=IMPORTS, queues=(QueueSpec("default", 3), QueueSpec("critical", 2)))
    pushed = ruby(PUSH_RICH_RB, RICH_ARGS)
    # Ruby received our values unchanged before it pushed them.
    assert canon(pushed["args"][: len(RICH_ARGS)]) == canon(RICH_ARGS)
    wait_for(lambda: len(ran(r)) >= 2, timeout=20)
    wait_for(lambda: r.get("stat:processed") == b"2", timeout=10)
    entries = ran(r)
    assert sorted(e["jid"] for e in entries) == sorted(pushed["jids"])
    for entry in entries:
        assert entry["runner"] == "verk"
        assert entry["class"] == "InteropRecord"
        assert canon(entry["args"]) == canon(pushed["args"])
    queues = {json.loads(e["text"])["queue"] for e in entries}
    assert queues == {"default", "critical"}
    assert r.llen("queue:default") == r.llen("queue:critical") == 0
    assert r.zcard("retry") == r.zcard("dead") == 0
    node.stop()


def test_verk_enqueued_jobs_run_on_sidekiq_server_with_args_intact(
    start_verk, start_sidekiq, interop_url: str, r: redis.Redis
) -> None:
    """Jobs enqueued by verk_actors (Client, the Enqueue message, now and scheduled) run on a
    real Sidekiq server with the same arguments."""
    node = start_verk(imports=IMPORTS, queues=(QueueSpec("verk_only", 1),))
    with Client(url=interop_url) as client:
        client_jid = client.enqueue("InteropRecord", *RICH_ARGS)
    now_reply = node.asys.ask(node.root, Enqueue("InteropRecord", tuple(RICH_ARGS)), 10)
    later_reply = node.asys.ask(
        node.root, Enqueue("InteropRecord", tuple(RICH_ARGS), at=time.time() + 1), 10
    )
    assert isinstance(now_reply, Enqueued)
    assert isinstance(later_reply, Enqueued)
    jids = {client_jid, now_reply.jid, later_reply.jid}
    sidekiq = start_sidekiq(queues=("default",))
    wait_for(lambda: len(ran(r)) >= 3, timeout=25)
    entries = ran(r)
    assert {e["jid"] for e in entries} == jids
    for entry in entries:
        assert entry["runner"] == "sidekiq"
        assert entry["class"] == "InteropRecord"
        assert canon(entry["args"]) == canon(RICH_ARGS)
    sidekiq.stop()
    # Sidekiq flushes its counters when it stops.
    assert r.get("stat:processed") == b"3"
    assert r.llen("queue:default") == r.zcard("schedule") == r.zcard("retry") == 0
    node.stop()


def test_sidekiq_api_reads_our_queues_and_scheduled_set(ruby, interop_url: str) -> None:
    """Sidekiq::Queue, ScheduledSet and Stats read the jobs verk_actors' Client writes."""
    with Client(url=interop_url) as client:
        jids = [
            client.enqueue("InteropRecord", i, "ü", {"k": [i]}, queue="reads") for i in range(3)
        ]
        at = time.time() + 3600
        scheduled_jid = client.enqueue_at(at, "InteropRecord", "later ✓", 2**70, queue="reads")
    seen = ruby(READ_QUEUE_AND_SCHEDULE_RB, {"queue": "reads", "scheduled_jid": scheduled_jid})
    assert "reads" in seen["queues"]
    assert seen["size"] == 3
    assert seen["enqueued"] == 3
    assert 0 <= seen["latency"] < 60
    by_jid = {job["jid"]: job for job in seen["jobs"]}
    assert set(by_jid) == set(jids)
    for i, jid in enumerate(jids):
        job = by_jid[jid]
        assert job["klass"] == job["display_class"] == "InteropRecord"
        assert canon(job["args"]) == canon([i, "ü", {"k": [i]}])
        assert job["queue"] == "reads"
        assert abs(job["enqueued_at"] - time.time()) < 60
        assert abs(job["created_at"] - time.time()) < 60
    assert seen["scheduled_size"] == seen["stats_scheduled"] == 1
    assert seen["found"] == scheduled_jid
    [entry] = seen["scheduled"]
    assert entry["jid"] == scheduled_jid
    assert entry["klass"] == "InteropRecord"
    assert entry["queue"] == "reads"
    assert canon(entry["args"]) == canon(["later ✓", 2**70])
    assert abs(entry["at"] - at) < 0.01


def test_sidekiq_api_reads_our_retry_dead_and_stats_and_retries_on_verk(
    start_verk, ruby, interop_url: str, r: redis.Redis
) -> None:
    """Sidekiq's RetrySet, DeadSet and Stats read verk_actors' failures, and a retry started
    from Ruby runs on verk_actors again."""
    node = start_verk(imports=IMPORTS)
    with Client(url=interop_url) as client:
        retry_jid = client.enqueue("InteropFailsFirst", "again ü")
        dead_jid = client.enqueue("InteropAlwaysFails", "dead ü", retry=False)
        client.enqueue_many("InteropRecord", [[i] for i in range(3)])
    wait_for(lambda: r.zcard("retry") == 1 and r.zcard("dead") == 1, timeout=20)
    wait_for(lambda: r.get("stat:processed") == b"5" and r.get("stat:failed") == b"2", timeout=10)
    seen = ruby(READ_FAILURES_RB, {"retry_jid": retry_jid, "dead_jid": dead_jid})
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert seen["processed"] == 5
    assert seen["failed"] == 2
    assert seen["history_processed"] == {today: 5}
    assert seen["history_failed"] == {today: 2}
    assert seen["retry_size"] == seen["stats_retry_size"] == 1
    assert seen["dead_size"] == seen["stats_dead_size"] == 1
    retry, dead = seen["retry"], seen["dead"]
    assert retry["klass"] == "InteropFailsFirst"
    assert retry["args"] == ["again ü"]
    assert retry["queue"] == "default"
    assert retry["error"] is True
    assert retry["error_class"] == "ValueError"
    assert retry["error_message"] == f"first try of {retry_jid} fails ✗"
    # verk_actors counts failures (1 after the first), as Verk; Sidekiq would write 0.
    assert retry["retry_count"] == 1
    assert retry["at"] > time.time()
    assert retry["backtrace"]
    assert all(isinstance(line, str) for line in retry["backtrace"])
    assert dead["klass"] == "InteropAlwaysFails"
    assert dead["args"] == ["dead ü"]
    assert dead["error_class"] == "ValueError"
    assert dead["error_message"] == "verk refuses ✗ dead ü"

    assert ruby(RETRY_FROM_RUBY_RB, {"jid": retry_jid}) == {"retried": retry_jid}
    wait_for(lambda: r.get("stat:processed") == b"6", timeout=20)
    attempts = [e for e in ran(r) if e["jid"] == retry_jid]
    assert len(attempts) == 2
    assert all(e["runner"] == "verk" and e["args"] == ["again ü"] for e in attempts)
    after = ruby(READ_FAILURES_RB, {"retry_jid": retry_jid, "dead_jid": None})
    assert after["retry"] is None
    assert after["retry_size"] == 0
    assert after["processed"] == 6
    assert after["failed"] == 2
    node.stop()


def test_sidekiq_process_set_shows_verk_nodes(
    start_verk, ruby, interop_url: str, r: redis.Redis
) -> None:
    """Sidekiq::ProcessSet and WorkSet list a running verk_actors node and the job it runs, and
    forget the node when it stops."""
    node = start_verk(imports=IMPORTS, queues=(QueueSpec("default", 3), QueueSpec("low", 2)))
    with Client(url=interop_url) as client:
        jid = client.enqueue("Sleep", interop_url, "slept", "busy", 4)
    wait_for(lambda: r.lrange("slept", 0, -1) == [b"start:busy"], timeout=10)

    def listed() -> Any:
        """Sidekiq::ProcessSet lists the node and Sidekiq::WorkSet its running job."""
        seen = ruby(READ_PROCESSES_RB)
        found = [p for p in seen["processes"] if node.node_id in str(p["identity"])]
        return (seen, found[0]) if found and seen["work"] else None

    seen, process = wait_for(listed, timeout=8, every=0.3)
    assert seen["size"] >= 1
    assert seen["stats_processes"] >= 1
    assert seen["total_concurrency"] >= 5
    assert process["hostname"] == socket.gethostname()
    assert isinstance(process["pid"], int)
    assert sorted(process["queues"]) == ["default", "low"]
    assert process["concurrency"] == 5
    assert process["busy"] == 1
    assert abs(process["beat"] - time.time()) < 30
    assert isinstance(process["started_at"], int | float)
    [work] = seen["work"]
    assert work["process"] == process["identity"]
    assert work["queue"] == "default"
    assert work["jid"] == jid
    assert work["class"] == "Sleep"
    assert abs(work["run_at"] - time.time()) < 30
    assert seen["work_size"] == 1
    wait_for(lambda: r.llen("slept") == 2, timeout=10)
    node.stop()
    gone = ruby(READ_PROCESSES_RB)
    assert not [p for p in gone["processes"] if node.node_id in str(p["identity"])]


def test_job_failed_by_sidekiq_runs_on_verk_with_sidekiq_fields_kept(
    start_sidekiq, start_verk, ruby, r: redis.Redis
) -> None:
    """Jobs a real Sidekiq server failed into ``retry`` run on verk_actors when due, and keep
    Sidekiq's fields through another failure."""
    sidekiq = start_sidekiq(queues=("default",))
    jids = ruby(PUSH_FAILING_RB)
    wait_for(lambda: r.zcard("retry") == 2, timeout=20)
    sidekiq.stop()
    by_sidekiq = {job["jid"]: job for job in members(r, "retry")}
    for job in by_sidekiq.values():
        assert job["retry_count"] == 0
        assert job["error_class"] == "ArgumentError"
        assert isinstance(job["failed_at"], float)
        assert isinstance(job["error_backtrace"], str)  # Sidekiq's compressed backtrace
        assert job["tags"] == ["billing", "ü"]

    node = start_verk(imports=IMPORTS)
    now = time.time()
    r.zadd("retry", dict.fromkeys(r.zrange("retry", 0, -1), now), xx=True)

    def verk_failed_it_again() -> bool:
        """verk_actors ran both jobs and failed one of them back into retry."""
        again = members(r, "retry")
        return len(ran(r)) >= 4 and len(again) == 1 and again[0]["error_class"] == "ValueError"

    wait_for(verk_failed_it_again, timeout=20)
    entries = [e for e in ran(r) if e["runner"] == "verk"]
    assert sorted(e["jid"] for e in entries) == sorted(jids.values())

    recovered = next(e for e in entries if e["jid"] == jids["recovers"])
    assert recovered["args"] == ["recovers", 2**70]
    text = json.loads(recovered["text"])
    original = by_sidekiq[jids["recovers"]]
    assert text["enqueued_at"] >= now
    assert {k: v for k, v in text.items() if k != "enqueued_at"} == {
        k: v for k, v in original.items() if k != "enqueued_at"
    }

    [again] = members(r, "retry")
    first = by_sidekiq[jids["fails"]]
    assert again["jid"] == jids["fails"]
    kept = ("class", "args", "queue", "tags", "bid", "backtrace", "custom", "retry", "created_at")
    for field in kept:
        assert again[field] == first[field], field
    assert again["failed_at"] == first["failed_at"]
    assert again["retried_at"] >= now
    assert again["retry_count"] == 1
    assert again["error_message"] == "verk refuses ✗ fails again"
    assert isinstance(again["error_backtrace"], list)
    # Sidekiq's API still reads it.
    seen = ruby(READ_FAILURES_RB, {"retry_jid": jids["fails"], "dead_jid": None})
    assert seen["retry"]["tags"] == ["billing", "ü"]
    assert seen["retry"]["retry_count"] == 1
    assert seen["retry"]["error_class"] == "ValueError"
    node.stop()


def test_verk_shaped_jobs_run_on_verk(start_verk, r: redis.Redis) -> None:
    """Jobs shaped as Elixir Verk writes them (args as a JSON string, integer times, nulls,
    max_retry_count) run from the queue, the retry set and the schedule."""
    node = start_verk(imports=IMPORTS)
    now = int(time.time())
    args = [1, "two ü 🎉", {"k": [None, True]}, 2**65, 0.25, []]
    r.lpush("queue:default", verk_job("InteropRecord", args, "41714000453580943975"))
    r.lpush("queue:default", verk_job("InteropRecord", [], "41714000453580943976"))
    r.zadd(
        "retry",
        {
            verk_job(
                "InteropRecord",
                args,
                "11111111112222222222",
                error_message="boom 1",
                failed_at=now - 60,
                retry_count=1,
            ): now
        },
    )
    scheduled = verk_job(
        "InteropRecord", args, "33333333334444444444", enqueued_at=None, max_retry_count=None
    )
    r.zadd("schedule", {scheduled: now})
    dies = verk_job("InteropAlwaysFails", ["x"], "55555555556666666666", max_retry_count=0)
    r.lpush("queue:default", dies)
    wait_for(lambda: len(ran(r)) >= 5 and r.zcard("dead") == 1, timeout=20)
    entries = {e["jid"]: e for e in ran(r)}
    assert set(entries) == {
        "41714000453580943975",
        "41714000453580943976",
        "11111111112222222222",
        "33333333334444444444",
        "55555555556666666666",
    }
    for jid in ("41714000453580943975", "11111111112222222222", "33333333334444444444"):
        assert entries[jid]["runner"] == "verk"
        assert canon(entries[jid]["args"]) == canon(args)
    assert entries["41714000453580943976"]["args"] == []
    retried = json.loads(entries["11111111112222222222"]["text"])
    assert retried["failed_at"] == now - 60
    assert retried["retry_count"] == 1
    assert retried["error_message"] == "boom 1"
    [dead] = members(r, "dead")
    assert dead["jid"] == "55555555556666666666"
    assert dead["max_retry_count"] == 0
    assert dead["retry_count"] == 1
    assert dead["error_class"] == "ValueError"
    assert dead["error_message"] == "verk refuses ✗ x"
    assert "finished_at" in dead  # a field verk_actors does not know is kept
    dead_args = json.loads(dead["args"]) if isinstance(dead["args"], str) else dead["args"]
    assert dead_args == ["x"]
    assert r.zcard("retry") == r.zcard("schedule") == r.llen("queue:default") == 0
    node.stop()


def test_mixed_writers_and_consumers_run_every_job_exactly_once(
    start_verk, start_sidekiq, ruby, interop_url: str, r: redis.Redis
) -> None:
    """Ruby, Python and Verk-shaped writers share a queue with a verk_actors node and a Sidekiq
    server, and every job runs exactly once, uncorrupted."""
    per_writer = 150
    node = start_verk(imports=IMPORTS, queues=(QueueSpec("mixed", 4),))
    sidekiq = start_sidekiq(queues=("mixed",), concurrency=4)

    def payload(writer: str, i: int) -> list[Any]:
        nested = {"n": [i, None, True], "e": {}}
        return [f"{writer}-{i}", 'ü✓🎉 "q" \\ \n', 2**64 + i, nested, [], i / 10]

    expected = {
        f"{w}-{i}": payload(w, i) for w in ("ruby", "python", "verk") for i in range(per_writer)
    }

    def ruby_writer() -> None:
        jobs = [payload("ruby", i) for i in range(per_writer)]
        ruby(PUSH_EACH_RB, {"queue": "mixed", "args": jobs})

    def python_writer() -> None:
        with Client(url=interop_url) as client:
            for i in range(per_writer):
                client.enqueue("InteropRecord", *payload("python", i), queue="mixed")

    def verk_writer() -> None:
        conn = redis.Redis.from_url(interop_url)
        for i in range(per_writer):
            text = verk_job("InteropRecord", payload("verk", i), f"{9_000 + i}", queue="mixed")
            conn.lpush("queue:mixed", text)
        conn.close()

    errors: list[BaseException] = []

    def guarded(writer: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                writer()
            except BaseException as exc:
                errors.append(exc)

        return run

    writers = (ruby_writer, python_writer, verk_writer)
    threads = [threading.Thread(target=guarded(w)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    total = 3 * per_writer
    wait_for(lambda: r.llen(RAN) >= total and r.llen("queue:mixed") == 0, timeout=30)
    wait_for(lambda: not r.keys("inprogress:*"), timeout=10)
    entries = ran(r)
    tokens = collections.Counter()
    by_runner = collections.Counter()
    sidekiq_got_verk_string = 0
    for entry in entries:
        args = entry["args"]
        if entry["runner"] == "sidekiq" and len(args) == 1 and isinstance(args[0], str):
            # Sidekiq passes Verk's string-encoded args to perform as one string.
            sidekiq_got_verk_string += 1
            args = json.loads(args[0])
            assert str(args[0]).startswith("verk-"), entry
        token = args[0]
        tokens[token] += 1
        by_runner[entry["runner"]] += 1
        assert canon(args) == canon(expected[token]), entry
    assert len(entries) == total
    assert set(tokens) == set(expected)
    assert set(tokens.values()) == {1}
    assert by_runner["verk"] > 0
    assert by_runner["sidekiq"] > 0
    assert r.llen("queue:mixed") == 0
    assert r.zcard("retry") == r.zcard("dead") == r.zcard("schedule") == 0
    sidekiq.stop()
    node.stop()
    # Both count into Sidekiq's counters (Sidekiq flushes its own when it stops).
    assert r.get("stat:processed") == str(total).encode()
    print(
        f"runs: {dict(by_runner)}; Verk-shaped jobs Sidekiq got as one string: "
        f"{sidekiq_got_verk_string}"
    )


def test_sidekiq_sees_only_started_jobs_as_busy_with_their_start_times(
    start_verk, ruby, interop_url: str, r: redis.Redis
) -> None:
    """Sidekiq::ProcessSet and Sidekiq::Workers see a node with 2 workers and 6 long
    jobs in progress as 2 busy (the jobs that started, each with its own start time),
    with its resident memory and the ``verk_actors`` tag once. It used to show every
    job in progress as busy (Sidekiq's "Utilization 300 %"), all started at the last
    heartbeat, and RSS 0."""
    node = start_verk(imports=IMPORTS, queues=(QueueSpec("default", 2),))
    with Client(url=interop_url) as client:
        # Warm: quick jobs measured, so the long ones below go out in batches of three.
        client.enqueue_many("Record", ([interop_url, "warm", i] for i in range(200)))
        wait_for(lambda: r.llen("warm") == 200)
        pause_queue(r, "default")
        wait_for(lambda: no_standby_waiting(r), timeout=10)
        client.push([client.build("Nap", (interop_url, "naps", n, 6.0)) for n in range(6)])
        resume_queue(r, "default")
    wait_for(lambda: r.hlen("naps") == 2, timeout=10)
    wait_for(lambda: r.llen(f"inprogress:default:{node.node_id}") == 6, timeout=10)

    def seen() -> Any:
        """Sidekiq shows the node as of a heartbeat 2 s or more after the jobs started."""
        view = ruby(READ_BUSY_RB, {"node": node.node_id})
        latest = max(float(t) for t in r.hvals("naps"))
        beats = [p["beat"] for p in view["processes"]]
        return view if beats and beats[0] >= latest + 2.0 else None

    view = wait_for(seen, timeout=12, every=0.3)
    [process] = view["processes"]
    assert len(view["work"]) == 2, f"Sidekiq lists {len(view['work'])} jobs running"
    assert process["concurrency"] == 2
    assert process["busy"] == 2, f"{process['busy']} busy on 2 workers"
    assert process["rss"] > 10_000, "rss (kB): the node's processes hold more than 10 MB"
    assert [process["tag"], *process["labels"]].count("verk_actors") == 1
    started = {int(k): float(v) for k, v in r.hgetall("naps").items()}
    assert len(started) == 2
    for work in view["work"]:
        assert work["process"] == process["identity"]
        token = work["args"][2]
        assert token in started, f"job {token} shown running, never started"
        # run_at is whole seconds: the job's own start, not the heartbeat's time.
        assert started[token] - 1.0 < work["run_at"] <= started[token]
    assert len({work["thread"] for work in view["work"]}) == 2
    node.stop()
