"""Job and queue events reach subscribers, filtered, in bounded batches."""

from __future__ import annotations

import time

from tests.conftest import ask_for, wait_for
from verk_actors import Client, QueueSpec
from verk_actors.actors.messages import (
    AddQueue,
    DescribeTree,
    JobFailed,
    JobFinished,
    JobStarted,
    QueueAdded,
    QueueEvent,
    Subscribe,
    Subscribed,
    TreeNode,
    Unsubscribe,
    Unsubscribed,
    VerkEvents,
)
from verk_actors.actors.tree import render_text
from verk_actors.store.admin.pause import pause_queue


def collect(asys, until, timeout: float = 20.0) -> tuple[list, int]:
    """Listen for VerkEvents until ``until(events)`` holds; return events and drops."""
    events: list = []
    dropped = 0
    deadline = time.monotonic() + timeout
    while not until(events):
        left = deadline - time.monotonic()
        assert left > 0, f"events so far: {events}"
        message = asys.listen(min(left, 1.0))
        if isinstance(message, VerkEvents):
            events.extend(message.events)
            dropped += message.dropped
    return events, dropped


def test_subscriber_gets_job_and_queue_events(start_verk, redis_server, r) -> None:
    """Started, finished and failed job events and pause/add queue events arrive."""
    node = start_verk(poll_interval=0.3)
    reply = ask_for(node.asys, node.root, Subscribe(), Subscribed)
    assert reply.kinds == ()
    with Client(url=redis_server.url) as client:
        ok = [client.enqueue("Record", redis_server.url, "ran", i) for i in range(3)]
        bad = client.enqueue("Fail", redis_server.url, "tries", "x", retry=False)

    def complete(events) -> bool:
        finished = {e.jid for e in events if isinstance(e, JobFinished)}
        failed = {e.jid for e in events if isinstance(e, JobFailed)}
        return finished >= set(ok) and bad in failed

    events, dropped = collect(node.asys, complete)
    assert dropped == 0
    started = {e.jid for e in events if isinstance(e, JobStarted)}
    assert started >= {*ok, bad}
    [failure] = [e for e in events if isinstance(e, JobFailed)]
    assert failure.error_class == "ValueError"
    assert failure.error_message == "boom x"
    assert failure.target == "dead"
    assert failure.class_name == "Fail"
    finished = [e for e in events if isinstance(e, JobFinished)]
    assert all(e.duration >= 0 and e.started_at > 0 and e.queue == "default" for e in finished)

    pause_queue(r, "default")
    assert isinstance(node.asys.ask(node.root, AddQueue("low", 1), 10), (QueueAdded, VerkEvents))
    collect(
        node.asys,
        lambda ev: (
            {(e.queue, e.state) for e in ev if isinstance(e, QueueEvent)}
            >= {("default", "paused"), ("low", "added")}
        ),
    )
    assert ask_for(node.asys, node.root, Unsubscribe(), Unsubscribed)
    node.stop()


def test_filters_by_kind_and_queue(start_verk, redis_server) -> None:
    """A subscriber to failures of one queue sees only those."""
    node = start_verk(queues=(QueueSpec("default", 2), QueueSpec("low", 2)))
    ask_for(node.asys, node.root, Subscribe(kinds=("job_failed",), queues=("low",)), Subscribed)
    with Client(url=redis_server.url) as client:
        client.enqueue("Fail", redis_server.url, "t", "a", retry=False)
        client.enqueue("Record", redis_server.url, "t", "b", queue="low")
        wanted = client.enqueue("Fail", redis_server.url, "t", "c", retry=False, queue="low")
    events, _ = collect(node.asys, lambda ev: any(e.jid == wanted for e in ev))
    time.sleep(0.5)
    more, _ = collect(node.asys, lambda ev: True, timeout=1)
    everything = events + more
    assert [(type(e), e.queue) for e in everything] == [(JobFailed, "low")]
    node.stop()


def test_slow_subscriber_gets_a_drop_count_and_jobs_run_on(start_verk, redis_server, r) -> None:
    """With a 5-event buffer, a burst is cut to 5 per batch and the rest counted as dropped."""
    node = start_verk()
    ask_for(node.asys, node.root, Subscribe(kinds=("job_finished",), buffer=5), Subscribed)
    with Client(url=redis_server.url) as client:
        client.enqueue_many("Noop", ([i] for i in range(300)))
    # Listen all along: once in 6 runs with a busy CPU, VerkEvents sent while this test
    # was not listening (waiting on Redis instead) never arrived.
    total = 0
    dropped = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and total + dropped < 300:
        message = node.asys.listen(0.2)
        if isinstance(message, VerkEvents):
            assert len(message.events) <= 5
            total += len(message.events)
            dropped += message.dropped
    assert total + dropped == 300
    assert dropped > 0
    wait_for(lambda: r.get("stat:processed") == b"300")
    node.stop()


def test_a_job_started_after_subscribed_is_always_reported(start_verk, redis_server) -> None:
    """Subscribed comes only once every queue publishes job events: no race with the reply,
    and a worker that went on standby before anyone subscribed reports its jobs too."""
    node = start_verk(queues=(QueueSpec("default", 2), QueueSpec("low", 2)))

    def standbys() -> int:
        text = render_text(ask_for(node.asys, node.root, DescribeTree(), TreeNode))
        return text.count("on standby")

    wait_for(lambda: standbys() == 2, timeout=10)
    with Client(url=redis_server.url) as client:
        for round_ in range(8):
            ask_for(node.asys, node.root, Subscribe(kinds=("job_finished",)), Subscribed)
            jid = client.enqueue("Noop", round_, queue=("default", "low")[round_ % 2])
            collect(node.asys, lambda ev, jid=jid: any(e.jid == jid for e in ev), timeout=10)
            ask_for(node.asys, node.root, Unsubscribe(), Unsubscribed)
    node.stop()
