"""Sidekiq 6.4's own API quiets and stops a verk_actors node: ``Sidekiq::Process#quiet!``
and ``#stop!``, what the Quiet and Stop buttons of Sidekiq's Web call."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import IN_CI, wait_for
from tests.interop.sidekiq import SidekiqUnavailableError, ensure_sidekiq, run_ruby
from tests.nodeproc import NodeProcess
from verk_actors import Client

pytestmark = pytest.mark.interop

HEARTBEAT = 0.5

SIGNAL_RB = """
procs = Sidekiq::ProcessSet.new.select { |p| p["identity"].end_with?(":" + INPUT["node"]) }
procs.each { |p| INPUT["action"] == "quiet" ? p.quiet! : p.stop! }
emit({"signalled" => procs.map { |p| p["identity"] }})
"""

READ_RB = """
p = Sidekiq::ProcessSet.new.find { |p| p["identity"].end_with?(":" + INPUT["node"]) }
emit(p && {"quiet" => p["quiet"], "stopping" => p.stopping?})
"""


@pytest.fixture
def sidekiq_url(redis_server) -> str:
    try:
        ensure_sidekiq()
    except SidekiqUnavailableError as exc:
        reason = f"Ruby Sidekiq 6.x is needed for the interoperability tests: {exc}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return str(redis_server.url)


def test_sidekiq_api_quiets_then_stops_a_node(sidekiq_url: str, r: redis.Redis) -> None:
    """quiet!: Sidekiq then sees the node stopping, and it takes no job; stop!: the
    launcher exits 0 and the job waits in its queue."""
    url = sidekiq_url
    node = NodeProcess(
        "--redis-url", url, "--node-id", "rubyhush", "--queue", "default=2",
        "--heartbeat-interval", str(HEARTBEAT),
    ).start()  # fmt: skip
    try:
        wait_for(lambda: run_ruby(url, READ_RB, {"node": "rubyhush"}) is not None, timeout=10)
        assert run_ruby(url, READ_RB, {"node": "rubyhush"})["stopping"] is False
        sent = run_ruby(url, SIGNAL_RB, {"node": "rubyhush", "action": "quiet"})
        assert len(sent["signalled"]) == 1
        wait_for(lambda: run_ruby(url, READ_RB, {"node": "rubyhush"})["stopping"], timeout=10)
        with Client(url=url) as client:
            client.enqueue("Record", url, "after", 1)
        wait_for(lambda: node.process is not None and node.process.poll() is None)
        run_ruby(url, SIGNAL_RB, {"node": "rubyhush", "action": "stop"})
        assert node.process is not None and node.process.wait(timeout=20) == 0
        assert r.llen("after") == 0 and r.llen("queue:default") == 1
        assert run_ruby(url, READ_RB, {"node": "rubyhush"}) is None  # it left
    finally:
        node.kill_if_running()
