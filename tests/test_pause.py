"""Pausing a queue in Redis stops every node taking its jobs; resuming lets them go on."""

from __future__ import annotations

import time

from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Client
from verk_actors.bench.measure import CommandCounter
from verk_actors.store.admin.pause import pause_queue, resume_queue


def test_pause_is_obeyed_within_a_poll_interval_and_resume_restarts(
    start_verk, redis_server, r
) -> None:
    """An idle node stops taking a paused queue's jobs, and takes them after resume."""
    node = start_verk(poll_interval=0.3)
    with Client(url=redis_server.url) as client:
        client.enqueue("Record", redis_server.url, "ran", "before")
        wait_for(lambda: r.llen("ran") == 1)
        pause_queue(r, "default")
        time.sleep(0.8)  # more than a poll interval: the waiting node has noticed
        client.enqueue_many("Record", ([redis_server.url, "ran", i] for i in range(5)))
        time.sleep(1.0)
        assert r.llen("ran") == 1, "a paused queue's jobs must not run"
        assert r.llen("queue:default") == 5
        resume_queue(r, "default")
        wait_for(lambda: r.llen("ran") == 6, timeout=10)
    node.stop()


def test_node_started_on_a_paused_queue_remembers_it(start_verk, redis_server, r) -> None:
    """A node that starts while its queue is paused in Redis runs nothing until resume."""
    pause_queue(r, "default")
    with Client(url=redis_server.url) as client:
        client.enqueue_many("Record", ([redis_server.url, "ran", i] for i in range(3)))
    node = start_verk(poll_interval=0.3)
    time.sleep(1.5)
    assert r.llen("ran") == 0
    resume_queue(r, "default")
    wait_for(lambda: r.llen("ran") == 3, timeout=10)
    node.stop()


def _polls_in(r, seconds: float) -> int:
    """EVALSHA calls in the next ``seconds`` (each poll of a paused queue is one take
    script)."""
    counter = CommandCounter(r)
    counter.start()
    time.sleep(seconds)
    return counter.stop().get("evalsha", 0)


def test_a_paused_queue_is_polled_at_an_even_pace(start_verk, redis_server, r) -> None:
    """However long a queue stays paused with jobs waiting, its node looks about once
    per poll interval: asking again for jobs (every 2 s without an answer) must not
    start one more polling loop each time."""
    pause_queue(r, "default")
    with Client(url=redis_server.url) as client:
        client.enqueue_many("Record", ([redis_server.url, "ran", i] for i in range(3)))
    node = start_verk(poll_interval=0.2)
    time.sleep(2.0)
    early = _polls_in(r, 3.0)
    time.sleep(4.0)
    late = _polls_in(r, 3.0)
    print(f"polls per 3 s: {early} then {late}")
    assert r.llen("ran") == 0
    assert late <= early * 1.5 + 3, f"polls per 3 s went from {early} to {late}"
    resume_queue(r, "default")
    wait_for(lambda: r.llen("ran") == 3, timeout=10)
    node.stop()


def test_a_job_enqueued_right_after_pause_returns_does_not_run(start_verk, redis_server, r) -> None:
    """Pause takes effect at once on every node, standby included: a job enqueued the
    moment ``pause_queue`` returns stays queued (the poll interval is long, so only the
    immediate path can keep it), and runs after resume."""
    node = start_verk(poll_interval=30.0)
    other = NodeProcess("--redis-url", redis_server.url, "--poll-interval", "30").start()
    try:
        _pause_rounds(redis_server, r)
    finally:
        node.stop()
        assert other.terminate() == 0


def _pause_rounds(redis_server, r) -> None:
    with Client(url=redis_server.url) as client:
        for round_ in range(5):
            client.enqueue("Record", redis_server.url, "ran", f"warm {round_}")
            wait_for(lambda n=round_: r.llen("ran") == 2 * n + 1)
            time.sleep(0.2)  # the nodes are idle again, waiting on the queue
            pause_queue(r, "default")
            client.enqueue("Record", redis_server.url, "ran", f"paused {round_}")
            time.sleep(1.0)
            assert r.lrange("ran", 0, -1)[-1] == f"warm {round_}".encode(), "ran while paused"
            assert r.llen("queue:default") == 1, "the paused job must wait in its queue"
            resume_queue(r, "default")
            wait_for(lambda n=round_: r.llen("ran") == 2 * n + 2, timeout=10)
