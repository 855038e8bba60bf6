"""``verk-actors tree``: the live tree of a running node, and the diagrams it draws."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, wait_for
from tests.nodeproc import ROOT, NodeProcess
from tests.servers import apt_install
from verk_actors.actors.tree import DIAGRAMS
from verk_actors.cli import main


def _tree(url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "verk_actors", "tree", "--redis-url", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_live_tree_shows_every_actor_and_counts_a_restart(redis_server, r) -> None:
    """tree lists root, managers, queue subtrees and workers with pids; a killed worker
    shows up replaced by one with a new pid, its restart counted."""
    node = NodeProcess("--redis-url", redis_server.url, "--queue", "default=3", "--queue", "low=1")
    node.start()
    try:
        wait_for(
            lambda: any(k.startswith(b"verk:node:") and k.endswith(b":info") for k in r.scan_iter())
        )
        # The info key appears before every worker has started and reported its pid.
        wait_for(lambda: len(_workers_with_pids(_tree(redis_server.url))) == 4, timeout=30)
        text = _tree(redis_server.url)
        for expected in (
            "VerkRoot root | one_for_one",
            "NodeManager node_manager",
            "ScheduleManager schedule_manager",
            "QueueSupervisor queue:default | rest_for_one",
            "QueueSupervisor queue:low | rest_for_one",
            "QueueManager queue_manager",
            "WorkersManager workers_manager | one_for_one",
        ):
            assert expected in text, text
        workers = _workers_with_pids(text)
        assert len(workers) == 4, text
        pid = workers[0]
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: _replaced(_tree(redis_server.url), pid),
            timeout=30,
        )
        after = _tree(redis_server.url)
        assert "1 restart" in after and "1 restarts" not in after, after
        mermaid = _tree(redis_server.url, "--format", "mermaid")
        assert mermaid.startswith("flowchart TD")
        assert "-->" in mermaid
        dot = _tree(redis_server.url, "--format", "dot")
        assert dot.startswith("digraph verk_tree {")
    finally:
        assert node.terminate() == 0


def _workers_with_pids(text: str) -> list[int]:
    """The pids of the tree's workers that have one (a starting worker has none yet)."""
    lines = [line for line in text.splitlines() if "WorkerActor worker" in line]
    return [
        int(line.split("pid ")[1].split(",")[0].split(" ")[0]) for line in lines if "pid " in line
    ]


def _replaced(text: str, pid: int) -> bool:
    """The killed worker is gone and all four workers run again, each with a pid."""
    pids = _workers_with_pids(text)
    return pid not in pids and len(pids) == 4


def test_tree_without_a_node_exits_not_found(redis_server, capsys) -> None:
    """With no live node on that Redis, tree says so and exits 3."""
    assert main(["tree", "--redis-url", redis_server.url]) == 3
    assert "no live node" in capsys.readouterr().err


def test_diagrams_are_what_the_code_draws() -> None:
    """Every file in diagrams/ equals what verk_actors.actors.tree renders today."""
    folder = Path(ROOT) / "diagrams"
    for name, make in DIAGRAMS.items():
        assert (folder / name).read_text(encoding="utf-8") == make(), (
            f"diagrams/{name} is stale: run python -c 'from verk_actors.actors.tree import "
            'write_diagrams; write_diagrams("diagrams")\''
        )


def _graphviz() -> str:
    found = shutil.which("dot")
    if found:
        return found
    if apt_install("graphviz"):
        found = shutil.which("dot")
        if found:
            return found
    if IN_CI:
        pytest.fail("Graphviz (dot) is missing and could not be installed with apt-get")
    pytest.skip("Graphviz (dot) is missing and cannot be installed here")
    raise AssertionError


def test_dot_diagrams_render_with_graphviz(tmp_path) -> None:
    """The DOT diagrams render to SVG with Graphviz (installed from Debian if missing)."""
    dot = _graphviz()
    for name in ("supervision-tree.dot", "job-flow.dot"):
        out = tmp_path / (name + ".svg")
        subprocess.run(
            [dot, "-Tsvg", str(Path(ROOT) / "diagrams" / name), "-o", str(out)],
            check=True,
            timeout=60,
        )
        assert out.read_text().lstrip().startswith(("<?xml", "<svg"))
