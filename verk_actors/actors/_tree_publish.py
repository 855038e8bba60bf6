"""The live tree as the NodeManager publishes it into Redis for the dashboard.

At every heartbeat the NodeManager asks VerkRoot to describe the tree (the same
``DescribeTree`` as ``verk-actors tree``), adds each process's CPU and memory read from
``/proc`` (every actor of a node runs on its host), and writes the result as JSON to
``verk:node:<id>:tree`` with a TTL of ``TREE_BEATS`` heartbeats: the dashboard reads
Redis only and never joins the actor system. Nothing here runs on a job's path.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from verk_actors.actors.messages import TreeNode

TREE_BEATS = 3
"""Heartbeats a published tree outlives the last one that wrote it."""

MIN_TTL = 10.0
"""Seconds a published tree lives at least (a describe may take a few seconds)."""

USAGE_FIELDS = ("cpu_seconds", "cpu_percent", "rss_kb")

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tree_ttl(heartbeat_interval: float) -> float:
    """Seconds a published tree lives."""
    return max(MIN_TTL, TREE_BEATS * heartbeat_interval)


def read_usage(pid: int) -> tuple[float, int] | None:
    """CPU seconds (user + system) and resident kB of process ``pid``; None when it is
    gone or ``/proc`` cannot tell (not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        fields = stat[stat.rfind(b")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
        rss = int(Path(f"/proc/{pid}/statm").read_bytes().split()[1]) * PAGE // 1024
    except (OSError, ValueError, IndexError):
        return None
    return cpu, rss


class UsageSampler:
    """CPU share of each process since the previous sample, and its memory now."""

    def __init__(self) -> None:
        self.last: dict[int, tuple[float, float]] = {}
        """pid -> (CPU seconds, monotonic time) at the previous sample."""

    def sample(self, pids: set[int]) -> dict[int, dict[str, Any]]:
        """``cpu_seconds``, ``cpu_percent`` (None at a pid's first sample) and ``rss_kb``
        of each pid that still runs."""
        now = time.monotonic()
        out: dict[int, dict[str, Any]] = {}
        seen: dict[int, tuple[float, float]] = {}
        for pid in pids:
            usage = read_usage(pid)
            if usage is None:
                continue
            cpu, rss = usage
            percent = None
            before = self.last.get(pid)
            if before is not None and now > before[1]:
                percent = round(max(0.0, cpu - before[0]) / (now - before[1]) * 100, 1)
            seen[pid] = (cpu, now)
            out[pid] = {"cpu_seconds": round(cpu, 2), "cpu_percent": percent, "rss_kb": rss}
        self.last = seen
        return out


def _pids(node: TreeNode) -> set[int]:
    found = {node.pid} if node.pid else set()
    for child in node.children:
        found |= _pids(child)
    return found


def _as_dict(node: TreeNode, usage: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": node.name,
        "kind": node.kind,
        "pid": node.pid,
        "state": node.state,
        "restarts": node.restarts,
        "strategy": node.strategy,
        "detail": node.detail,
        **((usage.get(node.pid) if node.pid else None) or dict.fromkeys(USAGE_FIELDS)),
        "children": [_as_dict(child, usage) for child in node.children],
    }


def tree_json(node_id: str, tree: TreeNode, sampler: UsageSampler, heartbeat: float) -> str:
    """The published document: the node, when, and the tree with each process's usage."""
    usage = sampler.sample(_pids(tree))
    return json.dumps(
        {
            "node_id": node_id,
            "at": time.time(),
            "heartbeat_interval": heartbeat,
            "tree": _as_dict(tree, usage),
        },
        separators=(",", ":"),
    )
