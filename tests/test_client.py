"""verk_actors.store.client: enqueueing Sidekiq-format jobs into a private Redis."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis

import verk_actors
from tests.servers import RedisServer
from verk_actors import (
    Client,
    ConfigurationError,
    InvalidJobError,
    RedisUnavailableError,
    Worker,
)
from verk_actors.store import keys


class Mailer(Worker):
    """A worker with its own queue and retry limit."""

    queue = "mail"
    retry = 3

    def perform(self, *args: Any) -> None:
        return None


class RubyNamed(Worker):
    """A worker that a Ruby client knows under a namespaced name."""

    sidekiq_class = "Billing::ChargeWorker"

    def perform(self, *args: Any) -> None:
        return None


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[Client]:
    """A Client of the test's private Redis."""
    with Client(url=redis_server.url) as c:
        yield c


def queued(r: redis.Redis, queue: str = "default") -> list[dict[str, Any]]:
    """The decoded jobs of ``queue``, oldest first."""
    return [json.loads(t) for t in reversed(r.lrange(keys.queue_key(queue), 0, -1))]


def test_enqueue_writes_sidekiq_json(client: Client, r: redis.Redis) -> None:
    """enqueue LPUSHes Sidekiq JSON to queue:<q> and adds the queue to the queues set."""
    before = time.time()
    jid = client.enqueue("HardWorker", 1, "two", [3], {"four": None})
    (job,) = queued(r)
    assert re.fullmatch(r"[0-9a-f]{24}", jid)
    assert job["jid"] == jid
    assert job["class"] == "HardWorker"
    assert job["args"] == [1, "two", [3], {"four": None}]
    assert job["queue"] == "default"
    assert "retry" not in job, "by name: the worker's own option decides where it runs"
    assert isinstance(job["created_at"], float)
    assert isinstance(job["enqueued_at"], float)
    assert before <= job["created_at"] <= job["enqueued_at"] <= time.time()
    assert r.smembers(keys.QUEUES) == {b"default"}
    assert not r.exists(keys.SCHEDULE)


def test_enqueue_pushes_on_the_left(client: Client, r: redis.Redis) -> None:
    """The newest job is at the head of the list, so workers taking from the right get FIFO."""
    first = client.enqueue("A", 1)
    second = client.enqueue("A", 2)
    head, tail = (json.loads(t)["jid"] for t in r.lrange(keys.queue_key("default"), 0, -1))
    assert (head, tail) == (second, first)


def test_worker_class_attributes_are_used(client: Client, r: redis.Redis) -> None:
    """A Worker subclass's queue and retry are the job's defaults; options override them."""
    client.enqueue(Mailer, "to@example.com")
    (job,) = queued(r, "mail")
    assert (job["class"], job["queue"], job["retry"]) == ("Mailer", "mail", 3)
    client.enqueue(Mailer, "x", queue="urgent", retry=False)
    (job,) = queued(r, "urgent")
    assert (job["queue"], job["retry"]) == ("urgent", False)
    assert r.smembers(keys.QUEUES) == {b"mail", b"urgent"}


def test_sidekiq_class_names_the_job(client: Client, r: redis.Redis) -> None:
    """A worker's sidekiq_class is the class name written into the job."""
    client.enqueue(RubyNamed)
    assert queued(r)[0]["class"] == "Billing::ChargeWorker"


def test_extra_fields_are_written(client: Client, r: redis.Redis) -> None:
    """extra fields (e.g. a timeout or Sidekiq tags) are written into the job."""
    client.enqueue("A", extra={"timeout": 30, "tags": ["x"]})
    job = queued(r)[0]
    assert (job["timeout"], job["tags"]) == (30, ["x"])


@pytest.mark.parametrize("as_datetime", [False, True])
def test_enqueue_at_future_goes_to_schedule(
    client: Client, r: redis.Redis, as_datetime: bool
) -> None:
    """A future run time puts the job in the schedule zset with that score and no enqueued_at."""
    at = time.time() + 3600
    jid = client.enqueue_at(datetime.fromtimestamp(at) if as_datetime else at, "A", 1)
    ((text, score),) = r.zrange(keys.SCHEDULE, 0, -1, withscores=True)
    job = json.loads(text)
    assert score == pytest.approx(at, abs=1e-3)
    assert job["jid"] == jid
    assert job["queue"] == "default"
    assert "enqueued_at" not in job
    assert isinstance(job["created_at"], float)
    assert not r.exists(keys.queue_key("default"))


def test_enqueue_at_past_goes_to_queue(client: Client, r: redis.Redis) -> None:
    """A run time in the past enqueues the job at once."""
    jid = client.enqueue_at(time.time() - 10, "A", 1)
    (job,) = queued(r)
    assert job["jid"] == jid
    assert "enqueued_at" in job
    assert not r.exists(keys.SCHEDULE)


@pytest.mark.parametrize("delay", [60, 60.0, timedelta(seconds=60)])
def test_enqueue_in(client: Client, r: redis.Redis, delay: Any) -> None:
    """enqueue_in schedules the job delay seconds from now."""
    before = time.time()
    client.enqueue_in(delay, "A")
    ((_, score),) = r.zrange(keys.SCHEDULE, 0, -1, withscores=True)
    assert before + 60 <= score <= time.time() + 60


def test_enqueue_many_keeps_order(client: Client, r: redis.Redis) -> None:
    """enqueue_many gives each job its own jid and queues them FIFO in the given order."""
    jids = client.enqueue_many("A", ([i] for i in range(2_500)))
    assert len(jids) == len(set(jids)) == 2_500
    jobs = queued(r)
    assert [j["args"] for j in jobs] == [[i] for i in range(2_500)]
    assert [j["jid"] for j in jobs] == jids


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.enqueue("", 1), "worker class"),
        (lambda c: c.enqueue(42, 1), "worker"),
        (lambda c: c.enqueue("A", {1, 2}), "JSON"),
        (lambda c: c.enqueue("A", float("nan")), "JSON"),
        (lambda c: c.enqueue("A", queue="has space"), "queue name"),
        (lambda c: c.enqueue("A", retry="always"), "retry"),
        (lambda c: c.enqueue("A", extra={"class": "os.system"}), "override"),
        (lambda c: c.enqueue_at("tomorrow", "A"), "run time"),
        (lambda c: c.enqueue_in("soon", "A"), "delay"),
        (lambda c: c.enqueue_at(time.time() + 60, "A", object()), "JSON"),
        (lambda c: c.enqueue_many("A", [[1], [2], "oops"]), "list or tuple"),
        (lambda c: c.enqueue_many("A", [[1]] * 1_500 + [[{1}]]), "JSON"),
        (lambda c: c.enqueue_many("A", [[1]], jid="x"), "jid"),
        (lambda c: c.enqueue(dict, 1), r"enqueue\(\): dict is not a worker: pass a Worker"),
        (lambda c: c.enqueue_at(time.time(), int), r"enqueue_at\(\): int is not a worker"),
        (lambda c: c.enqueue_many(object, [[1]]), r"enqueue_many\(\): object is not a worker"),
        (
            lambda c: c.enqueue(Mailer, name="a"),
            r"enqueue\(\) got name=: Sidekiq jobs take "
            "positional JSON args only",
        ),
        (lambda c: c.enqueue_in(5, Mailer, 1, when=2), r"enqueue_in\(\) got when=: Sidekiq"),
        (lambda c: c.enqueue_at(time.time(), "A", a=1, b=2), r"enqueue_at\(\) got a=, b=:"),
        (lambda c: c.enqueue_many(Mailer, [[1]], name="a"), r"enqueue_many\(\) got name="),
    ],
)
def test_invalid_input_writes_nothing(
    client: Client, r: redis.Redis, call: Any, match: str
) -> None:
    """Invalid input raises InvalidJobError and leaves Redis untouched."""
    with pytest.raises(InvalidJobError, match=match):
        call(client)
    assert r.dbsize() == 0


def test_module_level_enqueue_refuses_keyword_args(redis_server: RedisServer) -> None:
    """verk_actors.enqueue(HardWorker, name=...) names enqueue, not an internal method."""
    with pytest.raises(InvalidJobError) as info:
        verk_actors.enqueue(Mailer, url=redis_server.url, name="a")
    assert str(info.value).startswith("enqueue() got name=: Sidekiq jobs take positional")
    assert "build" not in str(info.value)


def test_client_without_url_names_its_server_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Client() with no URL says at INFO which Redis it writes to, once per server."""
    from verk_actors.store import client as client_module

    monkeypatch.setattr(client_module, "_announced", client_module._Announced())
    monkeypatch.delenv("VERK_REDIS_URL", raising=False)
    with caplog.at_level(logging.INFO, logger="verk_actors"):
        Client().close()
        Client().close()
        Client(url="redis://127.0.0.1:1/0").close()  # given: nothing to say
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "verk_actors Client: no url given, so jobs go to Redis at redis://127.0.0.1:6379/0 "
        "(the default; pass url= or set VERK_REDIS_URL to choose)"
    ]
    caplog.clear()
    monkeypatch.setenv("VERK_REDIS_URL", "redis://:s3cret@127.0.0.1:1/2")
    with caplog.at_level(logging.INFO, logger="verk_actors"):
        Client().close()
    assert [r.getMessage() for r in caplog.records] == [
        "verk_actors Client: no url given, so jobs go to Redis at redis://:***@127.0.0.1:1/2 "
        "(from VERK_REDIS_URL)"
    ]


def test_stopped_redis_raises_redis_unavailable(redis_server: RedisServer) -> None:
    """With Redis down, enqueue raises RedisUnavailableError saying nothing was enqueued."""
    with Client(url=redis_server.url) as c:
        c.enqueue("A")
        redis_server.stop()
        with pytest.raises(RedisUnavailableError, match="nothing was enqueued"):
            c.enqueue("A")


@pytest.fixture
def secret_server() -> Iterator[RedisServer]:
    """A private Redis server that requires the password s3cret."""
    server = RedisServer(password="s3cret").start()
    yield server
    server.cleanup()


def test_password_auth(secret_server: RedisServer) -> None:
    """A URL with the password enqueues to a server that requires one."""
    jid = verk_actors.enqueue("A", 1, url=secret_server.url)
    check = secret_server.client()
    try:
        assert json.loads(check.lrange(keys.queue_key("default"), 0, -1)[0])["jid"] == jid
    finally:
        check.close()


def test_wrong_password_is_not_shown(secret_server: RedisServer) -> None:
    """A wrong password raises RedisUnavailableError that shows neither password."""
    url = f"redis://:wr0ngpass@127.0.0.1:{secret_server.port}/0"
    with Client(url=url) as c, pytest.raises(RedisUnavailableError) as info:
        c.enqueue("A")
    assert "wr0ngpass" not in str(info.value)
    assert "s3cret" not in str(info.value)


def test_unavailable_error_hides_password(secret_server: RedisServer) -> None:
    """RedisUnavailableError for a stopped server does not contain the URL's password."""
    with Client(url=secret_server.url) as c:
        c.enqueue("A")
        secret_server.stop()
        with pytest.raises(RedisUnavailableError) as info:
            c.enqueue("A")
    assert "s3cret" not in str(info.value)
    assert "***" in str(info.value)


def test_module_level_functions(redis_server: RedisServer, r: redis.Redis) -> None:
    """verk_actors.enqueue, enqueue_at, enqueue_in and enqueue_many work with url=."""
    url = redis_server.url
    jid = verk_actors.enqueue("A", 1, url=url)
    many = verk_actors.enqueue_many("A", [[2], [3]], url=url)
    verk_actors.enqueue_at(time.time() + 100, "A", url=url)
    verk_actors.enqueue_in(100, "A", url=url, queue="later")
    assert [j["jid"] for j in queued(r)] == [jid, *many]
    assert r.zcard(keys.SCHEDULE) == 2


def test_given_redis_client_is_used_and_not_closed(r: redis.Redis) -> None:
    """A Client built on a redis client writes through it and leaves it open."""
    with Client(r) as c:
        c.enqueue("A")
    assert r.llen(keys.queue_key("default")) == 1
    assert r.ping()


def test_bad_url_is_a_configuration_error() -> None:
    """A URL that is not redis://, rediss:// or unix:// raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match="redis://"):
        Client(url="http://:pw@localhost:6379/0")
