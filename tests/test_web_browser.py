"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium), with a live node: click through every page, retry a dead job and
see it run, pause a queue and see the node stop taking from it, and check that job
data never runs as script. Screenshots of each page go to tests/artifacts/web/."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import IN_CI, Node, wait_for
from tests.ops_data import add_to_set, failed_fields, job_text
from tests.servers import RedisServer, apt_install, free_port
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.web import create_app

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "web"
XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
WAIT = 15


def _installed() -> tuple[str, str] | None:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installed from Debian when missing."""
    found = _installed()
    if found is None and apt_install("chromium", "chromium-driver"):
        found = _installed()
    if found is None:
        if IN_CI:
            pytest.fail(
                "chromium and chromium-driver are missing and apt-get could not install them"
            )
        pytest.skip("chromium and chromium-driver are missing and cannot be installed here")
    return found


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[webdriver.Chrome]:
    """A headless Chromium, quit after the test (with every process it started)."""
    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--disable-gpu",
        "--no-first-run",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromium[1]))
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture
def dashboard(redis_server: RedisServer) -> Iterator[str]:
    """The dashboard served by uvicorn in a thread on a free port; its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(redis_server.url),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=2,  # the dashboard's event stream never ends by itself
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def shot(driver: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def no_script_ran(driver: webdriver.Chrome) -> None:
    """No alert is open and no element of a payload made it into the page."""
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - raises when there is none
    assert driver.find_elements(By.CSS_SELECTOR, "img[src='x'], img[onerror]") == []
    inline = [s for s in driver.find_elements(By.TAG_NAME, "script") if not s.get_attribute("src")]
    assert inline == []


def visit(driver: webdriver.Chrome, url: str, ready: str) -> None:
    driver.get(url)
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))


def record_job(url: str, key: str, token: str, **fields: Any) -> str:
    return job_text(**{"class": "tests.jobs.Record"}, args=[url, key, token], **fields)


def test_every_page_with_a_live_node(
    browser: webdriver.Chrome,
    dashboard: str,
    start_verk: Callable[..., Node],
    r: redis.Redis,
    redis_server: RedisServer,
) -> None:
    """Every page renders with a live node and hostile job data, runs no injected
    script, and the dashboard's live figure polls the API."""
    node = start_verk(queues=(QueueSpec("default", 2), QueueSpec("idle", 1)))
    try:
        r.sadd("queues", "default", "idle")
        r.lpush("queue:default", job_text(**{"class": "tests.jobs.Doze"}, args=[8]))
        r.lpush("queue:idle", *(job_text(args=[*XSS, "x" * (1 << 20)]) for _ in range(3)))
        r.sadd("verk:paused", "idle")
        for i, payload in enumerate(XSS):
            add_to_set(
                r,
                "retry",
                time.time() + 600 + i,
                args=[payload],
                **failed_fields(2, error_message=payload, error_class=XSS[1]),
            )
            add_to_set(r, "schedule", time.time() + 900 + i, args=[payload])
            add_to_set(
                r,
                "dead",
                time.time() - i,
                args=[payload, "y" * (1 << 20)],
                **failed_fields(25, error_message=payload, error_backtrace=[payload]),
            )

        def busy() -> bool:
            """the node's Sidekiq process entry shows the Doze job running"""
            return any(r.hlen(f"{m.decode()}:workers") for m in r.smembers("processes"))

        wait_for(busy, timeout=20)

        visit(browser, dashboard + "/", "#totals")
        WebDriverWait(browser, WAIT).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-polled")
        )
        assert browser.find_element(By.CSS_SELECTOR, "[data-total=retries]").text == "2"
        no_script_ran(browser)
        shot(browser, "dashboard")

        visit(browser, dashboard + "/busy", "#running")
        assert "tests.jobs.Doze" in browser.find_element(By.ID, "running").text
        assert node.node_id in browser.page_source
        shot(browser, "busy")

        visit(browser, dashboard + "/queues", "#queues")
        shot(browser, "queues")
        browser.find_element(By.LINK_TEXT, "idle").click()
        WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.ID, "jobs")))
        no_script_ran(browser)
        assert (
            "&lt;script&gt;" in browser.page_source
            or XSS[0] in browser.find_element(By.ID, "jobs").text
        )
        shot(browser, "queue")

        for page in ("retries", "scheduled", "dead"):
            visit(browser, f"{dashboard}/{page}", "#entries")
            no_script_ran(browser)
            assert XSS[0] in browser.find_element(By.ID, "entries").text
            shot(browser, page)
        browser.find_element(By.CSS_SELECTOR, "#entries a").click()
        WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.ID, "fields")))
        no_script_ran(browser)
        assert browser.find_element(By.ID, "backtrace").text.strip() in XSS
        shot(browser, "dead-job")

        visit(browser, f"{dashboard}/retries?q=script", "#entries")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#entries input[name=key]")) == 1
        browser.find_element(By.ID, "select-all").click()
        boxes = browser.find_elements(By.CSS_SELECTOR, "#entries input[name=key]")
        assert all(box.is_selected() for box in boxes)
        shot(browser, "retries-filtered")
    finally:
        node.stop()


def test_retry_a_dead_job_from_its_page_and_see_it_run(
    browser: webdriver.Chrome,
    dashboard: str,
    start_verk: Callable[..., Node],
    r: redis.Redis,
    redis_server: RedisServer,
) -> None:
    """Open a dead job's page, press Retry now: the node runs it."""
    node = start_verk()
    try:
        text = record_job(redis_server.url, "ran", "dead-one", **failed_fields(25))
        r.zadd("dead", {text: time.time() - 30})
        visit(browser, dashboard + "/dead", "#entries")
        browser.find_element(By.CSS_SELECTOR, "#entries a").click()
        WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.ID, "fields")))
        assert json.loads(text)["jid"] in browser.find_element(By.TAG_NAME, "h1").text
        browser.find_element(By.CSS_SELECTOR, "#entry-actions button[value=retry]").click()
        WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.CLASS_NAME, "flash")))
        assert "Retried 1 job" in browser.find_element(By.CLASS_NAME, "flash").text
        assert wait_for(lambda: r.lrange("ran", 0, -1), timeout=20) == [b"dead-one"]
        assert r.zcard("dead") == 0
    finally:
        node.stop()


def test_pause_a_queue_from_the_queues_page_and_the_node_stops_taking_it(
    browser: webdriver.Chrome,
    dashboard: str,
    start_verk: Callable[..., Node],
    r: redis.Redis,
    redis_server: RedisServer,
) -> None:
    """Pause on the Queues page: jobs enqueued then stay put; Resume: they run."""
    node = start_verk()
    try:
        r.sadd("queues", "default")
        visit(browser, dashboard + "/queues", "#queues")
        browser.find_element(By.CSS_SELECTOR, "tr[data-queue=default] button[value=pause]").click()
        WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.CLASS_NAME, "flash")))
        assert "paused" in browser.find_element(By.CSS_SELECTOR, "tr[data-queue=default]").text
        assert r.sismember("verk:paused", "default")
        r.lpush("queue:default", record_job(redis_server.url, "ran", "paused-one"))
        deadline = time.monotonic() + 2  # several polls and waits of the node's workers
        while time.monotonic() < deadline:
            assert r.llen("queue:default") == 1 and r.llen("ran") == 0
            time.sleep(0.1)
        shot(browser, "queues-paused")
        browser.find_element(By.CSS_SELECTOR, "tr[data-queue=default] button[value=resume]").click()
        WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.CLASS_NAME, "flash")))
        assert wait_for(lambda: r.lrange("ran", 0, -1), timeout=20) == [b"paused-one"]
    finally:
        node.stop()


def test_a_batch_run_by_a_live_node_on_the_batches_pages(
    browser: webdriver.Chrome,
    dashboard: str,
    start_verk: Callable[..., Node],
    r: redis.Redis,
    redis_server: RedisServer,
) -> None:
    """A node runs a batch with a job that dies: the Batches page shows it complete with
    a failure, its page names the failing job, and its hostile description runs no
    script."""
    from tests.batch_jobs import Callback, Hopeless, Row
    from verk_actors import Batch

    url = redis_server.url
    node = start_verk(imports=("tests.batch_jobs",))
    try:
        with Batch(url=url, description=XSS[1], on_complete=(Callback, {"url": url})) as batch:
            batch.enqueue_many(Row, [(url, n) for n in range(20)])
            dying = batch.enqueue(Hopeless, url)
        wait_for(lambda: r.llen("batch-test:callbacks") == 1, timeout=30)
        visit(browser, dashboard + "/batches", "#batches")
        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-bid='{batch.bid}']")
        assert "complete, with failures" in row.text
        assert XSS[1] in row.text
        no_script_ran(browser)
        shot(browser, "batches")
        browser.find_element(By.LINK_TEXT, batch.bid).click()
        WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.ID, "failed")))
        assert browser.find_element(By.ID, "failed").text.strip() == dying
        assert browser.find_element(By.ID, "state").text == "complete"
        no_script_ran(browser)
        shot(browser, "batch")
    finally:
        node.stop()


def test_cron_and_limits_pages_in_the_browser(
    browser: webdriver.Chrome, dashboard: str, r: redis.Redis, redis_server: RedisServer
) -> None:
    """The Cron and Limits pages render entries with hostile args and names, and run no
    injected script."""
    from verk_actors import Concurrent
    from verk_actors.jobs.cron import CronEntry
    from verk_actors.store.cron import CronStore
    from verk_actors.store.scripts import Scripts

    store = CronStore(
        redis_server.url, "node-b", [CronEntry("nightly", "Report", "0 3 * * *", args=XSS)]
    )
    try:
        store.poll(time.time())
    finally:
        store.close()
    Scripts(r).limit_take(r, Concurrent("<img/src=x/onerror=alert(1)>", 2), "jid-1@n/1.1", 30)
    visit(browser, dashboard + "/cron", "#cron")
    assert "nightly" in browser.find_element(By.ID, "cron").text
    assert XSS[0] in browser.find_element(By.ID, "cron").text
    no_script_ran(browser)
    shot(browser, "cron")
    visit(browser, dashboard + "/limits", "#limits")
    assert "jid-1" in browser.find_element(By.ID, "limits").text
    no_script_ran(browser)
    shot(browser, "limits")
