"""A node killed with SIGKILL and started again with the same id loses no job."""

from __future__ import annotations

import collections
import time

from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Client


def test_sigkill_node_restart_same_id_runs_every_job(redis_server, r) -> None:
    """SIGKILL of every node process mid-run; the restarted node finishes every job."""
    args = ("--redis-url", redis_server.url, "--node-id", "n1", "--queue", "default=4")
    first = NodeProcess(*args, "--shutdown-timeout", "3").start()
    with Client(url=redis_server.url) as client:
        client.enqueue_many("Sleep", ([redis_server.url, "log", i, 0.05] for i in range(200)))
    wait_for(lambda: r.llen("log") >= 40, timeout=30)
    killed = first.kill_all()
    assert killed >= 6  # launcher, admin, logger, root, scheduler, queue actors...
    time.sleep(0.5)
    assert r.llen("inprogress:default:n1") > 0, "the kill should leave jobs in progress"
    second = NodeProcess(*args).start()
    wait_for(
        lambda: (
            {x.split(b":")[1] for x in r.lrange("log", 0, -1) if x.startswith(b"end:")}
            >= {str(i).encode() for i in range(200)}
        ),
        timeout=60,
    )
    wait_for(lambda: not r.exists("inprogress:default:n1"), timeout=10)
    assert r.llen("queue:default") == 0
    ends = collections.Counter(x for x in r.lrange("log", 0, -1) if x.startswith(b"end:"))
    assert len(ends) == 200
    assert second.terminate() == 0
    assert "back to the queue" in second.output
