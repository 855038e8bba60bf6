"""The Redis failure policy: which replies are transient, and what the log says of an outage."""

from __future__ import annotations

import logging
import re
import select
import time

import pytest
import redis
from redis._parsers.base import BaseParser

from tests.servers import RedisServer
from verk_actors.store.failures import REMIND_EVERY, Outage, describe, is_transient, reply_code
from verk_actors.store.job_wait import WAITING, JobWait
from verk_actors.store.scripts import Scripts


def _raised(call) -> BaseException:
    with pytest.raises(redis.RedisError) as info:
        call()
    return info.value


def test_out_of_memory_replies_are_transient_however_they_come(redis_server, r) -> None:
    """OOM from a command, a pipeline in MULTI and a Lua script is transient."""
    scripts = Scripts(r)
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", 1)
    try:
        errors = [
            _raised(lambda: r.sadd("s", "x")),
            _raised(lambda: r.pipeline(transaction=True).sadd("s", "x").execute()),
            _raised(lambda: scripts.renew_lease(r, "gone", "epoch", 1.5)),  # SET in Lua
            _raised(lambda: r.blmove("queue:q", "inprogress:q:n", 0.1, "RIGHT", "LEFT")),
        ]
    finally:
        r.config_set("maxmemory", 0)
    for exc in errors:
        assert reply_code(exc) == "OOM", exc
        assert is_transient(exc)
        assert describe(exc).startswith("OOM")


def test_a_replica_refusing_writes_is_transient(redis_server, r) -> None:
    """READONLY (a replica, as after a failover) is transient."""
    replica = RedisServer().start()
    try:
        client = replica.client()
        client.replicaof("127.0.0.1", redis_server.port)
        exc = _raised(lambda: client.set("k", "v"))
        client.close()
    finally:
        replica.cleanup()
    assert reply_code(exc) == "READONLY"
    assert is_transient(exc)


def test_refused_connection_is_transient() -> None:
    """A server that is not running is transient trouble."""
    server = RedisServer()  # never started: nothing listens on its port
    client = redis.Redis.from_url(server.url, socket_connect_timeout=1)
    exc = _raised(client.ping)
    assert is_transient(exc)
    assert reply_code(exc) is None


def test_wrong_type_no_permission_and_script_errors_are_permanent(redis_server, r) -> None:
    """WRONGTYPE, NOPERM and an error raised by a script are permanent."""
    r.set("queue:q", "not a list")
    wrongtype = _raised(lambda: r.lpush("queue:q", "job"))
    r.acl_setuser("limited", enabled=True, passwords=["+pw"], keys=["*"], commands=["+get"])
    limited = redis.Redis(
        host="127.0.0.1", port=redis_server.port, username="limited", password="pw"
    )
    noperm = _raised(lambda: limited.set("k", "v"))
    limited.close()
    scripted = _raised(lambda: r.eval("return redis.error_reply('BROKEN it is')", 0))
    assert [reply_code(e) for e in (wrongtype, noperm, scripted)] == [
        "WRONGTYPE",
        "NOPERM",
        "BROKEN",
    ]
    assert not any(is_transient(e) for e in (wrongtype, noperm, scripted))


@pytest.mark.parametrize(
    ("reply", "code", "transient"),
    [
        ("BUSY Redis is busy running a script. You can only call SCRIPT KILL", "BUSY", True),
        ("MISCONF Redis is configured to save RDB snapshots, but it's unable", "MISCONF", True),
        ("LOADING Redis is loading the dataset in memory", "LOADING", True),
        ("TRYAGAIN Multiple keys request during rehashing of slot", "TRYAGAIN", True),
        ("CLUSTERDOWN The cluster is down", "CLUSTERDOWN", True),
        (
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is no",
            "MASTERDOWN",
            True,
        ),
        ("NOREPLICAS Not enough good replicas to write.", "NOREPLICAS", True),
        (
            "ERR Error running script (call to f_0123): @user_script:1: @user_script: 1: "
            "-OOM command not allowed when used memory > 'maxmemory'.",
            "OOM",
            True,
        ),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", "WRONGTYPE", False),
        ("ERR unknown command 'BLMOVE'", "ERR", False),
    ],
)
def test_error_replies_read_off_the_wire_are_classified(
    reply: str, code: str, transient: bool
) -> None:
    """Replies hard to provoke in a test (a 5 s script, a failing disk, a cluster, Redis 6's
    wrapping of script errors), parsed by redis-py as it parses them off the socket."""
    exc = BaseParser.parse_error(reply)
    assert reply_code(exc) == code
    assert is_transient(exc) is transient


def test_an_outage_is_logged_once_reminded_and_closed(caplog) -> None:
    """The node's voice: one warning when failures start (whatever transient reply
    follows), reminders saying how long (every 10 s in the first minute, then every
    minute), one line when Redis answers; a permanent error in between is an error, once."""
    log = logging.getLogger("test.outage")
    outage = Outage(log, "node a", "redis://host:6379/0", speaks_for_node=True)
    busy = BaseParser.parse_error("BUSY Redis is busy running a script.")
    loading = BaseParser.parse_error("LOADING Redis is loading the dataset in memory")
    wrong = BaseParser.parse_error("WRONGTYPE Operation against a key holding the wrong kind")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for second in range(0, int(REMIND_EVERY * 2.5), 2):
            outage.failed(busy if second < 100 else loading, "moving due jobs", now=1000.0 + second)
        outage.failed(wrong, "moving due jobs", now=1000.0 + REMIND_EVERY * 2.5)
        outage.failed(wrong, "moving due jobs", now=1001.0 + REMIND_EVERY * 2.5)
        outage.ok(now=1003.0 + REMIND_EVERY * 2.5)
        outage.ok(now=1004.0 + REMIND_EVERY * 2.5)
    lines = [(rec.levelname, rec.getMessage()) for rec in caplog.records]
    assert [level for level, _ in lines] == ["WARNING"] * 8 + ["ERROR", "INFO"]
    assert "unavailable while moving due jobs (BUSY" in lines[0][1]
    waited = [int(m[1]) for _, text in lines if (m := re.search(r"after (\d+) s", text))]
    assert waited == [10, 20, 30, 40, 50, 60, 120]
    assert "last while moving due jobs: LOADING" in lines[7][1]
    assert "refused a command while moving due jobs (WRONGTYPE" in lines[8][1]
    assert "answers again after 153.0 s (77 failed tries)" in lines[9][1]
    assert not outage.active


def test_other_actors_leave_a_transient_outage_to_the_node(caplog) -> None:
    """An actor that does not speak for the node logs a transient outage at DEBUG only
    (one line per outage for the whole node, not one per actor), but a permanent error
    at ERROR, and then also when Redis answers again."""
    log = logging.getLogger("test.outage.quiet")
    outage = Outage(log, "queue default", "redis://host:6379/0")
    refused = redis.ConnectionError("Error 111 connecting. Connection refused.")
    wrong = BaseParser.parse_error("WRONGTYPE Operation against a key holding the wrong kind")
    with caplog.at_level(logging.DEBUG, logger="test.outage.quiet"):
        for second in range(0, 130, 2):
            outage.failed(refused, "taking jobs", now=1000.0 + second)
        outage.ok(now=1130.0)
        outage.failed(wrong, "taking jobs", now=1200.0)
        outage.ok(now=1201.0)
    levels = [rec.levelname for rec in caplog.records]
    assert levels == ["DEBUG"] * 9 + ["ERROR", "INFO"]


def test_wait_refused_at_its_start_can_still_be_interrupted_later(redis_server, r) -> None:
    """A blocking wait whose CLIENT ID was refused (an error reply) starts afresh next
    time, so its BLMOVE can be interrupted at once instead of running out."""
    r.acl_setuser(
        "waiter", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-client|id"]
    )
    url = f"redis://waiter:pw@127.0.0.1:{redis_server.port}/0"
    wait = JobWait(url, "q", "n", name="verk:test:wait", control=r)
    try:
        refused = _raised(wait.start)
        assert reply_code(refused) == "NOPERM"
        r.acl_setuser("waiter", enabled=True, commands=["+client|id"])
        fd = wait.start()
        began = time.monotonic()
        wait.interrupt()
        answer = WAITING
        while not answer.done:
            ready, _, _ = select.select([fd], [], [], 5)
            assert ready
            answer = wait.finish()
        assert answer.job is None and not answer.paused
        assert time.monotonic() - began < 1.0, "the BLMOVE ran out instead"
    finally:
        wait.close()
