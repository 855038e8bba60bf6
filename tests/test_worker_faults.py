"""Workers that crash, hang or run too long: the job is recorded, the queue goes on."""

from __future__ import annotations

import json
import multiprocessing
import time

from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Client, QueueSpec
from verk_actors.actors.queue import _board as board


def _retry_jobs(r) -> dict[str, dict]:
    return {json.loads(t)["jid"]: json.loads(t) for t in r.zrange("retry", 0, -1)}


def test_worker_killed_mid_job_fails_that_job_only(start_verk, redis_server, r) -> None:
    """A job whose process dies goes to retry (WorkerDiedError); the other jobs all run."""
    node = start_verk(queues=(QueueSpec("default", 3),))
    with Client(url=redis_server.url) as client:
        crash = client.enqueue("Crash", redis_server.url, "crashes", "c")
        client.enqueue_many("Record", ([redis_server.url, "ok", i] for i in range(50)))
    wait_for(lambda: r.llen("ok") == 50)
    wait_for(lambda: r.zcard("retry") == 1)
    job = _retry_jobs(r)[crash]
    assert job["error_class"] == "WorkerDiedError"
    assert "died" in job["error_message"]
    assert r.lrange("crashes", 0, -1) == [b"c"]
    # The pool is whole again: more jobs still run on all workers.
    with Client(url=redis_server.url) as client:
        client.enqueue_many("Record", ([redis_server.url, "after", i] for i in range(20)))
    wait_for(lambda: r.llen("after") == 20)
    wait_for(lambda: not r.exists(f"inprogress:default:{node.node_id}"))
    node.stop()


def test_job_past_its_time_limit_is_interrupted(start_verk, redis_server, r) -> None:
    """A job that sleeps past Worker.timeout is interrupted and retried as JobTimeoutError."""
    node = start_verk()
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("Slow", redis_server.url, "slow", "s")
    started = time.monotonic()
    wait_for(lambda: r.zcard("retry") == 1, timeout=10)
    assert time.monotonic() - started < 4
    job = _retry_jobs(r)[jid]
    assert job["error_class"] == "JobTimeoutError"
    assert "timed out after 0.3 s" in job["error_message"]
    node.stop()


def test_hung_job_that_ignores_the_limit_gets_its_worker_killed(
    start_verk, redis_server, r
) -> None:
    """A job that swallows the soft timeout has its worker killed; it is retried as timed out."""
    node = start_verk(queues=(QueueSpec("default", 2),))
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("Hang", redis_server.url, "hang", "h")
    wait_for(lambda: r.llen("hang") == 1)
    with Client(url=redis_server.url) as client:
        client.enqueue_many("Record", ([redis_server.url, "ok", i] for i in range(10)))
    wait_for(lambda: r.llen("ok") == 10, timeout=5)
    wait_for(lambda: r.zcard("retry") == 1, timeout=10)
    job = _retry_jobs(r)[jid]
    assert job["error_class"] == "JobTimeoutError"
    assert "timed out" in job["error_message"]
    wait_for(lambda: not r.exists(f"inprogress:default:{node.node_id}"))
    node.stop()


def test_job_that_always_crashes_ends_in_dead(start_verk, redis_server, r) -> None:
    """A job that kills its worker every time is retried, then dead; the queue keeps going."""
    node = start_verk(queues=(QueueSpec("default", 2),))
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("Crash", redis_server.url, "crashes", "c", retry=2)
        for round_ in range(3):
            client.enqueue_many(
                "Record", ([redis_server.url, "ok", f"{round_}-{i}"] for i in range(10))
            )
            if round_ < 2:
                wait_for(lambda: r.zcard("retry") == 1)
                [text] = r.zrange("retry", 0, -1)
                r.zadd("retry", {text: time.time() - 1})
                wait_for(lambda text=text: r.zscore("retry", text) is None)
    wait_for(lambda: r.zcard("dead") == 1, timeout=20)
    dead = json.loads(r.zrange("dead", 0, -1)[0])
    assert dead["jid"] == jid
    assert dead["retry_count"] == 3
    assert dead["error_class"] == "WorkerDiedError"
    assert r.llen("crashes") == 3
    wait_for(lambda: r.llen("ok") == 30)
    node.stop()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_segfaulting_job_goes_to_retry_and_its_worker_is_replaced(redis_server, r) -> None:
    """A job that crashes in C (SIGSEGV) kills its worker: retry as WorkerDiedError, new worker."""
    url = redis_server.url
    node = NodeProcess("--redis-url", url, "--queue", "default=2").start()
    try:
        wait_for(lambda: len(node.actor_pids("WorkerActor")) == 2)
        with Client(url=url) as client:
            jid = client.enqueue("Segfault", url, "segv")
            client.enqueue_many("Record", ([url, "ok", i] for i in range(20)))
        wait_for(lambda: r.zcard("retry") == 1, timeout=20)
        job = _retry_jobs(r)[jid]
        assert job["error_class"] == "WorkerDiedError"
        wait_for(lambda: r.llen("ok") == 20)
        crashed = int(r.lrange("segv", 0, -1)[0])
        wait_for(lambda: not _alive(crashed))
        wait_for(lambda: len(node.actor_pids("WorkerActor")) == 2)
        assert crashed not in node.actor_pids("WorkerActor")
        # faulthandler wrote the job's Python stack to the node's log.
        node.wait_for_line("Fatal Python error: Segmentation fault")
        assert "jobs.py" in node.wait_for_line("in perform")
        with Client(url=url) as client:
            client.enqueue_many("Record", ([url, "after", i] for i in range(20)))
        wait_for(lambda: r.llen("after") == 20)
    finally:
        code = node.terminate()
    assert code == 0


def test_a_starting_node_removes_boards_left_by_dead_managers(start_verk, redis_server) -> None:
    """A manager killed between creating a worker's board and unlinking it leaves the
    file in shared memory; the next manager to start removes it."""
    child = multiprocessing.get_context("fork").Process(target=lambda: None)
    child.start()
    child.join()
    left = board.board_dir() / f"{board.PREFIX}{child.pid}-leftover"
    left.write_bytes(b"\0" * 64)
    try:
        start_verk(queues=(QueueSpec("default", 1),))
        wait_for(lambda: not left.exists(), timeout=20)
    finally:
        left.unlink(missing_ok=True)
