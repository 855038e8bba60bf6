"""Redis away at start or mid-run: the node waits, reconnects, and loses nothing."""

from __future__ import annotations

import collections
import time

from tests.conftest import node_settings, wait_for
from tests.servers import RedisServer
from verk_actors import Client
from verk_actors.actors.messages import GetStatus, VerkStatus
from verk_actors.actors.system import start_node


def test_node_started_while_redis_is_down_starts_working_when_it_comes_up(asys) -> None:
    """With Redis down at start the node waits and retries, then runs the jobs."""
    server = RedisServer(persist=True)
    try:
        settings = node_settings(server.url)
        root, started = start_node(asys, settings)
        time.sleep(1.5)
        status = asys.ask(root, GetStatus(), 5)
        assert isinstance(status, VerkStatus) and status.running
        server.start()
        with Client(url=server.url) as client:
            client.enqueue_many("Record", ([server.url, "ran", i] for i in range(20)))
        r = server.client()
        wait_for(lambda: r.llen("ran") == 20, timeout=20)
        wait_for(lambda: r.exists(f"verk:node:{started.node_id}"), timeout=10)
        r.close()
    finally:
        server.cleanup()


def test_redis_restarted_mid_run_loses_no_job(asys) -> None:
    """Redis stopped for 3 s mid-run and restarted (AOF on): every job still runs."""
    server = RedisServer(persist=True).start()
    try:
        settings = node_settings(server.url)
        root, started = start_node(asys, settings)

        def ends() -> set[bytes]:
            return {x for x in r.lrange("log", 0, -1) if x.startswith(b"end:")}

        with Client(url=server.url) as client:
            client.enqueue_many("Sleep", ([server.url, "log", i, 0.01] for i in range(300)))
        r = server.client()
        wait_for(lambda: r.llen("log") >= 100)
        server.stop()
        time.sleep(3)
        server.start()
        r = server.client()
        r.script_flush()  # a fresh server knows no scripts: NOSCRIPT must be handled

        def all_ended() -> bool:
            # Jobs running when Redis went away failed on their own Redis calls and
            # went to retry: make those retries due now instead of in 18-76 s.
            for text in r.zrange("retry", 0, -1):
                r.zadd("retry", {text: 0}, xx=True)
            return len(ends()) >= 300

        wait_for(all_ended, timeout=60)
        wait_for(lambda: not r.exists(f"inprogress:default:{started.node_id}"), timeout=20)
        assert r.llen("queue:default") == 0
        counts = collections.Counter(ends())
        assert len(counts) == 300
        status = asys.ask(root, GetStatus(), 5)
        assert isinstance(status, VerkStatus) and status.running
        assert all(q.restarts == 0 for q in status.queues), "no actor should have died"
        with Client(url=server.url) as client:
            client.enqueue("Record", server.url, "after", 1)
        wait_for(lambda: r.llen("after") == 1, timeout=10)
        r.close()
    finally:
        server.cleanup()
