"""The dashboard's live parts in a real headless Chromium with a live node: a node's page
with its published supervision tree (Live poll brings it in), and the dashboard's live
panel of job events (EventSource), where hostile class names and messages stay text.
Screenshots go to tests/artifacts/web/."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import redis
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Node, wait_for
from tests.ops_data import job_text
from tests.test_web_browser import (  # noqa: F401 - fixtures
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


def test_a_node_page_shows_its_live_tree(
    browser: webdriver.Chrome,  # noqa: F811 - the fixture
    dashboard: str,  # noqa: F811 - the fixture
    start_verk: Callable[..., Node],
    r: redis.Redis,
) -> None:
    """From Busy to the node's page; Live poll reloads it until the tree the node
    publishes is there, with one row per worker and pids of processes that run."""
    node = start_verk(queues=(QueueSpec("default", 2),))
    try:
        wait_for(lambda: r.sismember("verk_nodes", node.node_id), timeout=20)
        visit(browser, dashboard + "/busy", "#live-poll")
        browser.find_element(By.LINK_TEXT, node.node_id).click()
        WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.ID, "live-poll"))
        browser.find_element(By.ID, "live-poll").click()
        assert browser.find_element(By.ID, "live-poll").get_attribute("aria-pressed") == "true"

        def tree_with_workers(driver: webdriver.Chrome) -> bool:
            rows = driver.find_elements(By.CSS_SELECTOR, "#tree tr[data-kind=WorkerActor]")
            return len(rows) == 2 and all(row.get_attribute("data-pid") for row in rows)

        WebDriverWait(browser, 30).until(tree_with_workers)
        assert int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-live-polls")) >= 1
        for row in browser.find_elements(By.CSS_SELECTOR, "#tree tr[data-kind=WorkerActor]"):
            os.kill(int(row.get_attribute("data-pid")), 0)  # raises if no such process
        text = browser.find_element(By.ID, "tree").text
        assert "VerkRoot" in text and "one_for_one" in text and "rest_for_one" in text
        shot(browser, "node-tree")
        browser.find_element(By.ID, "live-poll").click()  # pause it again
        assert browser.find_element(By.ID, "live-poll").get_attribute("aria-pressed") == "false"
    finally:
        node.stop()


def test_the_live_panel_shows_job_events_as_text(
    browser: webdriver.Chrome,  # noqa: F811 - the fixture
    dashboard: str,  # noqa: F811 - the fixture
    start_verk: Callable[..., Node],
    r: redis.Redis,
) -> None:
    """The dashboard's live panel, once asked to listen, lists jobs finishing and failing
    as the node runs them; a class name and error made of script and markup show as
    text, never run."""
    node = start_verk(queues=(QueueSpec("default", 2),))
    try:
        visit(browser, dashboard + "/", "#live-events")
        assert browser.find_element(By.ID, "live-events").get_attribute("data-state") is None
        browser.find_element(By.ID, "events-toggle").click()  # off until asked

        def streaming(driver: webdriver.Chrome) -> bool:
            return "node streaming" in driver.find_element(By.ID, "events-rows").text

        WebDriverWait(browser, 30).until(streaming)
        ok = job_text(**{"class": "tests.jobs.Noop"}, args=[XSS[0]])
        hostile = job_text(**{"class": XSS[1]}, args=[XSS[0]], retry=False)
        r.lpush("queue:default", ok, hostile)
        jids = [json.loads(ok)["jid"], json.loads(hostile)["jid"]]

        def both_ended(driver: webdriver.Chrome) -> bool:
            text = driver.find_element(By.ID, "events-rows").text
            return f"finished {node.node_id} default {jids[0]}" in text and (
                f"failed {node.node_id} default {jids[1]}" in text
            )

        WebDriverWait(browser, 30).until(both_ended)
        no_script_ran(browser)
        rows = browser.find_element(By.ID, "events-rows").text
        assert XSS[1] in rows  # the hostile class name, as text
        browser.find_element(By.ID, "live-events").location_once_scrolled_into_view  # noqa: B018
        shot(browser, "live-events")
        browser.find_element(By.ID, "events-toggle").click()
        assert browser.find_element(By.ID, "events-state").text == "paused"
        assert browser.find_element(By.ID, "events-toggle").text == "Listen"
    finally:
        browser.get("about:blank")  # closes the event stream before the server stops
        node.stop()


def test_a_pending_job_page_from_its_queue(
    browser: webdriver.Chrome,  # noqa: F811 - the fixture
    dashboard: str,  # noqa: F811 - the fixture
    r: redis.Redis,
) -> None:
    """A pending job's jid on its queue's page opens its page: every field shown, the
    script and markup in its class and args as text, none of it run."""
    text = job_text(**{"class": XSS[1]}, args=[XSS[0], {"nested": XSS[1]}], tags=["t"])
    r.sadd("queues", "default")
    r.lpush("queue:default", text)
    visit(browser, dashboard + "/queues/default", "#jobs")
    browser.find_element(By.LINK_TEXT, json.loads(text)["jid"]).click()
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.ID, "fields"))
    no_script_ran(browser)
    fields = browser.find_element(By.ID, "fields").text
    assert XSS[0] in fields and XSS[1] in fields and "tags" in fields
    shot(browser, "pending-job")
