"""The dashboard's Batches and Limits pages and their API against a real Redis:
progress, state, failing jids, limiters' holders, escaping, 404 for an unknown batch."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from starlette.testclient import TestClient

from tests.batch_jobs import Callback, Row
from tests.servers import RedisServer
from verk_actors import Batch
from verk_actors.jobs.batch import FAILED, SUCCEEDED
from verk_actors.store.client import Client
from verk_actors.store.scripts import Scripts
from verk_actors.web import create_app

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


@pytest.fixture
def web(redis_server: RedisServer) -> Iterator[TestClient]:
    """A test client of a dashboard on the test's Redis."""
    with TestClient(create_app(redis_server.url)) as client:
        yield client


def test_batches_list_and_detail_show_progress_and_failures(
    r: redis.Redis, web: TestClient
) -> None:
    """The list shows each batch's jobs, pending and state; a batch's page lists the
    failing jids; both escape the description; the API says the same."""
    with Batch(Client(r), description=XSS, on_success=Callback) as batch:
        jids = batch.enqueue_many(Row, [("u", n) for n in range(4)])
    scripts = Scripts(r)
    scripts.batch_update(
        r, {(batch.bid, jids[0]): SUCCEEDED, (batch.bid, jids[1]): FAILED}, now=time.time(), keep=60
    )
    [row] = web.get("/api/batches").json()["batches"]
    assert (row["bid"], row["total"], row["pending"], row["failures"], row["state"]) == (
        batch.bid,
        4,
        3,
        1,
        "running",
    )
    assert row["percent"] == 25
    page = web.get("/batches").text
    assert batch.bid in page and XSS not in page and "&lt;script&gt;" in page
    detail = web.get(f"/api/batches/{batch.bid}").json()
    assert detail["failed"] == [jids[1]]
    assert sorted(detail["pending"]) == sorted(jids[1:])
    html = web.get(f"/batches/{batch.bid}").text
    assert jids[1] in html and XSS not in html
    assert web.get("/batches/nope").status_code == 404
    assert web.get("/api/batches/nope").status_code == 404


def test_a_finished_batch_reads_succeeded(r: redis.Redis, web: TestClient) -> None:
    """Once every job succeeded the batch reads succeeded with both callbacks fired."""
    with Batch(Client(r), on_complete=Callback, on_success=Callback) as batch:
        [jid] = batch.enqueue_many(Row, [("u", 1)])
    Scripts(r).batch_update(r, {(batch.bid, jid): SUCCEEDED}, now=time.time(), keep=60)
    detail = web.get(f"/api/batches/{batch.bid}").json()
    assert detail["batch"]["state"] == "succeeded"
    assert detail["batch"]["fired"] == ["complete", "success"]
    assert detail["pending"] == [] and detail["failed"] == []


def test_the_limits_page_shows_each_limiter_and_its_holders(
    r: redis.Redis, web: TestClient
) -> None:
    """Limiters taken in Redis show with their rule, use and holders, on the page and in
    its API, with names escaped."""
    from verk_actors import Concurrent, Window

    scripts = Scripts(r)
    name = "<script>alert(1)</script>"  # a word: limiter names have no spaces
    api = Concurrent(name, 2)
    assert scripts.limit_take(r, api, "jid-a@node-1/7.1", 30) is None
    assert scripts.limit_take(r, Window("mail", 10, per=60), "jid-b@node-2/8.1", 0) is None
    found = {entry["name"]: entry for entry in web.get("/api/limits").json()["limits"]}
    assert found[name]["kind"] == "concurrent" and found[name]["in_use"] == 1
    assert found[name]["holders"][0]["jid"] == "jid-a"
    assert found[name]["holders"][0]["node"] == "node-1"
    assert (found["mail"]["kind"], found["mail"]["limit"], found["mail"]["per"]) == (
        "window",
        10,
        60,
    )
    page = web.get("/limits").text
    assert "jid-a" in page and "10 per" in page
    assert name not in page and "&lt;script&gt;" in page


def test_the_cron_page_shows_each_entry_with_its_runs(
    redis_server: RedisServer, r: redis.Redis, web: TestClient
) -> None:
    """An entry a node published shows with its schedule, next and last run and last jid,
    on the page and in its API, its args escaped."""
    from verk_actors.jobs.cron import CronEntry
    from verk_actors.store.cron import CronStore

    entry = CronEntry("nightly", "Report", "*/5 * * * * *", args=(XSS,))
    store = CronStore(redis_server.url, "node-c", [entry], "latest")
    try:
        store.poll(time.time() - 10)
        store.poll(time.time())
    finally:
        store.close()
    [shown] = web.get("/api/cron").json()["cron"]
    assert (shown["name"], shown["class"], shown["cron"], shown["args"]) == (
        "nightly",
        "Report",
        "*/5 * * * * *",
        [XSS],
    )
    assert shown["last_jid"] and shown["next_run"] > time.time() - 1
    page = web.get("/cron").text
    assert "nightly" in page and shown["last_jid"] in page
    assert XSS not in page and "&lt;script&gt;" in page
