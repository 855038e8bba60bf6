"""Two nodes on one Redis, seen and steered together through every door."""

from __future__ import annotations

import json
import time

from tests.conftest import ask_for, node_settings, wait_for
from verk_actors import Client
from verk_actors.actors.messages import GetStats, PauseQueue, QueuePaused, ResumeQueue, StatsReport
from verk_actors.actors.system import start_actor_system, start_node, stop_node
from verk_actors.cli import main


def test_two_nodes_seen_together_and_a_pause_obeyed_by_the_other(
    asys, redis_server, r, capsys
) -> None:
    """stats, nodes and GetStats show both nodes; a pause sent to node A stops node B too."""
    second = start_actor_system(log_level="WARNING")
    try:
        settings = node_settings(redis_server.url, poll_interval=0.3, heartbeat_interval=0.5)
        root_a, a = start_node(asys, settings)
        root_b, b = start_node(second, settings)
        wait_for(
            lambda: (
                r.exists(f"verk:node:{a.node_id}:info") and r.exists(f"verk:node:{b.node_id}:info")
            )
        )

        assert main(["nodes", "--redis-url", redis_server.url, "--json"]) == 0
        nodes = json.loads(capsys.readouterr().out)
        listed = {n["node_id"]: n for n in (nodes["nodes"] if isinstance(nodes, dict) else nodes)}
        assert {a.node_id, b.node_id} <= set(listed)
        assert all(listed[n]["alive"] for n in (a.node_id, b.node_id))

        with Client(url=redis_server.url) as client:
            client.enqueue_many("Record", ([redis_server.url, "ran", i] for i in range(40)))
        wait_for(lambda: r.llen("ran") == 40 and r.get("stat:processed") == b"40")
        report = ask_for(asys, root_a, GetStats(), StatsReport)
        snapshot = report.snapshot
        assert snapshot.totals.processed == 40
        assert {n.node_id for n in snapshot.nodes if n.alive} >= {a.node_id, b.node_id}
        assert main(["stats", "--redis-url", redis_server.url]) == 0
        assert "2 of 2" in capsys.readouterr().out  # NODES ALIVE
        assert main(["stats", "--redis-url", redis_server.url, "--json"]) == 0
        stats = json.loads(capsys.readouterr().out)
        assert {n["node_id"] for n in stats["nodes"] if n["alive"]} == {a.node_id, b.node_id}

        paused = ask_for(asys, root_a, PauseQueue("default"), QueuePaused)
        assert paused.paused and paused.changed
        time.sleep(0.8)  # both nodes notice within a poll interval
        with Client(url=redis_server.url) as client:
            client.enqueue_many("Record", ([redis_server.url, "ran", i] for i in range(10)))
        time.sleep(1.0)
        assert r.llen("ran") == 40, "neither node may run a paused queue's jobs"
        assert r.llen("queue:default") == 10
        resumed = ask_for(second, root_b, ResumeQueue("default"), QueuePaused)
        assert not resumed.paused and resumed.changed
        wait_for(lambda: r.llen("ran") == 50)
        stop_node(second, root_b, settings)
        stop_node(asys, root_a, settings)
    finally:
        second.shutdown()
