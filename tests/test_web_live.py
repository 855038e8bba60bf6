"""The dashboard's live parts against a real Redis and a real node: the supervision tree
a node publishes (worker pids, restarts after a SIGKILL, CPU and memory), the job
event stream (server-sent events), a pending job's page, and the web's credentials
from the config file."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis
import uvicorn
from starlette.testclient import TestClient

from tests.conftest import Node, wait_for
from tests.ops_data import job_text
from tests.servers import RedisServer, free_port
from verk_actors.cli import main
from verk_actors.cli.web import credentials
from verk_actors.config.file import load_config
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.errors import ConfigurationError
from verk_actors.web import _events, create_app

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node["children"]:
        yield from walk(child)


def workers_of(published: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not published:
        return []
    return [a for a in walk(published["tree"]) if a["kind"] == "WorkerActor"]


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def web(redis_server: RedisServer) -> Iterator[TestClient]:
    with TestClient(create_app(redis_server.url)) as client:
        yield client


@pytest.fixture
def served(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., str]]:
    """Serve a dashboard over HTTP (uvicorn in a thread): ``served(**create_app_kwargs)``
    returns its base URL; stopped at the end. Quiet streams send a keep-alive comment
    about every second, so a test's reader sees soon that it should stop."""
    monkeypatch.setattr(_events, "KEEPALIVE", 0.5)
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(url: str | None = None, **kwargs: Any) -> str:
        port = free_port()
        config = uvicorn.Config(
            create_app(url or redis_server.url, **kwargs),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_for(lambda: server.started, timeout=10)
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def test_a_node_publishes_its_tree_with_live_worker_pids_and_restarts(
    start_verk: Callable[..., Node], web: TestClient, r: redis.Redis
) -> None:
    """The tree at /api/nodes/<id>/tree has the node's workers with pids that run, their
    memory and CPU; a worker killed with SIGKILL shows a restart and a new pid."""
    node = start_verk(queues=(QueueSpec("default", 2),))
    try:

        def two_workers() -> Any:
            """the published tree shows two workers with pids"""
            response = web.get(f"/api/nodes/{node.node_id}/tree")
            found = workers_of(response.json() if response.status_code == 200 else None)
            ready = [w for w in found if w["pid"] and w["cpu_percent"] is not None]
            return found if len(ready) == 2 else None

        workers = wait_for(two_workers, timeout=30, every=0.2)
        published = web.get(f"/api/nodes/{node.node_id}/tree").json()
        assert published["node_id"] == node.node_id
        assert published["tree"]["kind"] == "VerkRoot"
        assert published["tree"]["strategy"] == "one_for_one"
        kinds = {a["kind"] for a in walk(published["tree"])}
        assert {"NodeManager", "QueueSupervisor", "QueueManager", "WorkersManager"} <= kinds
        for worker in workers:
            assert running(worker["pid"]), worker
            assert worker["rss_kb"] > 0 and worker["cpu_seconds"] >= 0
            assert worker["restarts"] == 0
        assert 0 < r.ttl(f"verk:node:{node.node_id}:tree") <= 10

        victim = workers[0]
        os.kill(victim["pid"], signal.SIGKILL)

        def restarted() -> Any:
            """the killed worker's slot shows one restart and a new pid"""
            response = web.get(f"/api/nodes/{node.node_id}/tree")
            found = workers_of(response.json() if response.status_code == 200 else None)
            again = [w for w in found if w["name"] == victim["name"] and w["restarts"] == 1]
            return again[0] if again and again[0]["pid"] not in (None, victim["pid"]) else None

        replaced = wait_for(restarted, timeout=30, every=0.2)
        assert running(replaced["pid"]) and not running(victim["pid"])

        page = web.get(f"/nodes/{node.node_id}")
        assert page.status_code == 200
        assert str(replaced["pid"]) in page.text and "WorkerActor" in page.text
        assert 'data-restarts="1"' in page.text
        assert f'href="/nodes/{node.node_id}"' in web.get("/busy").text
    finally:
        node.stop()
    assert r.exists(f"verk:node:{node.node_id}:tree") == 0  # a clean stop removes it


def test_a_node_without_a_tree_and_an_unknown_node(web: TestClient, r: redis.Redis) -> None:
    """An unknown node is a 404; a registered node that published no tree says so."""
    assert web.get("/nodes/nobody").status_code == 404
    assert web.get("/api/nodes/nobody/tree").status_code == 404
    r.sadd("verk_nodes", "quiet-one")
    page = web.get("/nodes/quiet-one")
    assert page.status_code == 200 and 'id="no-tree"' in page.text
    assert web.get("/api/nodes/quiet-one").json()["tree"] is None


def test_a_published_tree_is_escaped(web: TestClient, r: redis.Redis) -> None:
    """Text in a published tree (whoever wrote it) is shown as text, never as markup."""
    tree = {
        "name": XSS[0],
        "kind": XSS[1],
        "pid": 1,
        "state": XSS[0],
        "restarts": 0,
        "strategy": "",
        "detail": XSS[1],
        "cpu_seconds": None,
        "cpu_percent": None,
        "rss_kb": None,
        "children": [],
    }
    r.sadd("verk_nodes", "n1")
    r.set("verk:node:n1:tree", json.dumps({"node_id": "n1", "at": time.time(), "tree": tree}))
    page = web.get("/nodes/n1").text
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


class Listener:
    """Reads /api/events in a thread and keeps every event it got."""

    def __init__(self, url: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.comments = 0
        self.stop = threading.Event()
        self.status: int | None = None
        self.thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self.thread.start()

    def _read(self, url: str) -> None:
        timeout = httpx.Timeout(30, read=15)
        with httpx.Client(timeout=timeout) as client, client.stream("GET", url) as response:
            self.status = response.status_code
            if response.status_code != 200:
                return
            for line in response.iter_lines():
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))
                elif line.startswith(":"):
                    self.comments += 1
                if self.stop.is_set():
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()

    def of(self, kind: str, jid: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("kind") == kind and e.get("jid") == jid]


def test_event_stream_carries_started_finished_and_failed(
    start_verk: Callable[..., Node], served: Callable[..., str], r: redis.Redis
) -> None:
    """An SSE client of /api/events gets job_started and job_finished for a job that
    ran, job_failed (with the error) for one that failed; once it leaves, its Redis
    subscription ends and the node stops publishing."""
    node = start_verk(queues=(QueueSpec("default", 2),))
    base = served()
    listener = Listener(f"{base}/api/events")
    try:

        def streaming() -> Any:
            """the node says it streams its events"""
            return [e for e in listener.events if e.get("kind") == "node"]

        [hello] = wait_for(streaming, timeout=30, every=0.1)
        assert hello["node"] == node.node_id and hello["state"] == "streaming"
        ok = json.loads(job_text(**{"class": "tests.jobs.Noop"}, args=[XSS[0]]))["jid"]
        bad = json.loads(
            job_text(**{"class": "tests.jobs.Fail"}, args=[node.settings.redis_url, "k", "t"])
        )["jid"]
        for jid, cls, args in (
            (ok, "tests.jobs.Noop", [XSS[0]]),
            (bad, "tests.jobs.Fail", [node.settings.redis_url, "k", "t"]),
        ):
            r.lpush("queue:default", job_text(**{"class": cls}, args=args, jid=jid))

        def outcomes() -> Any:
            """both jobs started and ended on the stream"""
            return (
                listener.of("job_started", ok)
                and listener.of("job_finished", ok)
                and listener.of("job_started", bad)
                and listener.of("job_failed", bad)
            )

        wait_for(outcomes, timeout=30, every=0.1)
        [finished] = listener.of("job_finished", ok)
        assert finished["class"] == "tests.jobs.Noop" and finished["queue"] == "default"
        assert finished["node"] == node.node_id and finished["duration"] >= 0
        [failed] = listener.of("job_failed", bad)
        assert failed["error_class"] == "ValueError" and "boom t" in failed["error_message"]
        assert failed["target"] == "retry"
    finally:
        listener.close()

    def unsubscribed() -> bool:
        """the stream's Redis subscription ended with its client"""
        return r.pubsub_numsub("verk:events")[0][1] == 0

    wait_for(unsubscribed, timeout=15, every=0.1)
    node.stop()


def test_event_streams_are_capped_and_filtered(served: Callable[..., str], r: redis.Redis) -> None:
    """Past ``event_streams`` open streams the next is refused (503); ``?kind=`` and
    ``?queue=`` filter what a stream passes on."""
    base = served(event_streams=1)
    first = Listener(f"{base}/api/events?kind=job_failed&queue=mail")
    try:
        wait_for(lambda: r.pubsub_numsub("verk:events")[0][1] == 1, timeout=15)
        second = Listener(f"{base}/api/events")
        second.thread.join(15)
        assert second.status == 503
        batch = {
            "node": "n1",
            "events": [
                {"kind": "job_failed", "queue": "mail", "jid": "a"},
                {"kind": "job_failed", "queue": "default", "jid": "b"},
                {"kind": "job_finished", "queue": "mail", "jid": "c"},
            ],
            "dropped": 0,
        }
        r.publish("verk:events", json.dumps(batch))
        wait_for(lambda: first.events, timeout=15)
        time.sleep(0.5)
        assert [e["jid"] for e in first.events] == ["a"]
    finally:
        first.close()


def test_an_event_stream_ends_when_redis_is_away(served: Callable[..., str]) -> None:
    """With Redis out of reach the stream says so in a comment and ends (the browser
    reconnects later), and does not count against the cap any more."""
    base = served(url=f"redis://127.0.0.1:{free_port()}/0", event_streams=1)
    for _ in range(2):  # the first ended and freed its place
        with httpx.stream("GET", f"{base}/api/events", timeout=20) as response:
            assert response.status_code == 200
            text = response.read().decode()
        assert "Redis did not answer" in text


def test_a_pending_job_has_its_own_page(web: TestClient, r: redis.Redis) -> None:
    """A pending job's page (linked from its queue) shows every field, escaped; its API
    twin returns them; a job gone is a 404."""
    fields = {"class": XSS[1], "args": [XSS[0], "x" * 1_000_000], "tags": ["a"]}
    text = job_text(**fields, enqueued_at=time.time())
    jid = json.loads(text)["jid"]
    r.sadd("queues", "default")
    r.lpush("queue:default", job_text(), text, job_text())
    queue_page = web.get("/queues/default").text
    link = f"/queues/default/jobs/{jid}?pos=1"
    assert f'href="{link}"' in queue_page
    page = web.get(link)
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "x" * 1_000_000 in page.text and "tags" in page.text
    data = web.get(f"/api/queues/default/jobs/{jid}").json()
    assert data["fields"]["class"] == XSS[1] and data["fields"]["tags"] == ["a"]
    assert data["queue"] == "default" and data["copies"] == 1
    r.delete("queue:default")
    assert web.get(link).status_code == 404


def test_web_credentials_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``web_token`` (or ``web_user`` and ``web_password``) in the config file are the
    web's credentials, below the variables and flags; a node's config loads alongside."""
    for var in ("VERK_WEB_TOKEN", "VERK_WEB_USER", "VERK_WEB_PASSWORD", "VERK_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "verk.toml"
    config.write_text('redis_url = "redis://127.0.0.1:1/0"\nweb_token = "from-file"\n')
    args = argparse.Namespace(config=str(config), token=None, basic=None)
    assert credentials(args) == ("from-file", None)
    assert load_config(config) == {"redis_url": "redis://127.0.0.1:1/0"}
    monkeypatch.setenv("VERK_WEB_TOKEN", "from-env")
    assert credentials(args) == ("from-env", None)
    args.token = "from-flag"
    assert credentials(args) == ("from-flag", None)

    basic = tmp_path / "basic.toml"
    basic.write_text('web_user = "ops"\nweb_password = "pw"\n')
    monkeypatch.delenv("VERK_WEB_TOKEN")
    assert credentials(argparse.Namespace(config=str(basic), token=None, basic=None)) == (
        None,
        "ops:pw",
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("web_token = 5\n")
    with pytest.raises(ConfigurationError, match="web_token"):
        load_config(bad)
    bare = tmp_path / "bare.toml"
    bare.write_text('redis_url = "redis://127.0.0.1:1/0"\n')
    assert main(["web", "--bind", "0.0.0.0:9999", "--config", str(bare)]) == 2
    assert "web_token in the config file" in capsys.readouterr().err
