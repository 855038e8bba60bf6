"""Queues (list, size, latency, peek, delete, clear) and pause/resume, against a real Redis."""

from __future__ import annotations

import json

import pytest
import redis

from tests.ops_data import job_text
from verk_actors import Client
from verk_actors.errors import InvalidJobError, NotFoundError
from verk_actors.store import keys
from verk_actors.store.admin.pause import is_paused, pause_queue, paused_queues, resume_queue
from verk_actors.store.admin.queues import Queue, latency_of, queue_names


def test_queue_names_come_from_the_queues_set(r: redis.Redis) -> None:
    """Queue names are the `queues` set, sorted."""
    client = Client(r)
    client.enqueue("W", queue="mail")
    client.enqueue("W", queue="critical")
    assert queue_names(r) == ["critical", "mail"]


def test_size_and_latency(r: redis.Redis) -> None:
    """Latency is the age of the rightmost (oldest) job's enqueued_at; 0 when empty."""
    queue = Queue(r, "default")
    assert queue.size() == 0
    assert queue.latency(now=1000.0) == 0.0
    r.lpush(keys.queue_key("default"), job_text(enqueued_at=900))
    r.lpush(keys.queue_key("default"), job_text(enqueued_at=990.5))
    assert queue.size() == 2
    assert queue.latency(now=1000.0) == 100.0


def test_latency_of_odd_texts() -> None:
    """A malformed oldest job, or one without enqueued_at, gives latency 0 instead of failing."""
    assert latency_of(b"not json", 10.0) == 0.0
    assert latency_of(job_text(enqueued_at=None).encode(), 10.0) == 0.0
    assert latency_of(job_text(enqueued_at="yesterday").encode(), 10.0) == 0.0
    assert latency_of(None, 10.0) == 0.0


def test_peek_pages_oldest_first(r: redis.Redis) -> None:
    """Peek lists the next job to run first, in pages, malformed texts shown raw."""
    client = Client(r)
    for n in range(7):
        client.enqueue("W", n)
    r.lpush(keys.queue_key("default"), "garbage")
    queue = Queue(r, "default")
    assert [s.job.args for s in queue.peek(0, 3)] == [[0], [1], [2]]
    assert [s.job.args for s in queue.peek(3, 3)] == [[3], [4], [5]]
    last = queue.peek(6, 3)
    assert last[0].job.args == [6]
    assert last[1].job is None
    assert last[1].text == "garbage"
    assert queue.peek(8, 3) == []
    assert queue.peek(0, 0) == []


def test_delete_by_jid(r: redis.Redis) -> None:
    """Delete LREMs the exact stored text of the job with that jid, and nothing else."""
    spaced = '{ "class": "W", "args": [ 1 ], "jid": "j-1", "queue": "default" }'
    r.lpush(keys.queue_key("default"), spaced, job_text(jid="j-10"), job_text(args=["j-1"]))
    queue = Queue(r, "default")
    assert queue.find("j-1") is not None
    assert queue.delete("j-1") == 1
    assert queue.size() == 2
    assert queue.find("j-1") is None
    with pytest.raises(NotFoundError, match="no pending job with jid 'j-1' in queue 'default'"):
        queue.delete("j-1")


def test_find_scans_past_one_chunk(r: redis.Redis) -> None:
    """A job deep in a long queue is found."""
    client = Client(r)
    jid = client.enqueue("W", "first")
    client.enqueue_many("W", [[n] for n in range(2500)])
    found = Queue(r, "default").find(jid)
    assert found is not None
    assert found.job.args == ["first"]


def test_clear_deletes_jobs_and_forgets_the_queue(r: redis.Redis) -> None:
    """Clear DELs queue:<q> and SREMs it from `queues`, as Sidekiq's Queue#clear."""
    client = Client(r)
    client.enqueue_many("W", [[1], [2]], queue="mail")
    client.enqueue("W", queue="other")
    queue = Queue(r, "mail")
    assert queue.exists()
    assert queue.clear() == 2
    assert not r.exists(keys.queue_key("mail"))
    assert queue_names(r) == ["other"]
    assert not queue.exists()


def test_queue_name_is_checked(r: redis.Redis) -> None:
    """A name that cannot be a queue is refused with the reason."""
    with pytest.raises(InvalidJobError, match="not usable"):
        Queue(r, "has space")


def test_pause_and_resume_set_the_paused_set(r: redis.Redis) -> None:
    """Pause SADDs and resume SREMs verk:paused; each says whether anything changed."""
    assert pause_queue(r, "mail") is True
    assert pause_queue(r, "mail") is False
    assert pause_queue(r, "default") is True
    assert r.smembers(keys.PAUSED) == {b"mail", b"default"}
    assert paused_queues(r) == ["default", "mail"]
    assert is_paused(r, "mail")
    assert resume_queue(r, "mail") is True
    assert resume_queue(r, "mail") is False
    assert paused_queues(r) == ["default"]
    assert not is_paused(r, "mail")


def test_stored_job_json_view(r: redis.Redis) -> None:
    """A peeked job's JSON view holds every stored field, unknown ones included."""
    r.lpush(keys.queue_key("default"), job_text(jid="x1", tags=["a"]))
    [stored] = Queue(r, "default").peek()
    view = stored.to_dict()
    assert view["jid"] == "x1"
    assert view["job"]["tags"] == ["a"]
    assert json.loads(stored.raw) == view["job"]
