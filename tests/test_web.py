"""The web dashboard and its JSON API, against a real Redis (and a real node for Busy):
every page and its /api twin, actions, CSRF, read-only, auth, escaping, no password."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import redis
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from tests.conftest import wait_for
from tests.ops_data import add_to_set, failed_fields, job_text
from tests.servers import RedisServer, free_port
from verk_actors.cli import main
from verk_actors.config.settings import QueueSpec
from verk_actors.store.admin import set_search
from verk_actors.web import Auth, create_app

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
PAGES = ("/", "/busy", "/queues", "/queues/default", "/retries", "/scheduled", "/dead")
APIS = (
    "/api/dashboard",
    "/api/stats",
    "/api/busy",
    "/api/queues",
    "/api/queues/default",
    "/api/retries",
    "/api/scheduled",
    "/api/dead",
)


def enqueue(r: redis.Redis, queue: str = "default", **fields: Any) -> str:
    text = job_text(queue=queue, enqueued_at=time.time() - 5, **fields)
    r.sadd("queues", queue)
    r.lpush(f"queue:{queue}", text)
    return str(json.loads(text)["jid"])


def csrf_of(client: TestClient) -> str:
    client.get("/")
    token = client.cookies.get("verk_csrf")
    assert token
    return token


@pytest.fixture
def web(redis_server: RedisServer) -> Iterator[TestClient]:
    """A test client of a dashboard on the test's Redis."""
    with TestClient(create_app(redis_server.url)) as client:
        yield client


def test_every_page_and_its_api_show_the_same_jobs(r: redis.Redis, web: TestClient) -> None:
    """Each page answers 200 with its API's jobs in it, and the API answers JSON."""
    queued = enqueue(r, args=[1])
    retry, _ = add_to_set(r, "retry", time.time() + 60, **failed_fields(2))
    scheduled, _ = add_to_set(r, "schedule", time.time() + 600)
    dead, _ = add_to_set(r, "dead", time.time() - 60, **failed_fields(25))
    for path in PAGES:
        response = web.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
    for path in APIS:
        response = web.get(path)
        assert response.status_code == 200, path
        assert isinstance(response.json(), dict)
    assert web.get("/api/queues/default").json()["jobs"][0]["jid"] == queued
    assert queued in web.get("/queues/default").text
    keys = {}
    for page, jid in (("retries", retry), ("scheduled", scheduled), ("dead", dead)):
        [entry] = web.get(f"/api/{page}").json()["entries"]
        keys[page] = entry["key"]
        assert entry["jid"] == jid
        assert f"/{page}/{quote(entry['key'], safe='')}" in web.get(f"/{page}").text
        detail = web.get(f"/api/{page}/{quote(entry['key'], safe='')}").json()
        assert detail["fields"]["jid"] == jid
        page_text = web.get(f"/{page}/{quote(entry['key'], safe='')}").text
        assert jid in page_text
    assert "app.py:10:in perform" in web.get(f"/retries/{quote(keys['retries'], safe='')}").text
    totals = web.get("/api/stats").json()["totals"]
    assert (totals["enqueued"], totals["retries"], totals["scheduled"], totals["dead"]) == (
        1,
        1,
        1,
        1,
    )
    assert web.get("/api/dashboard?days=30").json()["days"] == 30
    assert len(web.get("/api/dashboard?days=30").json()["history"]) == 30
    packed = base64.b64encode(zlib.compress(json.dumps(["x.rb:1:in `go'"]).encode())).decode()
    add_to_set(r, "dead", 5.0, **failed_fields(25, error_backtrace=packed))
    assert web.get("/api/dead/5.0:" + dead).status_code == 404
    [ruby] = [e for e in web.get("/api/dead").json()["entries"] if e["score"] == 5.0]
    assert web.get(f"/api/dead/{quote(ruby['key'], safe='')}").json()["backtrace"] == [
        "x.rb:1:in `go'"
    ]
    assert web.get("/retries/1.0:nope").status_code == 404
    assert web.get("/api/retries/1.0:nope").json()["error"].startswith("no job")


def test_security_headers_on_every_answer(web: TestClient) -> None:
    """Pages, API and static files carry a CSP without inline scripts, nosniff, no framing."""
    for path in ("/", "/api/stats", "/static/verk.js", "/nope"):
        headers = web.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    assert "<script>" not in web.get("/").text.replace('<script src="/static/verk.js" defer>', "")


def _post_routes() -> list[str]:
    return ["/queues/action", "/retries/action", "/scheduled/action", "/dead/action"]


def test_a_post_without_the_csrf_token_is_refused(r: redis.Redis, web: TestClient) -> None:
    """Every action refuses a POST without the browser's token, or with another one."""
    enqueue(r)
    forms = {
        "/queues/action": {"name": "default", "action": "pause"},
        "/retries/action": {"action": "delete", "key": "1.0:x"},
        "/scheduled/action": {"action": "delete", "key": "1.0:x"},
        "/dead/action": {"action": "delete", "key": "1.0:x"},
    }
    token = csrf_of(web)
    for path in _post_routes():
        assert web.post(path, data=forms[path]).status_code == 403
        forged = {**forms[path], "csrf": token[:-1] + ("0" if token[-1] != "0" else "1")}
        assert web.post(path, data=forged).status_code == 403
    other = TestClient(web.app)
    assert (
        other.post("/queues/action", data={**forms["/queues/action"], "csrf": token}).status_code
        == 403
    )
    assert r.smembers("verk:paused") == set()
    done = web.post("/queues/action", data={**forms["/queues/action"], "csrf": token})
    assert done.status_code == 200  # followed the redirect
    assert r.smembers("verk:paused") == {b"default"}
    as_header = web.post(
        "/queues/action",
        data={"name": "default", "action": "resume"},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert as_header.json()["ok"] is True
    assert r.smembers("verk:paused") == set()


def test_set_actions_retry_kill_add_delete(r: redis.Redis, web: TestClient) -> None:
    """Retry now (dead), kill (retry -> dead), add to queue (scheduled), delete, several at once."""
    token = csrf_of(web)
    dead = [add_to_set(r, "dead", time.time() - i, **failed_fields(25))[0] for i in range(3)]
    keys = [e["key"] for e in web.get("/api/dead").json()["entries"]]
    response = web.post("/dead/action", data={"action": "retry", "key": keys[:2], "csrf": token})
    assert "Retried 2 jobs" in response.text
    assert r.llen("queue:default") == 2 and r.zcard("dead") == 1
    queued = {json.loads(t)["jid"] for t in r.lrange("queue:default", 0, -1)}
    assert queued <= set(dead)

    retry, _ = add_to_set(r, "retry", time.time() + 60, **failed_fields(3))
    [entry] = web.get("/api/retries").json()["entries"]
    web.post("/retries/action", data={"action": "kill", "key": entry["key"], "csrf": token})
    assert r.zcard("retry") == 0
    assert retry in {e["jid"] for e in web.get("/api/dead").json()["entries"]}

    add_to_set(r, "schedule", time.time() + 600, queue="later")
    [entry] = web.get("/api/scheduled").json()["entries"]
    web.post("/scheduled/action", data={"action": "add", "key": entry["key"], "csrf": token})
    assert r.llen("queue:later") == 1 and r.zcard("schedule") == 0

    keys = [e["key"] for e in web.get("/api/dead").json()["entries"]]
    web.post("/dead/action", data={"action": "delete", "key": keys, "csrf": token})
    assert r.zcard("dead") == 0
    gone = web.post("/dead/action", data={"action": "delete", "key": keys, "csrf": token})
    assert gone.status_code == 404
    wrong = web.post("/dead/action", data={"action": "kill", "key": keys, "csrf": token})
    assert wrong.status_code == 400


def test_queue_actions_pause_clear_delete(r: redis.Redis, web: TestClient) -> None:
    """Pause and resume, delete one pending job, clear only with the confirmation."""
    token = csrf_of(web)
    jids = [enqueue(r, args=[i]) for i in range(30)]
    page = web.get("/api/queues/default?offset=25&limit=10").json()
    assert [j["jid"] for j in page["jobs"]] == jids[25:]
    assert page["total"] == 30
    assert "next page" in web.get("/queues/default").text
    web.post("/queues/action", data={"name": "default", "action": "pause", "csrf": token})
    assert web.get("/api/queues").json()["queues"][0]["paused"] is True
    assert "Resume" in web.get("/queues").text
    web.post(
        "/queues/action",
        data={"name": "default", "action": "delete", "jid": jids[0], "csrf": token},
    )
    assert r.llen("queue:default") == 29
    r.rpop("queue:default")  # a node took the oldest: jids[5] is now listed at 3, not 4
    web.post(
        "/queues/action",
        data={"name": "default", "action": "delete", "jid": jids[5], "pos": "4", "csrf": token},
    )
    assert jids[5] not in {json.loads(t)["jid"] for t in r.lrange("queue:default", 0, -1)}
    assert r.llen("queue:default") == 27
    refused = web.post("/queues/action", data={"name": "default", "action": "clear", "csrf": token})
    assert refused.status_code == 400 and r.llen("queue:default") == 27
    done = web.post(
        "/queues/action",
        data={"name": "default", "action": "clear", "confirm": "yes", "csrf": token},
    )
    assert "Deleted 27 jobs" in done.text and r.llen("queue:default") == 0


def test_read_only_hides_and_refuses_actions(r: redis.Redis, redis_server: RedisServer) -> None:
    """--read-only: no forms on any page, and every POST is refused even with the token."""
    enqueue(r)
    add_to_set(r, "retry", time.time() + 60, **failed_fields(1))
    with TestClient(create_app(redis_server.url, read_only=True)) as web:
        token = csrf_of(web)
        for path in PAGES:
            assert 'method="post"' not in web.get(path).text, path
        [entry] = web.get("/api/retries").json()["entries"]
        assert 'method="post"' not in web.get(f"/retries/{quote(entry['key'], safe='')}").text
        refused = web.post(
            "/queues/action", data={"name": "default", "action": "pause", "csrf": token}
        )
        assert refused.status_code == 403
    assert r.smembers("verk:paused") == set()


def test_job_data_is_escaped_and_clipped(r: redis.Redis, web: TestClient) -> None:
    """Script and attribute payloads in args, class and error show as text; a 1 MB string
    is clipped in lists and whole on the job's own page."""
    big = "x" * (1 << 20)
    enqueue(r, args=[*XSS, big], **{"class": XSS[1]})
    for i, payload in enumerate(XSS):
        add_to_set(
            r,
            "retry",
            time.time() + 60 + i,
            **failed_fields(1, error_message=payload, error_class=XSS[1]),
            args=[payload, big],
        )
    add_to_set(r, "dead", time.time(), **failed_fields(25, error_backtrace=[XSS[0]]))
    r.zadd("dead", {"<script>alert(1)</script> not json": time.time() - 1})
    pages = [*PAGES]
    for page in ("retries", "dead"):
        pages += [
            f"/{page}/{quote(e['key'], safe='')}" for e in web.get(f"/api/{page}").json()["entries"]
        ]
    for path in pages:
        text = web.get(path).text
        for payload in XSS:
            assert payload not in text, path
        assert "<img" not in text and "onerror=alert(1)>" not in text
        assert len(text) < 3 << 20
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in web.get("/retries").text
    assert len(web.get("/queues/default").text) < 100_000
    assert len(web.get("/retries").text) < 100_000
    assert len(web.get("/api/retries").content) < 100_000
    [key, *_] = [e["key"] for e in web.get("/api/retries").json()["entries"]]
    detail = web.get(f"/retries/{quote(key, safe='')}").text
    assert big in detail
    assert web.get(f"/api/retries/{quote(key, safe='')}").json()["fields"]["args"][1] == big


def test_filters_and_a_capped_search(
    r: redis.Redis, web: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filter by class, queue, error class and text; sort either way; a search stops at
    the cap and says how much it searched."""
    now = time.time()
    for i in range(40):
        add_to_set(
            r,
            "retry",
            now + i,
            **failed_fields(1, error_class="KeyError" if i % 2 else "ValueError"),
            **{"class": "Mail" if i < 10 else "Bill", "queue": "mail" if i < 10 else "default"},
            args=[f"needle-{i}"],
        )
    assert web.get("/api/retries?class=Mail").json()["matched"] == 10
    assert web.get("/api/retries?queue=mail&error_class=KeyError").json()["matched"] == 5
    found = web.get("/api/retries?q=NEEDLE-3").json()
    assert found["matched"] == 11 and found["complete"] is True  # 3, 30..39
    asc = web.get("/api/retries?limit=40").json()["entries"]
    desc = web.get("/api/retries?limit=40&sort=desc").json()["entries"]
    assert [e["score"] for e in asc] == sorted(e["score"] for e in asc)
    assert [e["key"] for e in desc] == [e["key"] for e in reversed(asc)]
    second = web.get("/api/retries?class=Bill&offset=25&limit=25").json()
    assert len(second["entries"]) == 5 and second["matched"] == 30
    monkeypatch.setattr(set_search, "SEARCH_CAP", 15)
    capped = web.get("/api/retries?class=Bill").json()
    assert (capped["searched"], capped["total"], capped["matched"], capped["complete"]) == (
        15,
        40,
        5,
        False,
    )
    page = web.get("/retries?class=Bill").text
    assert re.search(r"5 matches among 15 searched of 40", page)
    assert 'id="all-matching"' in page and 'id="all-matching"' not in web.get("/retries").text
    token = csrf_of(web)
    done = web.post(
        "/retries/action",
        data={
            "action": "kill",
            "all": "yes",
            "class": "Mail",
            "error_class": "KeyError",
            "csrf": token,
        },
    )
    assert "Killed 5 jobs" in done.text  # every match, not only the capped search's
    assert r.zcard("retry") == 35 and r.zcard("dead") == 5
    unfiltered = web.post("/retries/action", data={"action": "delete", "all": "yes", "csrf": token})
    assert unfiltered.status_code == 400 and r.zcard("retry") == 35
    r.zadd("retry", {"needle-3x, not json": now})
    mixed = web.post(
        "/retries/action", data={"action": "retry", "all": "yes", "q": "needle-3", "csrf": token}
    )
    # needle-3 was killed above: 30..39 are left, and the member that is not JSON
    assert "Retried 10 jobs (1 not valid jobs, left: delete them instead)" in mixed.text


def test_the_redis_password_never_shows(tmp_path: Any) -> None:
    """With a password-protected Redis, no page or API answer holds the password."""
    password = "s3cret-Pa55word-xyz"
    server = RedisServer(password=password).start()
    try:
        r = server.client()
        enqueue(r)
        add_to_set(r, "retry", time.time() + 60, **failed_fields(1))
        with TestClient(create_app(server.url)) as web:
            for path in (*PAGES, *APIS):
                response = web.get(path)
                assert response.status_code == 200, path
                assert password not in response.text, path
            assert "***" in web.get("/").text
        with TestClient(create_app(server.url.replace(password, "wrong-" + password))) as web:
            response = web.get("/")
            assert response.status_code == 503
            assert password not in response.text
        r.close()
    finally:
        server.cleanup()


def test_auth_token_and_basic(redis_server: RedisServer) -> None:
    """A token works as bearer or as a basic password; basic needs its user and password."""
    with TestClient(create_app(redis_server.url, auth=Auth(token="tok-123"))) as web:
        assert web.get("/").status_code == 401
        assert "basic" in web.get("/static/verk.css").headers["www-authenticate"].lower()
        assert web.get("/api/stats", headers={"Authorization": "Bearer tok-123"}).status_code == 200
        assert web.get("/", auth=("anyone", "tok-123")).status_code == 200
        assert web.get("/", auth=("anyone", "tok-12")).status_code == 401
    with TestClient(create_app(redis_server.url, auth=Auth.basic("ops:pw"))) as web:
        assert web.get("/", auth=("ops", "pw")).status_code == 200
        assert web.get("/", auth=("ops", "px")).status_code == 401
        assert web.get("/", headers={"Authorization": "Bearer pw"}).status_code == 401


def test_mounted_under_a_prefix(r: redis.Redis, redis_server: RedisServer) -> None:
    """Mounted in another app, or given a prefix, every link and form stays below it."""
    enqueue(r)
    outer = Starlette(routes=[Mount("/ops/verk", app=create_app(redis_server.url))])
    with TestClient(outer) as web:
        page = web.get("/ops/verk/queues")
        assert page.status_code == 200
        links = re.findall(r'(?:href|src|action)="([^"]+)"', page.text)
        assert links and all(link.startswith("/ops/verk/") for link in links)
        token = web.cookies.get("verk_csrf")
        done = web.post(
            "/ops/verk/queues/action",
            data={"name": "default", "action": "pause", "csrf": token, "next": "/ops/verk/queues"},
            follow_redirects=False,
        )
        assert done.headers["location"].startswith("/ops/verk/queues?msg=")
        for target in ("//evil.example/x", "https://evil.example/", "/elsewhere", "/ops/verk\\x"):
            away = web.post(
                "/ops/verk/queues/action",
                data={"name": "default", "action": "pause", "csrf": token, "next": target},
                follow_redirects=False,
            )
            assert away.headers["location"].startswith("/ops/verk/?msg="), target
        assert web.get("/ops/verk/static/verk.css").status_code == 200
    with TestClient(create_app(redis_server.url, prefix="/verk")) as web:
        assert web.get("/verk/api/queues").json()["queues"][0]["paused"] is True
        assert 'href="/verk/busy"' in web.get("/verk/").text


def test_busy_shows_a_live_node_and_its_running_job(
    start_verk: Any, r: redis.Redis, redis_server: RedisServer
) -> None:
    """A real node: its process, concurrency and queues, and the job it runs now."""
    node = start_verk(queues=(QueueSpec("default", 3),))
    try:
        with TestClient(create_app(redis_server.url)) as web:
            jid = enqueue(r, **{"class": "tests.jobs.Doze"}, args=[3])

            def running() -> Any:
                """the node reports the Doze job as running"""
                return [w for w in web.get("/api/busy").json()["running"] if w["jid"] == jid]

            [work] = wait_for(running, timeout=20)
            assert work["class"] == "tests.jobs.Doze" and work["queue"] == "default"
            assert work["args"] == "[3]" and work["runtime"] >= 0
            data = web.get("/api/busy").json()
            [process] = [p for p in data["processes"] if p["kind"] == "verk_actors"]
            assert process["concurrency"] == 3 and process["queues"] == ["default"]
            assert process["rss_kb"] > 0 and process["busy"] >= 0
            [mine] = [n for n in data["nodes"] if n["node_id"] == node.node_id]
            assert mine["alive"] is True
            page = web.get("/busy").text
            assert jid in page and "tests.jobs.Doze" in page and node.node_id in page
    finally:
        node.stop()


def test_cli_refuses_an_open_bind_without_auth(capsys: pytest.CaptureFixture[str]) -> None:
    """Binding beyond loopback with no credentials exits 2 saying how to give them."""
    assert main(["web", "--bind", "0.0.0.0:9999"]) == 2
    err = capsys.readouterr().err
    assert "VERK_WEB_TOKEN" in err and "--basic USER:PASS" in err and "127.0.0.1" in err


def test_cli_without_the_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without uvicorn (the web extra), ``web`` says which pip command installs it."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["web"]) == 1
    assert "pip install 'verk_actors[web]'" in capsys.readouterr().err


def test_cli_serves_the_dashboard(redis_server: RedisServer) -> None:
    """``verk-actors web`` serves pages over HTTP with uvicorn until stopped."""
    import httpx2 as httpx

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "verk_actors",
            "web",
            "--bind",
            f"127.0.0.1:{port}",
            "--redis-url",
            redis_server.url,
            "--read-only",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def up() -> Any:
            """the dashboard answers"""
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/stats", timeout=1).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None

        wait_for(up, timeout=20, every=0.1)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert httpx.get(f"http://127.0.0.1:{port}/queues", timeout=5).status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in out and "(read-only)" in out


def test_busy_lists_sidekiq_processes_too(r: redis.Redis, web: TestClient) -> None:
    """A Ruby Sidekiq process on the same Redis, as Sidekiq writes it, is on Busy with
    its running job; a member whose hash expired is left out."""
    identity = "worker-1:4242:0123456789ab"
    info = {
        "hostname": "worker-1",
        "pid": 4242,
        "tag": "shop",
        "concurrency": 10,
        "queues": ["default", "mail"],
        "labels": [],
        "started_at": time.time() - 3600,
        "identity": identity,
    }
    r.sadd("processes", identity, "gone:1:x")
    r.hset(
        identity,
        mapping={
            "info": json.dumps(info),
            "busy": 1,
            "beat": time.time(),
            "quiet": "true",
            "rss": 123456,
        },
    )
    payload = job_text(**{"class": "HardWorker"}, args=[XSS[0]])
    r.hset(
        f"{identity}:workers",
        "tid-1",
        json.dumps({"queue": "mail", "payload": payload, "run_at": int(time.time()) - 7}),
    )
    data = web.get("/api/busy").json()
    [process] = data["processes"]
    assert process["kind"] == "sidekiq" and process["quiet"] is True
    assert (process["concurrency"], process["rss_kb"], process["queues"]) == (
        10,
        123456,
        ["default", "mail"],
    )
    [work] = data["running"]
    assert (work["class"], work["queue"], work["thread"]) == ("HardWorker", "mail", "tid-1")
    assert work["runtime"] >= 7
    page = web.get("/busy").text
    assert "worker-1:4242" in page and "quiet" in page and XSS[0] not in page


def test_metrics_shows_the_cluster_as_redis_counts_it(
    r: redis.Redis, web: TestClient, redis_server: RedisServer
) -> None:
    """/metrics serves Prometheus text whose counters, queue sizes, pause and sets equal
    what Redis holds, and a live node's workers; it is behind the same auth as pages."""
    from prometheus_client.parser import text_string_to_metric_families

    from verk_actors.store.admin.pause import pause_queue

    r.set("stat:processed", 41)
    r.set("stat:failed", 3)
    r.set("stat:processed:default", 40)
    for n in range(3):
        enqueue(r, args=[n])
    enqueue(r, queue="held")
    pause_queue(r, "held")
    add_to_set(r, "retry", time.time() + 60, **failed_fields(1))
    add_to_set(r, "dead", time.time(), **failed_fields(25))
    add_to_set(r, "dead", time.time() + 1, **failed_fields(25))
    for identity, tag, busy, quiet in (
        ("h:1:a", "", 2, "false"),
        ("h:2:b", "verk_actors", 1, "true"),
    ):
        r.sadd("processes", identity)
        info = json.dumps({"hostname": "h", "tag": tag, "concurrency": 10, "queues": ["default"]})
        r.hset(identity, mapping={"info": info, "busy": busy, "beat": time.time(), "quiet": quiet})
    reply = web.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }
    assert samples[("verk_cluster_jobs_total", (("outcome", "processed"),))] == 41
    assert samples[("verk_cluster_jobs_total", (("outcome", "failed"),))] == 3
    assert (
        samples[("verk_cluster_queue_jobs_total", (("outcome", "processed"), ("queue", "default")))]
        == 40
    )
    assert samples[("verk_cluster_queue_size", (("queue", "default"),))] == 3
    assert samples[("verk_cluster_queue_latency_seconds", (("queue", "default"),))] >= 5
    assert samples[("verk_cluster_queue_paused", (("queue", "held"),))] == 1
    assert samples[("verk_cluster_queue_paused", (("queue", "default"),))] == 0
    assert samples[("verk_cluster_set_size", (("set", "retry"),))] == 1
    assert samples[("verk_cluster_set_size", (("set", "dead"),))] == 2
    assert samples[("verk_cluster_workers", (("kind", "sidekiq"), ("state", "busy")))] == 2
    assert samples[("verk_cluster_workers", (("kind", "verk_actors"), ("state", "total")))] == 10
    assert samples[("verk_cluster_processes", (("kind", "verk_actors"), ("state", "quiet")))] == 1
    assert samples[("verk_cluster_processes", (("kind", "sidekiq"), ("state", "running")))] == 1
    guarded = create_app(redis_server.url, auth=Auth(token="s3cret-token"))
    with TestClient(guarded) as client:
        assert client.get("/metrics").status_code == 401
        authed = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert authed.status_code == 200 and "verk_cluster_jobs_total" in authed.text
