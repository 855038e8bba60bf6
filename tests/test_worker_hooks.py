"""Worker process start and stop hooks (``on_worker_start`` / ``on_worker_stop``)."""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import wait_for
from verk_actors import Client
from verk_actors.jobs import lifecycle
from verk_actors.jobs.lifecycle import WorkerProcess, on_worker_start, on_worker_stop

PROCESS = WorkerProcess("q", "async", 1)


@pytest.fixture
def hooks() -> Iterator[None]:
    """The registered hooks are restored after the test."""
    start, stop = list(lifecycle._start), list(lifecycle._stop)
    yield
    lifecycle._start[:], lifecycle._stop[:] = start, stop


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread, as an async queue's worker has."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_async_hooks_run_on_the_loop_and_only_where_there_is_one(hooks, loop) -> None:
    ran: list[tuple[str, object]] = []

    @on_worker_start
    def plain(process: WorkerProcess) -> None:
        ran.append(("plain", process))

    @on_worker_start
    async def on_loop(process: WorkerProcess) -> None:
        ran.append(("async", asyncio.get_running_loop()))

    on_worker_start(plain)  # registered once only
    lifecycle.run_start_hooks(PROCESS, loop)
    assert ran == [("plain", PROCESS), ("async", loop)]
    ran.clear()
    lifecycle.run_start_hooks(PROCESS, None)  # a process or threads queue: no loop
    assert ran == [("plain", PROCESS)]


def test_a_failing_start_hook_reaches_the_worker_and_a_slow_one_is_cut(hooks, loop) -> None:
    @on_worker_start
    def broken(process: WorkerProcess) -> None:
        raise RuntimeError("no database")

    with pytest.raises(RuntimeError, match="no database"):
        lifecycle.run_start_hooks(PROCESS, loop)
    lifecycle._start.remove(broken)

    cancelled = threading.Event()

    @on_worker_start
    async def slow(process: WorkerProcess) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    lifecycle.HOOK_TIMEOUT, timeout = 0.2, lifecycle.HOOK_TIMEOUT
    try:
        with pytest.raises(TimeoutError, match=r"took over 0\.2 s"):
            lifecycle.run_start_hooks(PROCESS, loop)
    finally:
        lifecycle.HOOK_TIMEOUT = timeout
    assert cancelled.wait(5)


def test_a_failing_stop_hook_is_logged_and_the_others_run(hooks, caplog) -> None:
    ran: list[str] = []

    @on_worker_stop
    def first(process: WorkerProcess) -> None:
        raise RuntimeError("flush failed")

    @on_worker_stop
    def second(process: WorkerProcess) -> None:
        ran.append("second")

    with caplog.at_level(logging.ERROR, logger="verk_actors.jobs.lifecycle"):
        lifecycle.run_stop_hooks(PROCESS, None)
    assert ran == ["second"]
    assert "worker stop hook" in caplog.text and "flush failed" in caplog.text


def test_each_worker_process_runs_its_hooks_once(run_node, redis_server, r) -> None:
    """A real node: every worker process runs the plain start hook once before its first
    job and the stop hook once at a graceful stop; the async hooks run only in the
    async queue's processes, on the loop its jobs then use."""
    node = run_node(
        "hooks",
        "--import",
        "tests.lifecycle_jobs",
        "--queue",
        "crawl=4:async:2",
        "--queue",
        "default=1",
        env={"VERK_TEST_LIFECYCLE_URL": redis_server.url},
    )
    with Client(url=redis_server.url) as client:
        for _ in range(8):
            client.enqueue("UsesSession", redis_server.url, "ran", queue="crawl")
        for _ in range(2):
            client.enqueue("PlainRun", redis_server.url, "ran", queue="default")
    wait_for(lambda: r.llen("ran") == 10, timeout=30)
    runs = [line.decode().split() for line in r.lrange("ran", 0, -1)]
    assert sorted(ok for _, ok in runs) == ["True"] * 8 + ["plain"] * 2
    assert node.terminate() == 0
    events = [line.decode().split() for line in r.lrange("lifecycle", 0, -1)]
    by_pid: dict[str, list[str]] = collections.defaultdict(list)
    queues: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
    for what, queue, mode, pid in events:
        by_pid[pid].append(what)
        queues[queue].add((mode, pid))
    crawl = {pid for mode, pid in queues["crawl"]}
    default = {pid for mode, pid in queues["default"]}
    assert len(crawl) == 2 and len(default) == 1, events
    assert {mode for mode, _ in queues["crawl"]} == {"async"}
    assert {mode for mode, _ in queues["default"]} == {"process"}
    for pid in crawl:
        assert by_pid[pid] == ["start", "astart", "astop", "stop"], events
    for pid in default:
        assert by_pid[pid] == ["start", "stop"], events
    job_pids = {pid for pid, _ in runs}
    assert job_pids <= crawl | default
