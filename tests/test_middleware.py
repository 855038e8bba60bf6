"""Client and server middleware: the chain, every enqueue door, and a real node."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import wait_for
from tests.test_error_handlers import _worker_pids
from tests.test_limits import REGISTRY as LIMITED
from verk_actors import (
    Batch,
    Client,
    ConfigurationError,
    QueueSpec,
    Settings,
    add_client_middleware,
    batch_status,
)
from verk_actors.actors.messages import Enqueue, Enqueued, RequestFailed
from verk_actors.cli import main
from verk_actors.jobs import middleware
from verk_actors.jobs.chain import invoke
from verk_actors.jobs.limits import Concurrent, install_gate
from verk_actors.jobs.middleware import as_middleware, import_middleware
from verk_actors.jobs.retry import Fate
from verk_actors.jobs.running import PreparedJob, execute
from verk_actors.store import keys
from verk_actors.store.limits import RedisLimitGate
from verk_actors.store.scripts import Scripts

MW = "tests.mw_jobs"


def test_chain_runs_in_order_and_lets_exceptions_through() -> None:
    """The first middleware is the outermost; what one raises reaches the caller."""
    seen: list[str] = []

    def named(name: str) -> Any:
        def call(worker: Any, job: dict[str, Any], queue: str, call_next: Any) -> Any:
            seen.append(f"{name}>")
            result = call_next()
            seen.append(f"<{name}")
            return result

        return call

    result = invoke([named("a"), named("b")], None, {}, "q", lambda: seen.append("run") or 7)
    assert result == 7
    assert seen == ["a>", "b>", "run", "<b", "<a"]

    def broken(worker: Any, job: dict[str, Any], queue: str, call_next: Any) -> Any:
        raise KeyError("broken")

    seen.clear()
    with pytest.raises(KeyError, match="broken"):
        invoke([named("a"), broken], None, {}, "q", lambda: seen.append("run"))
    assert seen == ["a>"]  # perform never ran; the outer one saw the exception pass


def test_middleware_specs_are_checked() -> None:
    """A spec that is not module:name, or names no middleware, is refused, saying so."""
    with pytest.raises(ConfigurationError, match="module:function"):
        Settings(server_middleware=("tests.mw_jobs.tag_tenant",))
    with pytest.raises(ConfigurationError, match="is a str"):
        import_middleware([f"{MW}:NOT_MIDDLEWARE"])
    with pytest.raises(ConfigurationError, match="is a int"):
        as_middleware(3)
    assert Settings.from_env({"VERK_CLIENT_MIDDLEWARE": "a:b, c:d"}).client_middleware == (
        "a:b",
        "c:d",
    )
    assert callable(as_middleware(import_middleware([f"{MW}:OuterServer"])[0]))


def test_client_middleware_adds_fields_and_refuses_jobs(r: redis.Redis, redis_server) -> None:
    """A field added by client middleware is in the stored JSON (queue, schedule and
    enqueue_many, where a middleware may also move a job to another queue); a refused
    job writes nothing and the verb returns None; what one raises reaches the caller."""
    specs = (f"{MW}:tag_tenant", f"{MW}:refuse_marked", f"{MW}:route_mail")
    with Client(url=redis_server.url, middleware=specs) as client:
        jid = client.enqueue("Record", "a")
        assert client.refused is False
        assert json.loads(r.lindex("queue:default", 0))["tenant"] == "acme"
        assert json.loads(r.lindex("queue:default", 0))["jid"] == jid
        assert client.enqueue("Record", "refuse") is None
        assert client.refused is True
        assert client.enqueue_in(3600, "Record", "refuse") is None
        client.enqueue_in(3600, "Record", "later")
        jids = client.enqueue_many("Record", [["b"], ["refuse"], ["c"], ["mail"]])
        with pytest.raises(RuntimeError, match="client middleware broke"):
            client.enqueue("Record", "boom")  # as the middleware raised it
    assert r.llen("queue:default") == 3 and len(jids) == 3
    (mail,) = [json.loads(text) for text in r.lrange("queue:mail", 0, -1)]
    assert (mail["args"], mail["queue"], mail["jid"]) == (["mail"], "mail", jids[2])
    stored = [json.loads(text) for text in r.lrange("queue:default", 0, -1)]
    assert {job["jid"] for job in stored[:2]} == set(jids[:2])
    assert all(job["tenant"] == "acme" for job in stored)
    assert [json.loads(t)["tenant"] for t in r.zrange("schedule", 0, -1)] == ["acme"]


def test_batch_jobs_go_through_the_client_middleware(r: redis.Redis, redis_server) -> None:
    """A batch's jobs pass the client middleware of its Client: fields added, a refused
    job left out of the batch (enqueue returns None) and not written."""
    specs = (f"{MW}:tag_tenant", f"{MW}:refuse_marked")
    client = Client(url=redis_server.url, middleware=specs)
    with client, Batch(client, description="mw") as batch:
        kept = batch.enqueue("Record", "a")
        assert batch.enqueue("Record", "refuse") is None
        many = batch.enqueue_many("Record", [["b"], ["refuse"]])
    assert kept is not None and len(many) == 1
    stored = [json.loads(text) for text in r.lrange("queue:default", 0, -1)]
    assert sorted(job["jid"] for job in stored) == sorted([kept, *many])
    assert all(job["tenant"] == "acme" and job["bid"] == batch.bid for job in stored)
    assert batch_status(r, batch.bid).total == 2


def test_added_client_middleware_runs_after_the_configured(r: redis.Redis, redis_server) -> None:
    """add_client_middleware reaches every Client, after its configured middleware."""

    def shout(worker: Any, job: dict[str, Any], queue: str, call_next: Any) -> Any:
        job["tenant"] = job.get("tenant", "none").upper()
        return call_next()

    add_client_middleware(shout)
    try:
        with Client(url=redis_server.url, middleware=(f"{MW}:tag_tenant",)) as client:
            client.enqueue("Record", "a")
    finally:
        middleware._client_middleware.remove(shout)
    assert json.loads(r.lindex("queue:default", 0))["tenant"] == "ACME"


def test_cli_enqueue_runs_the_configured_client_middleware(
    r: redis.Redis, redis_server, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """verk-actors enqueue runs client_middleware from VERK_CLIENT_MIDDLEWARE: the field
    is stored, and a refused job is said to be refused, with nothing written."""
    monkeypatch.setenv("VERK_CLIENT_MIDDLEWARE", f"{MW}:tag_tenant,{MW}:refuse_marked")
    url = ["--redis-url", redis_server.url]
    assert main(["enqueue", "Record", '"a"', *url]) == 0
    assert json.loads(r.lindex("queue:default", 0))["tenant"] == "acme"
    capsys.readouterr()
    assert main(["enqueue", "Record", '"refuse"', *url]) == 0
    assert "a client middleware refused" in capsys.readouterr().out
    assert main(["enqueue", "Record", '"refuse"', "--json", *url]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert (reply["jid"], reply["refused"], reply["duplicate"]) == (None, True, False)
    assert main(["enqueue", "Record", '"boom"', *url]) == 1
    assert "a client middleware raised RuntimeError: client middleware broke" in (
        capsys.readouterr().err
    )
    assert r.llen("queue:default") == 1


def test_middleware_on_a_real_node(start_verk, redis_server, r: redis.Redis) -> None:
    """On a multiprocess node: VerkRoot's Enqueue runs the client chain (field stored,
    refusal answered with no jid); the server chain wraps perform in order and sees the
    field; a server middleware that raises sends the job to retry and the worker lives."""
    node = start_verk(
        imports=("tests.jobs", MW),
        queues=(QueueSpec("default", 1),),
        client_middleware=(f"{MW}:tag_tenant", f"{MW}:refuse_marked"),
        server_middleware=(f"{MW}:OuterServer", f"{MW}:inner_server"),
    )
    url = redis_server.url
    pids = wait_for(lambda: _worker_pids(node))
    later = node.asys.ask(
        node.root, Enqueue("Record", (url, "later", "x"), at=time.time() + 3600), 10
    )
    assert isinstance(later, Enqueued) and later.jid is not None
    (scheduled,) = r.zrange("schedule", 0, -1)
    assert json.loads(scheduled)["tenant"] == "acme"
    refused = node.asys.ask(node.root, Enqueue("Record", (url, "never", "refuse")), 10)
    assert refused == Enqueued(None, refused=True)
    broke = node.asys.ask(node.root, Enqueue("Record", (url, "never", "boom")), 10)
    assert isinstance(broke, RequestFailed) and broke.error_class == "RuntimeError"

    ran = node.asys.ask(node.root, Enqueue("Record", (url, "mw_order", "perform")), 10)
    assert isinstance(ran, Enqueued) and ran.jid is not None
    wait_for(lambda: r.llen("mw_order") == 6)
    order = [item.decode() for item in r.lrange("mw_order", 0, -1)]
    seen = json.loads(order.pop(1))
    assert order == ["outer-before", "inner-before", "perform", "inner-after", "outer-after"]
    assert (seen["tenant"], seen["queue"], seen["pid"]) == ("acme", "default", *pids)

    with Client(url=url) as client:  # no client middleware here: no tenant
        exploded = client.enqueue("Record", url, "never", "explode")
        client.enqueue("Record", url, "after", "done")
    wait_for(lambda: r.llen("after") == 1 and r.zcard("retry") == 1)
    (entry,) = r.zrange("retry", 0, -1)
    failed = json.loads(entry)
    assert (failed["jid"], failed["error_class"]) == (exploded, "RuntimeError")
    assert failed["error_message"] == "inner middleware exploded"
    assert "tenant" not in failed
    assert r.llen("never") == 0
    assert _worker_pids(node) == pids  # the same worker process throughout
    node.stop()


@pytest.fixture
def gate(redis_server) -> Iterator[RedisLimitGate]:
    """A limiter gate on the test's Redis, installed for this process's jobs."""
    made = RedisLimitGate(redis_server.url, "node-mw")
    install_gate(made)
    yield made
    made.close()


def test_limiters_are_held_outside_the_server_middleware(
    r: redis.Redis, gate: RedisLimitGate
) -> None:
    """A job whose declared limiter is full is deferred without its server middleware
    running; one that finds a limiter full inside perform is deferred through it."""
    seen: list[str] = []

    def note(worker: Any, job: dict[str, Any], queue: str, call_next: Any) -> Any:
        seen.append(job["class"])
        return call_next()

    def run(cls: str, *args: Any) -> Any:
        text = json.dumps({"class": cls, "args": list(args), "jid": "j1", "queue": "q"})
        settings = Settings()
        prepared = PreparedJob(text.encode(), LIMITED, settings, "q")
        return execute(prepared, 1, settings, (note,))

    Scripts(r).limit_take(r, Concurrent("t", 1), "someone-else", 30)
    declared = run("OneAtATime", False)
    assert declared.failure.fate is Fate.DEFER and seen == []
    inside = run("TakesInside")
    assert inside.failure.fate is Fate.DEFER and seen == ["TakesInside"]
    r.delete(keys.limit_slots_key("t"))
    assert run("OneAtATime", False) is None and seen == ["TakesInside", "OneAtATime"]
