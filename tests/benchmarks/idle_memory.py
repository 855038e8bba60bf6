"""Memory of an idle node with one queue, in each mode: processes, RSS and PSS.

``python tests/benchmarks/idle_memory.py [SLOTS]`` starts, for each of ``SLOTS``
(default 25) slots in process mode, threads mode (its default 10 per process) and
async mode (its default 100 per process, at most the slots), a node on a private
Redis, waits for it to settle, and prints the sum over the node's processes (the
Thespian admin and its descendants) of RSS and of PSS (``/proc/<pid>/smaps_rollup``),
median of 3 samples a second apart.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from tests.servers import RedisServer  # noqa: E402
from verk_actors.actors.system import free_port, start_actor_system, start_node, stop_node  # noqa: E402
from verk_actors.bench.measure import memory_of, node_processes  # noqa: E402
from verk_actors.config.settings import QueueSpec, Settings  # noqa: E402

SETTLE = 3.0


def idle_memory(spec: QueueSpec) -> tuple[int, float, float]:
    """Processes, RSS and PSS (MB) of an idle node running ``spec``."""
    server = RedisServer().start()
    port = free_port()
    asys = start_actor_system(port, log_level="WARNING")
    try:
        settings = Settings(redis_url=server.url, queues=(spec,))
        root, _ = start_node(asys, settings)
        time.sleep(SETTLE)
        samples = []
        for _ in range(3):
            pids = list(node_processes(port))
            rss, pss = memory_of(pids)
            samples.append((len(pids), rss / 1e6, pss / 1e6))
            time.sleep(1.0)
        stop_node(asys, root, settings)
        return (
            samples[-1][0],
            statistics.median(s[1] for s in samples),
            statistics.median(s[2] for s in samples),
        )
    finally:
        asys.shutdown()
        server.cleanup()


def main() -> None:
    slots = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    for mode in ("process", "threads", "async"):
        spec = QueueSpec("default", slots, mode)
        processes, rss, pss = idle_memory(spec)
        print(
            f"{slots} slots, {mode} ({spec.per_process} per process): {processes} processes, "
            f"RSS {rss:,.1f} MB, PSS {pss:,.1f} MB"
        )


if __name__ == "__main__":
    main()
