"""The dashboard's Metrics tab in a real headless Chromium, with a live node that runs
jobs of two classes (one failing): the tab, a window, a class page, and a hostile class
name shown as text. Screenshots go to tests/artifacts/web/ (as test_web_browser's)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Node, wait_for
from tests.ops_data import job_text
from tests.servers import RedisServer
from tests.test_web_browser import (  # the fixtures and helpers of the browser tests
    WAIT,
    XSS,
    browser,
    chromium,
    dashboard,
    no_script_ran,
    shot,
    visit,
)
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.store.metrics_history import SLOTS, HistoryWriter, minute_of

__all__ = ["browser", "chromium", "dashboard"]  # pytest finds the fixtures here


def metrics_rows(driver: webdriver.Chrome) -> dict[str, list[str]]:
    """The rows of the classes table: class -> its cells' text."""
    rows = {}
    for tr in driver.find_elements(By.CSS_SELECTOR, "#metrics-classes tbody tr"):
        cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        if len(cells) > 1:
            rows[cells[0]] = cells
    return rows


def test_the_metrics_tab_and_a_class_page(
    browser: webdriver.Chrome,
    dashboard: str,
    start_verk: Callable[..., Node],
    r: redis.Redis,
    redis_server: RedisServer,
) -> None:
    """A node runs 20 jobs that succeed and 3 that fail: the Metrics tab lists both
    classes with those counts (and over 24 hours too), a click opens a class's page
    with its histogram and per-minute rows, and a hostile class name runs no script."""
    evil = XSS[1] + XSS[0]
    writer = HistoryWriter(redis_server.url, "test")
    writer.write({minute_of(time.time()): {evil: [1.0, 0.0, 2.0] + [0.0] * (SLOTS - 3)}})
    writer.close()
    node = start_verk(queues=(QueueSpec("default", 2),))
    try:
        r.sadd("queues", "default")
        r.lpush(
            "queue:default",
            *(job_text(**{"class": "tests.jobs.Noop"}, args=[i]) for i in range(20)),
            *(
                job_text(**{"class": "tests.jobs.Fail"}, args=[redis_server.url, "f", i], retry=0)
                for i in range(3)
            ),
        )

        def recorded() -> bool:
            """the node wrote the 23 jobs to the history"""
            minutes = r.keys("verk:metrics:m:*")
            done = sum(int(r.hget(k, "tests.jobs.Noop|p") or 0) for k in minutes)
            failed = sum(int(r.hget(k, "tests.jobs.Fail|f") or 0) for k in minutes)
            return (done, failed) == (20, 3)

        wait_for(recorded, timeout=60, every=0.5)

        visit(browser, dashboard + "/", "#totals")
        browser.find_element(By.LINK_TEXT, "Metrics").click()
        WebDriverWait(browser, WAIT).until(
            ec.presence_of_element_located((By.ID, "metrics-classes"))
        )
        rows = metrics_rows(browser)
        assert rows["tests.jobs.Noop"][1:3] == ["20", "0"]
        assert rows["tests.jobs.Fail"][1:3] == ["3", "3"]
        assert evil in rows  # shown as text
        no_script_ran(browser)
        shot(browser, "metrics")

        browser.find_element(By.LINK_TEXT, "24 hours").click()
        WebDriverWait(browser, WAIT).until(ec.url_contains("window=24h"))
        assert metrics_rows(browser)["tests.jobs.Noop"][1] == "20"

        browser.find_element(By.LINK_TEXT, "tests.jobs.Fail").click()
        WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.ID, "histogram")))
        assert browser.find_element(By.ID, "metrics-class").text == "tests.jobs.Fail"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#histogram rect")) == SLOTS - 3
        hours = browser.find_elements(By.CSS_SELECTOR, "#periods tbody tr")
        assert [tr.find_elements(By.TAG_NAME, "td")[1].text for tr in hours] == ["3"]
        shot(browser, "metrics-class-24h")

        browser.find_element(By.LINK_TEXT, "last hour").click()
        WebDriverWait(browser, WAIT).until(ec.url_contains("window=1h"))
        minutes = browser.find_elements(By.CSS_SELECTOR, "#periods tbody tr")
        counts = [int(tr.find_elements(By.TAG_NAME, "td")[1].text) for tr in minutes]
        assert sum(counts) == 3
        shot(browser, "metrics-class")

        visit(browser, dashboard + "/job-metrics", "#metrics-classes")
        browser.find_element(By.PARTIAL_LINK_TEXT, "<img").click()
        WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.ID, "metrics-class")))
        assert browser.find_element(By.ID, "metrics-class").text == evil
        no_script_ran(browser)
    finally:
        node.stop()
