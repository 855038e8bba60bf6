"""Where a drain's time goes: py-spy on the hot actor processes of a bench node.

::

    pip install py-spy
    python -m tests.benchmarks.profile_drain [--jobs 20000] [--rate 200] [--out DIR]

Runs the standard benchmark (``verk_actors.bench.drain.run_bench``, embedded Valkey) and, as
soon as the node runs, attaches ``py-spy record -f raw --nonblocking`` to its
QueueManager, its WorkersManager and one WorkerActor (found by the process titles
Thespian sets); stops them when the drain ends and prints, for each, how much of the
drain it was busy and its top functions by self time. py-spy leaves idle samples out,
so the shares are of the time the process was busy; with ``--idle`` they are of wall
time, and waiting shows up as ``select`` (for a message) or ``read_from_socket`` (for
Redis). The raw profiles stay in ``--out`` for flame graphs (``flamegraph.pl``,
speedscope).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from verk_actors.bench.drain import BenchOptions, run_bench  # noqa: E402
from verk_actors.bench.measure import Progress  # noqa: E402

HOT = ("QueueManager", "WorkersManager", "WorkerActor")
LINE_NUMBER = re.compile(r":\d+\)$")
ATTACH_WITHIN = 15.0


class Profiler:
    """py-spy recorders on a node's hot processes, started and stopped by run_bench hooks."""

    def __init__(self, out: Path, rate: int, *, idle: bool = False) -> None:
        self.out = out
        self.rate = rate
        self.idle = idle
        self.recorders: dict[str, tuple[int, Path, subprocess.Popen[bytes], float]] = {}
        self.began = self.ended = 0.0
        self._thread: threading.Thread | None = None

    def start(self, find: Callable[[], dict[int, str]]) -> None:
        """Attach recorders from a thread, as the node's processes appear."""
        self.began = time.monotonic()
        self._thread = threading.Thread(target=self._attach, args=(find,), daemon=True)
        self._thread.start()

    def _attach(self, find: Callable[[], dict[int, str]]) -> None:
        deadline = time.monotonic() + ATTACH_WITHIN
        missing = list(HOT)
        while missing and time.monotonic() < deadline:
            processes = find()
            for role in list(missing):
                pids = [p for p, title in processes.items() if title.startswith(role + " ")]
                if pids:
                    self._record(role, min(pids))
                    missing.remove(role)
            time.sleep(0.01)
        for role in missing:
            print(f"no {role} process appeared within {ATTACH_WITHIN:g} s", file=sys.stderr)

    def _record(self, role: str, pid: int) -> None:
        path = self.out / f"{role}-{pid}.txt"
        argv = ["py-spy", "record", "-p", str(pid), "-f", "raw", "-o", str(path)]
        argv += ["--rate", str(self.rate), "--nonblocking", "--nolineno"]
        if self.idle:
            argv.append("--idle")
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.recorders[role] = (pid, path, process, time.monotonic())

    def stop(self) -> None:
        """Stop the recorders (SIGINT makes py-spy write its file)."""
        self.ended = time.monotonic()
        if self._thread is not None:
            self._thread.join()
        for _, _, process, _ in self.recorders.values():
            process.send_signal(signal.SIGINT)
        for role, (_, _, process, _) in self.recorders.items():
            try:
                _, err = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                _, err = process.communicate()
            if process.returncode not in (0, -signal.SIGINT):
                print(f"py-spy on {role}: {err.decode(errors='replace')[-500:]}", file=sys.stderr)


def self_times(path: Path) -> tuple[int, collections.Counter[str]]:
    """Samples in a py-spy raw profile, and samples per innermost function."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    if not path.exists():
        return 0, counts
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        leaf = LINE_NUMBER.sub(")", stack.rsplit(";", 1)[-1])
        counts[leaf] += int(n)
        total += int(n)
    return total, counts


def shorten(frame: str) -> str:
    """``recv (/long/path/site-packages/redis/connection.py)`` -> ``recv (redis/connection.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3", str(ROOT) + "/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})"


def report(profiler: Profiler, top: int) -> str:
    """Each profiled process: CPU share of the drain and its top self-time functions."""
    lines = []
    for role, (pid, path, _, attached) in profiler.recorders.items():
        seconds = max(profiler.ended - attached, 1e-9)
        total, counts = self_times(path)
        busy = total / (profiler.rate * seconds)
        kind = "samples" if profiler.idle else "busy samples"
        lines.append(
            f"{role} (pid {pid}): {total:,} {kind} in {seconds:.1f} s ({busy:.0%} of the "
            "drain's wall time); top self time:"
        )
        for frame, n in counts.most_common(top):
            lines.append(f"  {n / total:6.1%}  {shorten(frame)}")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.profile_drain")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=15, help="functions shown per process")
    parser.add_argument("--out", type=Path, help="where the raw profiles go (default: a temp dir)")
    parser.add_argument(
        "--idle",
        action="store_true",
        help="keep idle samples too (wall-clock view: time spent waiting shows as select/recv)",
    )
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="verk-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    profiler = Profiler(out, args.rate, idle=args.idle)
    result = run_bench(
        BenchOptions(jobs=args.jobs, concurrency=args.concurrency),
        Progress(sys.stderr),
        on_started=profiler.start,
        on_drained=profiler.stop,
    )
    print(
        f"drain of {result.jobs:,} jobs: {result.drain.rate:,.0f} jobs/s "
        f"({result.concurrency} workers); raw profiles in {out}\n"
    )
    print(report(profiler, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
