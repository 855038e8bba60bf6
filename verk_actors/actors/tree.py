"""The supervision tree as text, Mermaid or Graphviz DOT: live from a node, or as designed.

``render(node, fmt)`` draws a ``TreeNode``; ``design_tree()`` is the tree every node
builds (the source of ``diagrams/supervision-tree.*``); ``JOB_FLOW_MERMAID`` and
``JOB_FLOW_DOT`` draw a job's path through Redis (``diagrams/job-flow.*``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from verk_actors.actors._event_routing import QUEUE_PREFIX
from verk_actors.actors.messages import TreeNode
from verk_actors.actors.queue.lane_workers_manager import LaneWorkersManager
from verk_actors.actors.queue.queue_supervisor import QueueSupervisor
from verk_actors.actors.queue.workers_manager import WorkersManager
from verk_actors.actors.root import VerkRoot
from verk_actors.config.queue_modes import ASYNC, PROCESS
from verk_actors.config.queue_spec import QueueSpec

FORMATS = ("text", "mermaid", "dot")

DIAGRAM_QUEUES = (QueueSpec("default", 25), QueueSpec("crawl", 500, ASYNC, 100))
"""The queues ``diagrams/supervision-tree.*`` draws: one of each kind."""


def design_tree(queues: tuple[QueueSpec, ...] = (QueueSpec("default", 25),)) -> TreeNode:
    """The tree a node with these queues builds (no pids: a design, not a snapshot).

    The supervisors' strategies and restart limits are read off their classes.
    """
    queue_nodes = []
    for queue in queues:
        if queue.mode == PROCESS:
            manager, workers = _process_slots(queue)
        else:
            manager, workers = _lanes(queue)
        queue_nodes.append(
            TreeNode(
                0,
                QUEUE_PREFIX + queue.name,
                "QueueSupervisor",
                None,
                strategy=QueueSupervisor.strategy.value,
                detail=QueueSupervisor.restart_limit(),
                children=(
                    TreeNode(
                        0,
                        "queue_manager",
                        "QueueManager",
                        None,
                        detail="take (batch, BLMOVE when idle and no standby), ack, "
                        "retry/dead, requeue",
                    ),
                    attrs.evolve(manager, children=(workers,)),
                ),
            )
        )

    return TreeNode(
        0,
        "root",
        "VerkRoot",
        None,
        strategy=VerkRoot.strategy.value,
        detail=f"{VerkRoot.restart_limit()}, then the launcher exits",
        children=(
            TreeNode(0, "node_manager", "NodeManager", None, detail="lease, dead-node recovery"),
            TreeNode(0, "event_manager", "EventManager", None, detail="events to subscribers"),
            TreeNode(0, "schedule_manager", "ScheduleManager", None, detail="schedule, retry"),
            *queue_nodes,
        ),
    )


def _process_slots(queue: QueueSpec) -> tuple[TreeNode, TreeNode]:
    """A process-mode queue's manager and its workers, one process per slot."""
    manager = TreeNode(
        0,
        "workers_manager",
        "WorkersManager",
        None,
        strategy=WorkersManager.strategy.value,
        detail="hands out batches to as many workers as keep the cores busy; settles "
        "dead workers from their boards",
    )
    workers = TreeNode(
        0,
        f"workers 1..{queue.concurrency}",
        "WorkerActor",
        None,
        detail="one process each; runs jobs; writes its progress board; one waits on "
        "an idle queue itself (standby)",
    )
    return manager, workers


def _lanes(queue: QueueSpec) -> tuple[TreeNode, TreeNode]:
    """A threads or async queue's manager and its worker processes of many lanes."""
    processes = -(-queue.concurrency // queue.per_process)
    kind = "coroutines" if queue.mode == ASYNC else "threads"
    manager = TreeNode(
        0,
        "workers_manager",
        "LaneWorkersManager",
        None,
        strategy=LaneWorkersManager.strategy.value,
        detail="hands out batches to lanes (every lane runs at once); settles each lane "
        "of a dead process from its board; replaces the process",
    )
    workers = TreeNode(
        0,
        f"worker processes 1..{processes}",
        "LaneWorkerActor",
        None,
        detail=f"{queue.per_process} lanes each ({kind}), a progress board per lane; "
        "one report message for every lane",
    )
    return manager, workers


def _label(node: TreeNode) -> str:
    parts = [f"{node.kind} {node.name}" if node.name != node.kind else node.kind]
    facts = []
    if node.strategy:
        facts.append(node.strategy)
    if node.pid is not None:
        facts.append(f"pid {node.pid}")
    if node.state != "running":
        facts.append(node.state)
    if node.restarts:
        facts.append(f"{node.restarts} restart{'' if node.restarts == 1 else 's'}")
    if facts:
        parts.append(", ".join(facts))
    if node.detail:
        parts.append(node.detail)
    return " | ".join(parts)


def _walk(node: TreeNode, path: str = "n") -> Iterator[tuple[str, TreeNode, str | None]]:
    yield path, node, None
    for i, child in enumerate(node.children):
        child_path = f"{path}_{i}"
        for entry in _walk(child, child_path):
            yield entry[0], entry[1], entry[2] if entry[2] is not None else path


def render_text(node: TreeNode, indent: str = "") -> str:
    """An indented outline, one actor per line."""
    lines = [indent + _label(node)]
    for child in node.children:
        lines.append(render_text(child, indent + "    "))
    return "\n".join(lines)


def _escape(text: str) -> str:
    return re.sub(r'["<>]', "'", text)


def render_mermaid(node: TreeNode) -> str:
    """A Mermaid flowchart (top-down)."""
    lines = ["flowchart TD"]
    for path, each, parent in _walk(node):
        label = _escape(_label(each)).replace(" | ", "<br/>")
        lines.append(f'    {path}["{label}"]')
        if parent is not None:
            lines.append(f"    {parent} --> {path}")
    return "\n".join(lines) + "\n"


def render_dot(node: TreeNode) -> str:
    """A Graphviz digraph."""
    lines = [
        "digraph verk_tree {",
        "    rankdir=TB;",
        '    node [shape=box, fontname="Helvetica"];',
    ]
    for path, each, parent in _walk(node):
        label = _escape(_label(each)).replace(" | ", "\\n")
        lines.append(f'    {path} [label="{label}"];')
        if parent is not None:
            lines.append(f"    {parent} -> {path};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(node: TreeNode, fmt: str = "text") -> str:
    """The tree in ``fmt``: text, mermaid or dot."""
    if fmt == "mermaid":
        return render_mermaid(node)
    if fmt == "dot":
        return render_dot(node)
    return render_text(node) + "\n"


JOB_FLOW_MERMAID = """\
flowchart LR
    client(["enqueue: Python, actor message, Sidekiq client"])
    client -- "LPUSH" --> queue[("queue:&lt;q&gt;")]
    client -- "ZADD (enqueue_at)" --> schedule[("schedule")]
    inprogress[("inprogress:&lt;q&gt;:&lt;node&gt;")]
    queue -- "take_jobs.lua / BLMOVE by QueueManager or standby worker (one step)" --> inprogress
    inprogress -- "ack_jobs.lua: LTRIM a run (LREM) + stat:processed" --> done(["done"])
    inprogress -- "fail_jobs.lua: LREM + ZADD" --> retry[("retry")]
    inprogress -- "fail_jobs.lua, retries used up" --> dead[("dead")]
    inprogress -- "fail_jobs.lua: a limiter is full, no retry used" --> schedule
    inprogress -- "requeue: stop, restart, dead node" --> queue
    retry -- "ScheduleManager: enqueue_due.lua" --> queue
    schedule -- "ScheduleManager: enqueue_due.lua" --> queue
    dead -- "retry now (CLI / API)" --> queue
"""

JOB_FLOW_DOT = """\
digraph job_flow {
    rankdir=LR;
    node [fontname="Helvetica"];
    client [shape=oval, label="enqueue\\n(Python, actor message, Sidekiq client)"];
    queue [shape=cylinder, label="queue:<q>"];
    schedule [shape=cylinder, label="schedule"];
    inprogress [shape=cylinder, label="inprogress:<q>:<node>"];
    retry [shape=cylinder, label="retry"];
    dead [shape=cylinder, label="dead"];
    done [shape=oval, label="done"];
    client -> queue [label="LPUSH"];
    client -> schedule [label="ZADD (enqueue_at)"];
    queue -> inprogress [label="take_jobs.lua / BLMOVE\\nby QueueManager\\nor standby worker"];
    inprogress -> done [label="ack_jobs.lua:\\nLTRIM a run (LREM) + stat:processed"];
    inprogress -> retry [label="fail_jobs.lua:\\nLREM + ZADD"];
    inprogress -> dead [label="fail_jobs.lua,\\nretries used up"];
    inprogress -> schedule [label="fail_jobs.lua: a limiter\\nis full, no retry used"];
    inprogress -> queue [label="requeue: stop,\\nrestart, dead node"];
    retry -> queue [label="ScheduleManager:\\nenqueue_due.lua"];
    schedule -> queue [label="ScheduleManager:\\nenqueue_due.lua"];
    dead -> queue [label="retry now\\n(CLI / API)"];
}
"""

DIAGRAMS: dict[str, Callable[[], str]] = {
    "supervision-tree.mmd": lambda: render_mermaid(design_tree(DIAGRAM_QUEUES)),
    "supervision-tree.dot": lambda: render_dot(design_tree(DIAGRAM_QUEUES)),
    "job-flow.mmd": lambda: JOB_FLOW_MERMAID,
    "job-flow.dot": lambda: JOB_FLOW_DOT,
}
"""Every file under ``diagrams/`` and the code that writes it."""


def write_diagrams(directory: str) -> list[str]:
    """(Re)write ``diagrams/``; return the file names."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in DIAGRAMS.items():
        (out / name).write_text(make(), encoding="utf-8")
    return sorted(DIAGRAMS)
