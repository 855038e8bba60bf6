"""Queues in threads and async mode: many jobs per worker process, with process slots'
reliability (a killed process's jobs each go to retry once, timeouts, recycling)."""

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from verk_actors import Client, QueueSpec
from verk_actors.actors.messages import (
    AddQueue,
    DescribeTree,
    JobsDone,
    QueueAdded,
    RequestFailed,
    TreeNode,
)
from verk_actors.actors.queue._lanes import Outbox
from verk_actors.config.file import load_config
from verk_actors.errors import ConfigurationError
from verk_actors.store import keys
from verk_actors.store.admin.pause import pause_queue, resume_queue

LANE_IMPORTS = ("tests.jobs", "tests.lane_jobs")
ASYNC_IMPORTS = (*LANE_IMPORTS, "tests.async_lane_jobs")


def _max_in_flight(spans: list[bytes]) -> int:
    """The most jobs running at one moment, from the spans the jobs recorded."""
    edges = []
    for text in spans:
        _, _, began, ended = text.split()
        edges += [(float(began), 1), (float(ended), -1)]
    running = most = 0
    for _, step in sorted(edges):
        running += step
        most = max(most, running)
    return most


def _retried(r) -> dict[str, dict]:
    jobs = [json.loads(text) for text in r.zrange("retry", 0, -1)]
    return {job["jid"]: job for job in jobs}


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def test_the_outbox_wakes_the_actor_once_per_flush() -> None:
    """The first report after a take makes the pipe readable; once the actor has
    emptied it, later reports do not (one wake per flush, not one per report); the
    take returns them all, oldest first, and the next report signals again."""
    outbox = Outbox()
    try:
        done = [JobsDone(n, (), 0.0, (), finished=True) for n in range(4)]
        assert not _readable(outbox.fd)
        outbox.put(0, done[0])
        outbox.put(1, done[1])
        assert _readable(outbox.fd)
        outbox.quiet()
        outbox.put(2, done[2])
        assert not _readable(outbox.fd)
        assert outbox.take() == [(0, done[0]), (1, done[1]), (2, done[2])]
        assert not _readable(outbox.fd)
        outbox.put(3, done[3])
        assert _readable(outbox.fd)
        assert outbox.take() == [(3, done[3])]
    finally:
        outbox.close()


def test_queue_spec_reads_modes_and_refuses_what_does_not_fit() -> None:
    """NAME=CONCURRENCY:MODE[:PER_PROCESS] reads, with a per-mode default; bad ones say why."""
    assert QueueSpec.parse("crawl=500:async:100") == QueueSpec("crawl", 500, "async", 100)
    assert QueueSpec.parse("mail=20:threads").per_process == 10
    assert QueueSpec.parse("few=3:async").per_process == 3
    assert QueueSpec.parse("default=5") == QueueSpec("default", 5, "process", 1)
    refusals = {
        "c=50:async:100": "more than the queue's concurrency",
        "c=5:process:2": "process mode runs one job per process",
        "c=5:fibers": "mode 'fibers' is not one of process, threads, async",
        "c=5:async:x": "jobs per process 'x' is not a whole number",
        "c=5000:async:2000": "the most one process runs",
    }
    for text, reason in refusals.items():
        with pytest.raises(ConfigurationError, match=reason):
            QueueSpec.parse(text)


def test_toml_table_takes_a_mode(tmp_path: Path) -> None:
    """A [queues] table value may be a spec string with a mode, beside plain numbers."""
    path = tmp_path / "verk.toml"
    path.write_text('[queues]\ndefault = 5\ncrawl = "300:async:150"\n')
    queues = load_config(path)["queues"]
    assert queues == (QueueSpec("default", 5), QueueSpec("crawl", 300, "async", 150))


@pytest.mark.parametrize("mode", ["async", "threads"])
def test_many_waiting_jobs_run_at_once_on_two_processes(start_verk, redis_server, r, mode) -> None:
    """200 jobs sleeping 0.2 s on a queue of 2 processes x 100 all run at once: their own
    records show (nearly) all 200 in flight together, and the lot ends within seconds."""
    worker, imports = (
        ("AsyncNap", ASYNC_IMPORTS) if mode == "async" else ("ThreadNap", LANE_IMPORTS)
    )
    node = start_verk(queues=(QueueSpec("crawl", 200, mode, 100),), imports=imports)
    with Client(url=redis_server.url) as client:
        began = time.monotonic()
        client.enqueue_many(
            worker, ([redis_server.url, "spans", 0.2, i] for i in range(200)), queue="crawl"
        )
    wait_for(lambda: r.llen("spans") == 200, timeout=30)
    took = time.monotonic() - began
    spans = r.lrange("spans", 0, -1)
    assert _max_in_flight(spans) >= 150, _max_in_flight(spans)
    assert len({text.split()[1] for text in spans}) == 2  # two worker processes
    assert took < 10, took  # about 0.3-1 s on an idle box; 200 x 0.2 s one at a time is 40 s
    wait_for(lambda: r.get("stat:processed") == b"200")
    assert r.zcard("retry") == 0
    node.stop()


@pytest.mark.parametrize("mode", ["async", "threads"])
def test_killed_worker_process_sends_each_of_its_jobs_to_retry_once(
    start_verk, redis_server, r, mode
) -> None:
    """SIGKILL of a process running 10 jobs: those 10 go to retry (WorkerDiedError), each
    once; the other process's 10 finish; no job is lost or run twice."""
    worker, imports = (
        ("AsyncHold", ASYNC_IMPORTS) if mode == "async" else ("ThreadHold", LANE_IMPORTS)
    )
    node = start_verk(queues=(QueueSpec("crawl", 20, mode, 10),), imports=imports)
    with Client(url=redis_server.url) as client:
        jids = client.enqueue_many(
            worker, ([redis_server.url, "held", "release", i] for i in range(20)), queue="crawl"
        )
    wait_for(lambda: r.llen("held") == 20, timeout=30)
    by_pid: dict[int, set[str]] = {}
    for text in r.lrange("held", 0, -1):
        token, pid = text.decode().split()
        by_pid.setdefault(int(pid), set()).add(token)
    assert sorted(len(tokens) for tokens in by_pid.values()) == [10, 10]
    # The Busy page's source shows every job in flight, one row each.
    wait_for(lambda: r.hlen(keys.node_running_key(node.node_id)) == 20)
    victim = min(by_pid)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: r.zcard("retry") == 10, timeout=30)
    r.set("release", 1)
    wait_for(lambda: r.llen("held:done") == 10, timeout=30)
    retried = _retried(r)
    assert {str(job["args"][3]) for job in retried.values()} == by_pid[victim]
    assert {job["error_class"] for job in retried.values()} == {"WorkerDiedError"}
    assert set(retried) <= set(jids)
    done = {t.decode() for t in r.lrange("held:done", 0, -1)}
    assert done == set().union(*by_pid.values()) - by_pid[victim]
    wait_for(lambda: not r.exists(f"inprogress:crawl:{node.node_id}"))
    time.sleep(0.5)  # nothing more comes: no job of the killed process is run or retried again
    assert r.zcard("retry") == 10
    assert r.llen("held") == 20
    assert r.llen("queue:crawl") == 0
    node.stop()


def _find(node: TreeNode, kind: str) -> list[TreeNode]:
    found = [node] if node.kind == kind else []
    for child in node.children:
        found += _find(child, kind)
    return found


def test_tree_shows_worker_processes_with_their_lanes(start_verk) -> None:
    """The live tree shows a threads queue's 25 slots as 3 LaneWorkerActor processes."""
    node = start_verk(queues=(QueueSpec("mail", 25, "threads"),), imports=LANE_IMPORTS)

    def processes() -> list[TreeNode]:
        tree = node.asys.ask(node.root, DescribeTree(1, "root"), 10)
        found = _find(tree, "LaneWorkerActor") if isinstance(tree, TreeNode) else []
        return found if found and all(p.pid for p in found) else []  # every one started

    processes = wait_for(processes)
    assert [p.detail for p in processes] == [
        "lanes 0..9: 0 jobs running",
        "lanes 10..19: 0 jobs running",
        "lanes 20..24: 0 jobs running",
    ]
    node.stop()


def test_async_timeout_cancels_that_job_only(start_verk, redis_server, r) -> None:
    """A coroutine past its time limit fails as JobTimeoutError; the jobs beside it in the
    same process run on and succeed, and the process is not replaced."""
    node = start_verk(queues=(QueueSpec("crawl", 5, "async", 5),), imports=ASYNC_IMPORTS)
    with Client(url=redis_server.url) as client:
        slow = client.enqueue("AsyncForever", redis_server.url, "forever", "f", queue="crawl")
        client.enqueue_many(
            "AsyncNap", ([redis_server.url, "spans", 1.5, i] for i in range(4)), queue="crawl"
        )
    wait_for(lambda: r.zcard("retry") == 1, timeout=15)
    job = _retried(r)[slow]
    assert job["error_class"] == "JobTimeoutError"
    assert "timed out after 0.5 s" in job["error_message"]
    wait_for(lambda: r.llen("spans") == 4, timeout=15)
    pids = {text.split()[1] for text in r.lrange("spans", 0, -1)}
    (forever_pid,) = {text.split()[1] for text in r.lrange("forever", 0, -1)}
    assert pids == {forever_pid}  # one process ran them all, and lived on
    wait_for(lambda: r.get("stat:processed") == b"5")  # Sidekiq counts failures as processed
    assert r.get("stat:failed") == b"1"
    node.stop()


def test_thread_past_its_timeout_stops_and_its_process_lives_on(
    start_verk, redis_server, r
) -> None:
    """A thread in Python code past its limit gets JobTimeoutError raised inside it: the
    job goes to retry as timed out, and its process runs the next jobs."""
    node = start_verk(queues=(QueueSpec("mail", 2, "threads", 2),), imports=LANE_IMPORTS)
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("ThreadSpin", redis_server.url, "spin", "s", queue="mail")
        wait_for(lambda: r.zcard("retry") == 1, timeout=15)
        job = _retried(r)[jid]
        assert job["error_class"] == "JobTimeoutError"
        assert "ran past its time limit" in job["error_message"]
        args = ([redis_server.url, "after", 0.01, i] for i in range(4))
        client.enqueue_many("ThreadNap", args, queue="mail")
    wait_for(lambda: r.llen("after") == 4, timeout=15)
    (spin_pid,) = {text.split()[1] for text in r.lrange("spin", 0, -1)}
    assert {text.split()[1] for text in r.lrange("after", 0, -1)} == {spin_pid}
    node.stop()


def test_add_queue_takes_a_mode_and_refuses_a_bad_one(start_verk, redis_server, r) -> None:
    """AddQueue with mode and per_process starts a lane queue that runs jobs; one with
    more per process than its concurrency is refused with RequestFailed saying why."""
    node = start_verk(imports=LANE_IMPORTS)
    refused = node.asys.ask(node.root, AddQueue("crawl", 50, "threads", 100), 10)
    assert isinstance(refused, RequestFailed)
    assert "more than the queue's concurrency" in refused.message
    added = wait_for(lambda: node.asys.ask(node.root, AddQueue("crawl", 20, "threads", 10), 10))
    assert isinstance(added, QueueAdded)
    with Client(url=redis_server.url) as client:
        args = ([redis_server.url, "spans", 0.3, i] for i in range(20))
        client.enqueue_many("ThreadNap", args, queue="crawl")
    wait_for(lambda: r.llen("spans") == 20, timeout=20)
    spans = r.lrange("spans", 0, -1)
    assert len({text.split()[1] for text in spans}) == 2
    assert _max_in_flight(spans) >= 15
    node.stop()


def test_thread_that_ignores_its_timeout_recycles_its_process(start_verk, redis_server, r) -> None:
    """A thread stuck in C past its deadline: its process takes no new job, the jobs beside
    it finish, then the process is killed; the stuck job goes to retry as timed out, the
    others were not touched, and a new process runs the queue's next jobs."""
    node = start_verk(queues=(QueueSpec("mail", 3, "threads", 3),), imports=LANE_IMPORTS)
    with Client(url=redis_server.url) as client:
        stuck = client.enqueue("ThreadStuck", redis_server.url, "stuck", "s", queue="mail")
        client.enqueue_many(
            "ThreadNap", ([redis_server.url, "spans", 3.0, i] for i in range(2)), queue="mail"
        )
    wait_for(lambda: r.llen("stuck") == 1)
    (old_pid,) = {int(text.split()[1]) for text in r.lrange("stuck", 0, -1)}
    wait_for(lambda: r.zcard("retry") == 1, timeout=20)
    job = _retried(r)[stuck]
    assert job["error_class"] == "JobTimeoutError"
    assert r.llen("spans") == 2  # the jobs beside it ended first, and were not retried
    with Client(url=redis_server.url) as client:
        client.enqueue_many(
            "ThreadNap", ([redis_server.url, "after", 0.01, i] for i in range(3)), queue="mail"
        )
    wait_for(lambda: r.llen("after") == 3, timeout=20)
    pids = {int(text.split()[1]) for text in r.lrange("after", 0, -1)}
    assert old_pid not in pids
    node.stop()


def test_paused_async_queue_runs_nothing_until_resumed(start_verk, redis_server, r) -> None:
    """An idle async queue (the QueueManager waits on it, no standby) obeys a pause
    within a poll interval and runs the jobs that came meanwhile after resume."""
    node = start_verk(
        queues=(QueueSpec("crawl", 10, "async", 5),), imports=ASYNC_IMPORTS, poll_interval=0.3
    )
    with Client(url=redis_server.url) as client:
        client.enqueue("AsyncNap", redis_server.url, "spans", 0.01, "before", queue="crawl")
        wait_for(lambda: r.llen("spans") == 1)
        pause_queue(r, "crawl")
        time.sleep(0.8)  # more than a poll interval: the waiting QueueManager has noticed
        args = ([redis_server.url, "spans", 0.01, i] for i in range(5))
        client.enqueue_many("AsyncNap", args, queue="crawl")
        time.sleep(1.0)
        assert r.llen("spans") == 1, "a paused queue's jobs must not run"
        assert r.llen("queue:crawl") == 5
        resume_queue(r, "crawl")
        wait_for(lambda: r.llen("spans") == 6, timeout=10)
    node.stop()


def test_stop_waits_for_every_job_in_flight(start_verk, redis_server, r) -> None:
    """A node stopping with 40 coroutines in flight on 2 processes lets each finish and
    records it: none is cut off, requeued or retried."""
    node = start_verk(queues=(QueueSpec("crawl", 40, "async", 20),), imports=ASYNC_IMPORTS)
    with Client(url=redis_server.url) as client:
        client.enqueue_many(
            "AsyncHold",
            ([redis_server.url, "held", "release", i] for i in range(40)),
            queue="crawl",
        )
    wait_for(lambda: r.llen("held") == 40, timeout=30)
    releaser = threading.Timer(1.0, r.set, ("release", 1))  # while the node stops
    releaser.start()
    node.stop()
    releaser.join()
    assert r.llen("held:done") == 40
    assert r.get("stat:processed") == b"40"
    assert r.llen("queue:crawl") == 0
    assert r.zcard("retry") == 0


@pytest.mark.parametrize("mode", ["async", "threads"])
def test_limiters_hold_on_lanes(start_verk, redis_server, r, mode) -> None:
    """Jobs with a Concurrent limiter on a lane queue (10 lanes in one process): never
    more than the limit run at once, all run, none uses a retry."""
    from tests.limit_jobs import DONE, MOST

    worker, limit = ("AsyncLimited", 2) if mode == "async" else ("ConcurrentJob", 3)
    imports = (*(ASYNC_IMPORTS if mode == "async" else LANE_IMPORTS), "tests.limit_jobs")
    start_verk(queues=(QueueSpec("lanes", 10, mode, 10),), imports=imports)
    with Client(url=redis_server.url) as client:
        client.enqueue_many(worker, ([redis_server.url, 0.2] for _ in range(8)), queue="lanes")
    wait_for(lambda: r.llen(DONE) == 8, timeout=60)
    assert 1 <= int(r.get(MOST) or 0) <= limit
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0


def test_server_middleware_wraps_jobs_on_thread_lanes(start_verk, redis_server, r) -> None:
    """A threads queue runs each job inside the server middleware, in order."""
    mw = "tests.mw_jobs"
    start_verk(
        queues=(QueueSpec("lanes", 4, "threads", 4),),
        imports=(*LANE_IMPORTS, mw),
        server_middleware=(f"{mw}:OuterServer", f"{mw}:inner_server"),
    )
    with Client(url=redis_server.url) as client:
        client.enqueue("Record", redis_server.url, "mw_order", "perform", queue="lanes")
    wait_for(lambda: r.llen("mw_order") == 6, timeout=30)
    order = [item.decode() for item in r.lrange("mw_order", 0, -1)]
    order.pop(1)  # what the inner middleware saw of the job
    assert order == ["outer-before", "inner-before", "perform", "inner-after", "outer-after"]


@pytest.mark.parametrize("mode", ["async", "threads"])
def test_lane_queues_record_the_metrics_history_with_run_times(
    start_verk, redis_server, r, mode
) -> None:
    """Jobs on a lane queue land in the per-class metrics history with their run time
    (a lane reports each job's time, as a process slot does)."""
    from verk_actors.store.admin.job_metrics import class_totals

    worker, imports = (
        ("AsyncNap", ASYNC_IMPORTS) if mode == "async" else ("ThreadNap", LANE_IMPORTS)
    )
    node = start_verk(queues=(QueueSpec("lanes", 4, mode, 4),), imports=imports)
    with Client(url=redis_server.url) as client:
        client.enqueue_many(
            worker, ([redis_server.url, "spans", 0.05, i] for i in range(8)), queue="lanes"
        )
    wait_for(lambda: r.llen("spans") == 8, timeout=30)
    node.stop()  # writes what the WorkersManager has summed

    def recorded() -> object:
        """the history holds the class's 8 executions"""
        found = {c.name: c for c in class_totals(r, "1h")}
        figures = found.get(
            f"tests.{'async_lane_jobs' if mode == 'async' else 'lane_jobs'}.{worker}"
        ) or found.get(worker)
        return figures if figures is not None and figures.executions == 8 else None

    figures = wait_for(recorded, timeout=15)
    assert figures.us >= 8 * 40_000  # each slept 50 ms
