"""The pictures of the design say what the code does: README diagrams, design tree, docs.

(``tests/test_tree.py`` checks that diagrams/ holds what ``verk_actors.actors.tree`` draws.)
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

import pytest

from verk_actors.actors.messages import TreeNode
from verk_actors.actors.queue.queue_supervisor import QueueSupervisor
from verk_actors.actors.root import VerkRoot
from verk_actors.actors.supervisor import Supervisor
from verk_actors.actors.tree import design_tree

ROOT = Path(__file__).resolve().parent.parent
DIAGRAMS = ROOT / "diagrams"
README = ROOT / "README.md"

SUPERVISORS: tuple[type[Supervisor], ...] = (VerkRoot, QueueSupervisor)
"""Every ``Supervisor`` in a node's tree."""


def mermaid_blocks(markdown: str) -> list[str]:
    """The bodies of the ```mermaid fenced blocks of ``markdown``, in order."""
    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)


def nodes_of(node: TreeNode) -> list[TreeNode]:
    """``node`` and every node below it."""
    return [node, *(each for child in node.children for each in nodes_of(child))]


def test_readme_mermaid_blocks_are_the_diagram_files() -> None:
    """Each Mermaid block of the README is, byte for byte, one of diagrams/*.mmd, and each
    of those files is shown in the README."""
    files = {path.name: path.read_text(encoding="utf-8") for path in DIAGRAMS.glob("*.mmd")}
    assert files, "diagrams/*.mmd are missing"
    blocks = mermaid_blocks(README.read_text(encoding="utf-8"))
    for block in blocks:
        if block in files.values():
            continue
        # Show the difference with the file drawing the same kind of chart.
        name = next(
            (n for n, text in files.items() if text.split("\n")[0] == block.split("\n")[0]), ""
        )
        diff = difflib.unified_diff(
            files.get(name, "").splitlines(),
            block.splitlines(),
            f"diagrams/{name}",
            "README.md",
            lineterm="",
        )
        pytest.fail(
            "a README mermaid block differs from diagrams/ (copy the file into the README):\n"
            + "\n".join(diff)
        )
    shown = [name for name, text in files.items() if text in blocks]
    assert sorted(shown) == sorted(files), "every diagrams/*.mmd file appears in the README"


@pytest.mark.parametrize("supervisor", SUPERVISORS, ids=lambda cls: cls.__name__)
def test_design_tree_draws_each_supervisors_own_strategy_and_limit(
    supervisor: type[Supervisor],
) -> None:
    """design_tree (and so diagrams/) shows the strategy and restart limit the supervisor
    class runs with."""
    drawn = [node for node in nodes_of(design_tree()) if node.kind == supervisor.__name__]
    assert drawn, f"design_tree draws no {supervisor.__name__}"
    for node in drawn:
        assert node.strategy == supervisor.strategy.value
        assert node.detail.startswith(supervisor.restart_limit()), node.detail


@pytest.mark.parametrize("supervisor", SUPERVISORS, ids=lambda cls: cls.__name__)
def test_supervisor_docstrings_state_their_strategy_and_limit(
    supervisor: type[Supervisor],
) -> None:
    """The module docstring of each supervisor names the strategy and limit it runs with."""
    doc = " ".join((sys.modules[supervisor.__module__].__doc__ or "").split())
    expected = f"**{supervisor.strategy.value}**, at most {supervisor.restart_limit()}"
    assert expected in doc, f"{supervisor.__module__}'s docstring should say {expected!r}"


@pytest.mark.parametrize("supervisor", SUPERVISORS, ids=lambda cls: cls.__name__)
def test_readme_table_states_each_supervisors_strategy_and_limit(
    supervisor: type[Supervisor],
) -> None:
    """The README's supervisor table gives each supervisor's strategy and restart limit."""
    rows = [
        line
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.startswith(f"| `{supervisor.__name__}` |")
    ]
    assert len(rows) == 1, f"one README table row for {supervisor.__name__}"
    cell = rows[0].split("|")[2]
    assert supervisor.strategy.value in cell, cell
    limit = re.search(r"(\d+)(?: restarts)? in (\d+(?:\.\d+)?) s", cell)
    assert limit is not None, cell
    assert (int(limit[1]), float(limit[2])) == (
        supervisor.max_restarts,
        supervisor.restart_window,
    ), cell
