"""Due members of ``schedule`` and ``retry`` move to their queues; no ``queue`` means default."""

from __future__ import annotations

import json
import time

from tests.conftest import wait_for
from verk_actors import QueueSpec
from verk_actors.jobs.job import dumps, new_jid
from verk_actors.store import keys
from verk_actors.store.scheduling import move_due, plan_move
from verk_actors.store.scripts import Scripts


def _member(**fields: object) -> bytes:
    return dumps({"class": "Record", "args": [], "jid": new_jid(), **fields}).encode()


def test_plan_move_sends_a_job_without_queue_to_default() -> None:
    """A due member with no queue field is planned for queue default, the field written."""
    queue, text = plan_move(_member(), 1_700_000_000.0)
    assert queue == "default"
    data = json.loads(text)
    assert (data["queue"], data["enqueued_at"]) == ("default", 1_700_000_000.0)
    assert plan_move(_member(queue="mail"), 1.0)[0] == "mail"


def test_move_due_enqueues_queueless_members_on_default(r) -> None:
    """move_due moves a schedule member without queue to queue:default, not to dead."""
    member = _member(tags=["kept"])
    r.zadd(keys.SCHEDULE, {member: time.time() - 1})
    moved = move_due(r, Scripts(r), keys.SCHEDULE, time.time())
    assert (moved.moved, moved.malformed) == (1, 0)
    [text] = r.lrange(keys.queue_key("default"), 0, -1)
    assert json.loads(text)["tags"] == ["kept"]
    assert r.zcard(keys.DEAD) == 0 and r.zcard(keys.SCHEDULE) == 0


def test_scheduled_and_retried_jobs_without_queue_run_on_default(
    start_verk, redis_server, r
) -> None:
    """A node runs due schedule and retry members that have no queue field, on default."""
    url = redis_server.url
    node = start_verk(queues=(QueueSpec("default", 2), QueueSpec("low", 1)))
    scheduled = _member(args=[url, "ran", "scheduled"])
    retried = _member(
        args=[url, "ran", "retried"],
        retry_count=1,
        failed_at=time.time() - 60,
        error_class="ValueError",
        error_message="boom",
    )
    r.zadd(keys.SCHEDULE, {scheduled: time.time() - 1})
    r.zadd(keys.RETRY, {retried: time.time() - 1})
    wait_for(lambda: r.llen("ran") == 2)
    assert sorted(r.lrange("ran", 0, -1)) == [b"retried", b"scheduled"]
    assert r.zcard(keys.DEAD) == 0
    wait_for(lambda: r.get("stat:processed:default") == b"2")  # both acked on default
    node.stop()


def test_failed_job_without_queue_comes_back_to_the_queue_it_ran_on(
    start_verk, redis_server, r
) -> None:
    """A queueless job that fails on queue low is retried with queue low, and runs there."""
    url = redis_server.url
    node = start_verk(queues=(QueueSpec("default", 1), QueueSpec("low", 1)))
    jid = new_jid()
    raw = {"class": "Fail", "args": [url, "attempts", "x"], "jid": jid, "retry": 1}
    r.lpush(keys.queue_key("low"), dumps(raw))
    wait_for(lambda: r.zcard(keys.RETRY) == 1)
    [member] = r.zrange(keys.RETRY, 0, -1)
    assert json.loads(member)["queue"] == "low"
    r.zadd(keys.RETRY, {member: 0}, xx=True)  # due now
    wait_for(lambda: r.zcard(keys.DEAD) == 1)
    assert r.llen("attempts") == 2
    assert r.get("stat:failed:low") == b"2" and not r.exists("stat:failed:default")
    node.stop()
