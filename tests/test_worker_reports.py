"""How many reports a worker sends for a batch: failures travel with the rest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.servers import RedisServer
from verk_actors.board import Board
from verk_actors.job import Job
from verk_actors.messages import InitWorker, JobsDone, RunJobs
from verk_actors.settings import Settings
from verk_actors.worker_actor import WorkerActor


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
