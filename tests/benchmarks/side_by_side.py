"""What the side-by-side runs against Sidekiq share (``bench_vs_sidekiq``,
``sleep_vs_sidekiq``): starting and stopping a ``sidekiq`` process on the bench
workers, and naming what was measured (the Redis server, the checkout's commit)."""

from __future__ import annotations

import signal
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tests.interop.sidekiq import ruby_env
from tests.servers import server_binary
from verk_actors.bench.workload import COUNTER_URL_ENV, QUEUE

WORKERS_RB = Path(__file__).resolve().with_name("bench_workers.rb")
SIDEKIQ_STOP_TIMEOUT = 5


def medians(runs: Sequence[dict[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    """The first of ``runs`` (one system and setting), each of ``keys`` replaced by its
    median over the runs that have it, and ``runs``: how many there were."""
    out = dict(runs[0])
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    out["runs"] = len(runs)
    return out


def git_commit(where: Path) -> str:
    """``git rev-parse --short HEAD`` of the checkout at ``where``, ``+dirty`` if it has changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def server_version() -> str:
    """``redis-server 7.0.15`` or the like: the server both systems run against."""
    done = subprocess.run(
        [server_binary(), "--version"], capture_output=True, text=True, check=False
    )
    words = done.stdout.split()
    version = next((w[2:] for w in words if w.startswith("v=")), "?")
    return f"{Path(server_binary()).name} {version}"


def start_sidekiq(url: str, counter_url: str, threads: int, log: Path) -> subprocess.Popen[bytes]:
    """One ``sidekiq`` process running ``bench_workers.rb`` on the bench queue."""
    argv = ["sidekiq", "-r", str(WORKERS_RB), "-c", str(threads), "-q", QUEUE]
    argv += ["-t", str(SIDEKIQ_STOP_TIMEOUT)]
    env = {**ruby_env(url), COUNTER_URL_ENV: counter_url}
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """TERM (Sidekiq's graceful stop), KILL if it lingers, reap."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(SIDEKIQ_STOP_TIMEOUT + 15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
