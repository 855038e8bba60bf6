"""The blocking take of one job: its pause check, and ``pause_queue`` interrupting it."""

from __future__ import annotations

import select
import time

import redis

from verk_actors.store.admin.pause import pause_queue
from verk_actors.store.job_wait import WAITING, Answer, JobWait, unblock_waits


def _answer(wait: JobWait, fd: int, within: float = 5.0) -> Answer:
    answer = WAITING
    deadline = time.monotonic() + within
    while not answer.done:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "no answer in time"
        answer = wait.finish()
    return answer


def test_a_wait_on_a_paused_queue_says_so_with_the_job_it_moved(redis_server, r) -> None:
    """The pause check goes out with the BLMOVE: a job moved all the same is reported
    as not to be run (it is in the node's in-progress list, for the caller to give back)."""
    r.sadd("verk:paused", "q")
    r.lpush("queue:q", b"job")
    wait = JobWait(redis_server.url, "q", "n", name="verk:n:q:wait", control=r)
    try:
        answer = _answer(wait, wait.start())
    finally:
        wait.close()
    assert answer == Answer(True, b"job", True)
    assert r.lrange("inprogress:q:n", 0, -1) == [b"job"]


def test_a_paused_queue_with_no_job_answers_at_once(redis_server, r) -> None:
    """A wait that finds its queue paused interrupts its own BLMOVE (no 2 s wait)."""
    r.sadd("verk:paused", "q")
    wait = JobWait(redis_server.url, "q", "n", name="verk:n:q:wait", control=r)
    began = time.monotonic()
    try:
        answer = _answer(wait, wait.start())
    finally:
        wait.close()
    assert answer == Answer(True, None, True)
    assert time.monotonic() - began < 1.0


def test_pause_queue_interrupts_the_blocked_waits_of_that_queue_only(redis_server, r) -> None:
    """Blocked BLMOVEs of the paused queue answer at once (nil); another queue's wait and
    clients that are not waits are left alone."""
    control = redis.Redis.from_url(redis_server.url)
    waits = {
        "mine": JobWait(redis_server.url, "q", "n", name="verk:n:q:wait", control=control),
        "worker": JobWait(
            redis_server.url, "q", "n", name="verk:n:q:worker3:wait", control=control
        ),
        "other": JobWait(redis_server.url, "q2", "n", name="verk:n:q2:wait", control=control),
    }
    try:
        fds = {key: wait.start() for key, wait in waits.items()}
        for key, wait in waits.items():
            answer = wait.finish()  # the pause check: not paused, the BLMOVE blocks
            assert answer == WAITING, key
        time.sleep(0.1)
        began = time.monotonic()
        assert pause_queue(r, "q")
        for key in ("mine", "worker"):
            assert _answer(waits[key], fds[key]) == Answer(True, None, False)
        assert time.monotonic() - began < 1.0
        ready, _, _ = select.select([fds["other"]], [], [], 0.3)
        assert not ready, "another queue's wait was interrupted"
        assert unblock_waits(r, "q2") == 1
    finally:
        for wait in waits.values():
            wait.close()
        control.close()
