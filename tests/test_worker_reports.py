"""How many reports a worker sends for a batch: failures travel with the rest."""

from __future__ import annotations

import select
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from thespian.actors import WatchMessage

from tests.servers import RedisServer
from verk_actors.actors.messages import (
    EndStandby,
    FlushStandbyReport,
    InitWorker,
    JobsDone,
    RunJobs,
    Standby,
)
from verk_actors.actors.queue._board import Board
from verk_actors.actors.queue.worker_actor import WorkerActor
from verk_actors.config.settings import Settings
from verk_actors.jobs.job import Job


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[WorkerActor, list[Any]]]:
    """A WorkerActor run in this process; what it sends is collected, not sent."""
    board = Board.create(tmp_path)
    actor = WorkerActor()
    sent: list[Any] = []
    actor.send = lambda to, message: sent.append(message)  # type: ignore[method-assign]
    settings = Settings().with_changes(imports=("tests.jobs",))
    actor.receiveMsg_InitWorker(InitWorker(settings, "default", 0, str(board.path)), None)
    sent.clear()
    yield actor, sent
    actor.stopping()
    board.unlink()


def batch(url: str, classes: list[str]) -> RunJobs:
    """Jobs of ``tests.jobs`` that record their attempt in the list ``attempts``."""
    jobs = tuple(
        (ref, Job(name, [url, "attempts", ref], jid=f"j{ref}").to_json().encode())
        for ref, name in enumerate(classes)
    )
    return RunJobs(1, jobs)


def test_a_batch_of_failures_is_one_report(
    worker: tuple[WorkerActor, list[Any]], redis_server: RedisServer, r: redis.Redis
) -> None:
    """Fifty jobs that all fail: one JobsDone with fifty failures, not fifty messages
    (a report per failure made a failing backlog drain at 500 jobs/s, not 8,000)."""
    actor, sent = worker
    actor.receiveMsg_RunJobs(batch(redis_server.url, ["Fail"] * 50), None)
    assert r.llen("attempts") == 50
    assert [type(m) for m in sent] == [JobsDone]
    done = sent[0]
    assert done.finished
    assert sorted(o.ref for o in done.failures) == list(range(50))
    assert all(o.error_class == "ValueError" for o in done.failures)


def test_failures_and_successes_report_together(
    worker: tuple[WorkerActor, list[Any]], redis_server: RedisServer
) -> None:
    """A mixed batch: one report, every job in it once, as succeeded or failed."""
    actor, sent = worker
    actor.receiveMsg_RunJobs(batch(redis_server.url, ["Fail", "Record"] * 10), None)
    assert len(sent) == 1
    done = sent[0]
    assert sorted(done.succeeded) == list(range(1, 20, 2))
    assert sorted(o.ref for o in done.failures) == list(range(0, 20, 2))


@pytest.fixture
def standby(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[WorkerActor, list[Any], list[Any], Board]]:
    """A WorkerActor in this process put on standby on ``redis_server``'s queue
    ``default``; what it sends and the timers it sets are collected."""
    board = Board.create(tmp_path)
    actor = WorkerActor()
    sent: list[Any] = []
    timers: list[Any] = []
    actor.send = lambda to, message: sent.append(message)  # type: ignore[method-assign]
    actor.after = lambda seconds, payload: timers.append(payload)  # type: ignore[method-assign]
    settings = Settings().with_changes(imports=("tests.jobs",), redis_url=redis_server.url)
    init = InitWorker(settings, "default", 0, str(board.path), "node1")
    actor.receiveMsg_InitWorker(init, None)
    sent.clear()
    actor.receiveMsg_Standby(Standby(7, -1), None)
    yield actor, sent, timers, board
    actor.stopping()
    board.unlink()


def take_one(actor: WorkerActor, r: redis.Redis, url: str, value: str) -> None:
    """Enqueue a Record job and let the standby worker run it (its BLMOVE answers)."""
    r.lpush("queue:default", Job("Record", [url, "ran", value], jid=value).to_json())
    fd = actor.standby.fd
    assert fd is not None
    assert select.select([fd], [], [], 5)[0], "the BLMOVE did not answer"
    actor.receiveMsg_WatchMessage(WatchMessage([fd]), None)


def test_a_standby_reports_its_jobs_a_few_at_a_time(
    standby: tuple[WorkerActor, list[Any], list[Any], Board],
    redis_server: RedisServer,
    r: redis.Redis,
) -> None:
    """The first job after a quiet spell is reported at once; the next ones wait for
    the timer, their texts on the board until a later report is out."""
    actor, sent, timers, board = standby
    take_one(actor, r, redis_server.url, "a")
    assert [[ref for ref, _ in m.taken] for m in sent] == [[-1]]
    for value in "bc":
        take_one(actor, r, redis_server.url, value)
    assert r.lrange("ran", 0, -1) == [b"a", b"b", b"c"]
    assert len(sent) == 1  # b and c wait
    assert [index for index, _ in board.held_texts()] == [0, 1, 2]
    assert timers == [FlushStandbyReport(7)]
    actor.receiveMsg_FlushStandbyReport(timers.pop(), None)
    [_, second] = sent
    assert [ref for ref, _ in second.taken] == [-2, -3]
    assert sorted(second.succeeded) == [-3, -2]
    assert not second.finished
    assert [index for index, _ in board.held_texts()] == [1, 2]  # a's report is long out


def test_a_standby_ends_with_what_it_has_not_reported(
    standby: tuple[WorkerActor, list[Any], list[Any], Board],
    redis_server: RedisServer,
    r: redis.Redis,
) -> None:
    """Ending a standby reports the jobs gathered since the last report in the last
    JobsDone, so none is left unacked."""
    actor, sent, _timers, _board = standby
    for value in "abc":
        take_one(actor, r, redis_server.url, value)
    assert len(sent) == 1
    actor.receiveMsg_EndStandby(EndStandby(7), None)
    fd = actor.standby.fd
    if fd is not None:  # the interrupted BLMOVE answers nil
        assert select.select([fd], [], [], 5)[0]
        actor.receiveMsg_WatchMessage(WatchMessage([fd]), None)
    last = sent[-1]
    assert last.finished
    assert [ref for ref, _ in last.taken] == [-2, -3]
    assert sorted(last.succeeded) == [-3, -2]
