"""The Busy page's Quiet and Stop buttons push what Sidekiq's Web pushes (``TSTP``,
``TERM`` onto ``<identity>-signals``), for a Sidekiq process as for a node; they
need the CSRF token and are absent, and refused, in read-only mode."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis
from starlette.testclient import TestClient

from tests.servers import RedisServer
from tests.test_web import csrf_of
from verk_actors.cli import EXIT_NOT_FOUND, EXIT_OK, main
from verk_actors.store import keys
from verk_actors.web import create_app

IDENTITY = "worker-1:4242:0123456789ab"


def _sidekiq_process(r: redis.Redis, identity: str = IDENTITY) -> None:
    """A Ruby Sidekiq process's entry, as Sidekiq writes it."""
    info = {"hostname": "worker-1", "pid": 4242, "tag": "shop", "concurrency": 5,
            "queues": ["default"], "labels": [], "started_at": time.time() - 60,
            "identity": identity}  # fmt: skip
    r.sadd(keys.PROCESSES, identity)
    r.hset(
        identity,
        mapping={"info": json.dumps(info), "busy": 0, "beat": time.time(), "quiet": "false"},
    )


@pytest.fixture
def web(redis_server: RedisServer) -> Iterator[TestClient]:
    with TestClient(create_app(redis_server.url)) as client:
        yield client


def test_quiet_and_stop_push_sidekiqs_signals(r: redis.Redis, web: TestClient) -> None:
    """Quiet pushes TSTP, Stop pushes TERM (LPUSH, a minute to live), after the CSRF check."""
    _sidekiq_process(r)
    page = web.get("/busy").text
    assert 'action="/busy/action"' in page and 'value="quiet"' in page and 'value="stop"' in page
    signals = keys.process_signals_key(IDENTITY)
    assert signals == f"{IDENTITY}-signals"  # Sidekiq's name for it
    form = {"identity": IDENTITY, "action": "quiet"}
    assert web.post("/busy/action", data=form).status_code == 403  # no token
    assert not r.exists(signals)

    token = csrf_of(web)
    done = web.post("/busy/action", data={**form, "csrf": token})
    assert done.status_code == 200 and "TSTP" in done.text
    assert r.lrange(signals, 0, -1) == [b"TSTP"]
    assert 0 < r.ttl(signals) <= 60
    stop = web.post(
        "/busy/action",
        data={"identity": IDENTITY, "action": "stop"},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert stop.json()["ok"] is True
    assert r.lrange(signals, 0, -1) == [b"TERM", b"TSTP"]  # popped from the right: TSTP first
    assert r.rpop(signals) == b"TSTP"

    r.hset(IDENTITY, "quiet", "true")
    quiet_page = web.get("/busy").text
    assert 'value="quiet"' not in quiet_page and 'value="stop"' in quiet_page


def test_unknown_process_or_action_is_refused(r: redis.Redis, web: TestClient) -> None:
    """A process that is gone (or never was) gets 404, an unknown action 400; nothing pushed."""
    _sidekiq_process(r)
    token = csrf_of(web)
    gone = web.post("/busy/action", data={"identity": "gone:1:x", "action": "stop", "csrf": token})
    assert gone.status_code == 404 and "no live process" in gone.text
    odd = web.post("/busy/action", data={"identity": IDENTITY, "action": "kill", "csrf": token})
    assert odd.status_code == 400
    assert not r.keys("*-signals")


def test_read_only_has_no_buttons_and_refuses(r: redis.Redis, redis_server: RedisServer) -> None:
    _sidekiq_process(r)
    with TestClient(create_app(redis_server.url, read_only=True)) as web:
        token = csrf_of(web)
        page = web.get("/busy").text
        assert "worker-1:4242" in page and 'method="post"' not in page
        refused = web.post(
            "/busy/action", data={"identity": IDENTITY, "action": "stop", "csrf": token}
        )
        assert refused.status_code == 403
    assert not r.exists(keys.process_signals_key(IDENTITY))


def test_cli_quiet_and_stop_name_a_node_or_an_identity(
    r: redis.Redis, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`verk-actors quiet NODE` / `stop NODE` push TSTP / TERM to the node's process;
    an identity works too (a Sidekiq's); an unknown name exits 3 naming the live ones."""
    node = "host-a:77:n1"
    _sidekiq_process(r)
    _sidekiq_process(r, node)
    info = json.loads(r.hget(node, "info") or b"{}")
    r.hset(node, "info", json.dumps({**info, "tag": "verk_actors", "labels": ["node:n1"]}))
    url = ["--redis-url", redis_server.url]
    assert main(["quiet", "n1", *url]) == EXIT_OK
    assert "sent TSTP to host-a:77:n1" in capsys.readouterr().out
    assert main(["stop", IDENTITY, "--json", *url]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["signal"] == "TERM"
    assert r.lrange(keys.process_signals_key(node), 0, -1) == [b"TSTP"]
    assert r.lrange(keys.process_signals_key(IDENTITY), 0, -1) == [b"TERM"]
    assert main(["stop", "n2", *url]) == EXIT_NOT_FOUND
    assert f"live: n1, {IDENTITY}" in capsys.readouterr().err
