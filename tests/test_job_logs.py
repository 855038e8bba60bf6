"""Job logs: start and end lines, JSON lines, and the job attached to records logged
inside ``perform``, from a real ``verk-actors start``."""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Client, ConfigurationError, Settings
from verk_actors.config.log_format import JsonFormatter, TextFormatter
from verk_actors.jobs.job_log import CURRENT_JOB, attach_job_to_records


def _json_lines(node: NodeProcess) -> list[dict]:
    out = []
    for line in list(node.lines):
        if line.startswith("{"):
            out.append(json.loads(line))  # every JSON line parses
    return out


def _node(redis_server, *args: str) -> NodeProcess:
    return NodeProcess(
        "--redis-url",
        redis_server.url,
        "--import",
        "tests.obs_jobs",
        "--queue",
        "default=2",
        *args,
    ).start()


def test_json_job_lines_carry_the_job_fields(redis_server, r) -> None:
    """With --log-format json --job-logs, every stderr line is JSON; each job has a start
    and an end line with jid, class, queue, duration and outcome; a record logged inside
    perform carries the jid."""
    node = _node(redis_server, "--log-format", "json", "--job-logs")
    try:
        with Client(url=redis_server.url) as client:
            ok = client.enqueue("Chatty", redis_server.url, "chatty")
            bad = client.enqueue("Fail", redis_server.url, "fails", "x", retry=False)
        wait_for(lambda: r.llen("chatty") == 1 and r.zcard("dead") == 1)
        wait_for(lambda: len([d for d in _json_lines(node) if d.get("outcome")]) == 2)
        assert all(line.startswith("{") for line in node.lines if line.strip())
        lines = _json_lines(node)
        mine = [d for d in lines if d.get("jid") == ok]
        start, inside, done = (
            next(d for d in mine if d["message"] == "start"),
            next(d for d in mine if d["message"].startswith("inside perform")),
            next(d for d in mine if d.get("outcome")),
        )
        for line in (start, inside, done):
            assert (line["class"], line["queue"]) == ("Chatty", "default")
        assert start["logger"] == "verk_actors.jobs.job_log"
        assert inside["logger"] == "tests.obs_jobs" and inside["level"] == "WARNING"
        assert done["outcome"] == "done" and 0 <= done["duration"] < 5
        (failed,) = [d for d in lines if d.get("jid") == bad and d.get("outcome")]
        assert (failed["class"], failed["outcome"]) == ("Fail", "dead")
        assert "ValueError: boom x" in failed["message"]
        assert {"time", "level", "pid"} <= failed.keys()
    finally:
        node.terminate()


def test_text_format_shows_the_jid_of_records_inside_perform(redis_server, r) -> None:
    """In the text format (job lines off), a record logged inside perform ends with the
    job's jid, class and queue; no start or end lines are logged."""
    node = _node(redis_server)
    try:
        with Client(url=redis_server.url) as client:
            jid = client.enqueue("Chatty", redis_server.url, "chatty")
        wait_for(lambda: r.llen("chatty") == 1)
        line = node.wait_for_line("inside perform chatty")
        assert line.endswith(f"[jid={jid} class=Chatty queue=default]")
        assert not [x for x in node.lines if "verk_actors.jobs.job_log" in x]
    finally:
        node.terminate()


class _Ids:
    jid, class_name, queue = "abc", "Klass", "q"


def test_formatters_and_record_factory_in_process() -> None:
    """Records made while a job is current carry it; both formatters show it, and a
    record outside a job has none of it."""
    attach_job_to_records()
    attach_job_to_records()  # once per process, however often called
    logger = logging.getLogger("tests.job_logs")
    token = CURRENT_JOB.set(_Ids())
    try:
        inside = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "hi", None, None)
    finally:
        CURRENT_JOB.reset(token)
    outside = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "ho", None, None)
    data = json.loads(JsonFormatter().format(inside))
    assert (data["jid"], data["class"], data["queue"], data["message"]) == (
        "abc",
        "Klass",
        "q",
        "hi",
    )
    assert "jid" not in json.loads(JsonFormatter().format(outside))
    assert TextFormatter().format(inside).endswith("hi [jid=abc class=Klass queue=q]")
    assert TextFormatter().format(outside).endswith("ho")


def test_log_settings_are_checked() -> None:
    """log_format is text or json; job_logs reads true/false words from a variable."""
    with pytest.raises(ConfigurationError, match="text, json"):
        Settings(log_format="yaml")
    assert Settings.from_env({"VERK_JOB_LOGS": "yes"}).job_logs is True
    assert Settings.from_env({"VERK_JOB_LOGS": "off"}).job_logs is False
    with pytest.raises(ConfigurationError, match="VERK_JOB_LOGS"):
        Settings.from_env({"VERK_JOB_LOGS": "maybe"})
