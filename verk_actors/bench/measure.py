"""Measuring a node (or any job runner) from outside, for ``verk_actors.bench.drain``.

* ``CommandCounter``: the commands a Redis server ran between two moments, from ``INFO
  commandstats`` (commands run inside Lua count), less the counter's own.
* ``node_processes`` / ``MemorySampler``: the processes of an actor system (its admin,
  found by the process title Thespian gives it, and every descendant) and their peak
  summed RSS and PSS, read from ``/proc`` (Linux only; elsewhere they find nothing).
* ``wait_drained``: polls a done-count until a drain ends, showing ``Progress``.
* ``measure_pickups``: the idle pickup-latency test (jobs enqueued ``PICKUP_GAP`` apart).
* ``client_stack``: the Python and Redis client versions the figures were made with.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import TextIO

import attrs
import redis

from verk_actors.errors import VerkError
from verk_actors.store.client import Client

POLL = 0.005
"""Seconds between looks at the done-count during a drain."""
PROGRESS_EVERY = 0.2
MEMORY_EVERY = 0.25
PSS_EVERY = 2.0
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
PICKUP_GAP = 0.010
"""Seconds between the enqueues of the pickup-latency test."""


# --- measuring -----------------------------------------------------------------------


class CommandCounter:
    """``INFO commandstats`` of one server between ``start()`` and ``stop()``, less our own.

    It diffs two snapshots instead of ``CONFIG RESETSTAT``, so a given server keeps its
    statistics; every command this object sends between the two is subtracted.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.client.ping()  # connect (and redis-py's CLIENT SETINFO) before counting
        self.own: Counter[str] = Counter()
        self._before: dict[str, int] = {}

    def _snapshot(self) -> dict[str, int]:
        self.own["info"] += 1
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def start(self) -> None:
        """Take the first snapshot."""
        self.own.clear()
        self._before = self._snapshot()

    def llens(self, *names: str) -> list[int]:
        """LLEN of each key, in one round trip, counted as our own."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        self.own["llen"] += len(names)
        return [int(n) for n in pipe.execute()]

    def stop(self) -> dict[str, int]:
        """Commands others ran since ``start()``, by name (``evalsha``, ``lpush``...)."""
        own = dict(self.own)
        after = self._snapshot()
        calls = {
            name: count - self._before.get(name, 0) - own.get(name, 0)
            for name, count in after.items()
        }
        return {name: n for name, n in sorted(calls.items(), key=lambda kv: -kv[1]) if n > 0}


def _proc_table() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (ppid, command line)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        table[int(entry)] = (ppid, cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
    return table


def admin_title(admin_port: int) -> str:
    """The process title Thespian gives the admin of the system on ``admin_port``."""
    return f"MultiProcAdmin ActorAddr-(T|:{admin_port})"


def node_processes(admin_port: int) -> dict[int, str]:
    """The admin of the actor system on ``admin_port`` and all its descendants: pid -> title."""
    if not Path("/proc").is_dir():
        return {}
    table = _proc_table()
    title = admin_title(admin_port)
    roots = [pid for pid, (_, cmd) in table.items() if cmd == title]
    found = {pid: table[pid][1] for pid in roots}
    frontier = list(roots)
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, cmd) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = cmd
                frontier.append(pid)
    return found


def memory_of(pids: Sequence[int], *, pss: bool = True) -> tuple[int, int]:
    """Summed RSS and PSS of ``pids`` in bytes (processes that are gone count 0).

    PSS needs ``smaps_rollup``, which the kernel builds by walking every mapping (a
    few ms for a big process); with ``pss=False`` only ``statm`` is read and PSS is 0.
    """
    rss = pss_total = 0
    for pid in pids:
        try:
            if not pss:
                rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
                continue
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss_total += int(line.split()[1]) * 1024
    return rss, pss_total


class MemorySampler:
    """Samples the memory of the processes ``find()`` names, in a thread; keeps the peaks.

    The measuring must not eat the CPU it measures: RSS (cheap) every ``every``
    seconds, the process list and PSS (costly) every ``PSS_EVERY`` seconds, and both
    once more at the end.
    """

    def __init__(self, find: Callable[[], Sequence[int]], every: float = MEMORY_EVERY) -> None:
        self.find = find
        self.every = every
        self.peak_rss = 0
        self.peak_pss = 0
        self.processes = 0
        self._pids: list[int] = []
        self._full_at = 0.0
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._sampling = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)

    def _run(self) -> None:
        while True:
            if not self._paused.is_set():
                with self._sampling:
                    self.sample()
            if self._stop.wait(self.every):
                return

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No samples while the block runs: for a latency test. The sampler's thread
        takes the GIL from the thread that stamps and enqueues the jobs, and reading the
        PSS of a node's 34 processes takes tens of milliseconds: pickups measured
        across it came out 8-13 ms late, four in a row."""
        self._paused.set()
        with self._sampling:  # a sample under way ends first
            pass
        try:
            yield
        finally:
            self._paused.clear()

    def sample(self, *, full: bool = False) -> None:
        """Take one sample now (``full``: also find the processes again and read PSS)."""
        now = time.monotonic()
        full = full or now - self._full_at >= PSS_EVERY
        if full:
            self._pids = list(self.find())
            self._full_at = now
        rss, pss = memory_of(self._pids, pss=full)
        if rss > self.peak_rss:
            self.peak_rss, self.processes = rss, len(self._pids)
        self.peak_pss = max(self.peak_pss, pss)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample(full=True)


def client_stack() -> str:
    """``Python 3.11.7, redis-py 8.1.0 (hiredis 3.5.0)`` or the like.

    Figures depend on it: a job's own Redis command is mostly client CPU, and redis-py
    8.1 runs 74 % more instructions per command than 5.2 (76,600 against 44,100 per
    INCR, callgrind; 36-52 against 24-32 us of CPU per INCR in a loop here).
    """
    try:
        parser = f"hiredis {metadata.version('hiredis')}"
    except metadata.PackageNotFoundError:
        parser = "no hiredis"
    return f"Python {platform.python_version()}, redis-py {redis.__version__} ({parser})"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated between ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Progress:
    """One updating status line on ``stream`` (a new line per update when not a terminal)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self._last = 0.0
        self._shown = False

    def show(self, text: str, *, force: bool = False) -> None:
        """Show ``text``; a non-terminal gets at most one line a second unless ``force``."""
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self._last < (PROGRESS_EVERY if self.tty else 1.0):
            return
        self._last = now
        if self.tty:
            self.stream.write(f"\r\x1b[K{text}")
            self._shown = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        """End the status line."""
        if self.stream is not None and self.tty and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


PROC_STAT = Path("/proc/stat")


def cpu_ticks() -> tuple[int, int] | None:
    """The machine's CPU time so far, in ticks: (all of it, stolen by the hypervisor).

    Steal is time a virtual CPU wanted to run and the host ran someone else: on a
    shared VM it moves a drain's rate by a third from one run to the next, so figures
    are printed with it. None off Linux.
    """
    try:
        fields = PROC_STAT.read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks), ticks[7]) if len(ticks) == 8 else None


def cpu_of(pids: Sequence[int]) -> dict[int, float]:
    """Seconds of CPU (user and system) each of ``pids`` has used so far; a process
    gone is left out."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        used[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return used


def cpu_since(before: dict[int, float], pids: Sequence[int]) -> float:
    """CPU seconds ``pids`` used since ``before`` (``cpu_of``); a process born since
    counts whole."""
    return sum(now - before.get(pid, 0.0) for pid, now in cpu_of(pids).items())


def stolen_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time stolen between two ``cpu_ticks()``; None if unknown."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    return (after[1] - before[1]) / (after[0] - before[0])


@attrs.frozen
class Drain:
    """How a drain went: ``jobs`` ran in ``seconds``, timed from the last look that saw
    none of them done to the look that saw them all done."""

    jobs: int
    seconds: float
    wall: float
    """Seconds from starting the workers (node or processes) until drained."""
    steal: float | None = None
    """Share of the machine's CPU time the hypervisor took during those ``seconds``."""

    @property
    def rate(self) -> float:
        """Jobs per second."""
        return self.jobs / self.seconds if self.seconds > 0 else float("nan")


def wait_drained(
    total: int,
    done: Callable[[], int],
    empty: Callable[[], bool],
    *,
    started: float,
    timeout: float,
    progress: Progress,
    label: str = "drain",
) -> Drain:
    """Poll ``done()`` until it reaches ``total`` and ``empty()`` holds; time it.

    ``started`` is the ``time.monotonic()`` at which the workers were started. The
    clock starts at the last look that found nothing done (at ``started`` if the first
    look found jobs done already), so every job counted ran inside the time measured:
    a drain of 5,000 jobs reports 5,000, not the 4,998 that finished after the first
    look that saw any (what it once counted, leaving out the first few).
    """
    zero_at = started
    zero_ticks: tuple[int, int] | None = cpu_ticks()
    seen_work = False
    deadline = started + timeout
    while True:
        looked_at = time.monotonic()
        count = done()
        now = time.monotonic()
        if count <= 0:
            zero_at, zero_ticks = looked_at, cpu_ticks()
        else:
            seen_work = True
        if count >= total and empty():
            end = time.monotonic()
            steal = stolen_share(zero_ticks, cpu_ticks())
            progress.done()
            return Drain(count, end - zero_at, end - started, steal)
        if now > deadline:
            progress.done()
            raise VerkError(
                f"only {count:,} of {total:,} jobs ran within {timeout:g} s; see the "
                "runner's log (a node logs at --log-level)"
            )
        if seen_work and now > zero_at:
            rate = count / (now - zero_at)
            progress.show(f"{label}: {count:,} / {total:,} jobs  {rate:,.0f} jobs/s")
        else:
            progress.show(f"{label}: waiting for the first job ({now - started:.1f} s)")
        time.sleep(POLL)


def measure_pickups(
    client: Client,
    counter: redis.Redis,
    worker: type | str,
    *,
    queue: str,
    key: str,
    count: int,
    progress: Progress,
    gap: float = PICKUP_GAP,
    timeout: float = 30.0,
) -> list[float]:
    """Enqueue ``count`` jobs of ``worker`` ``gap`` apart, each with ``time.monotonic()``.

    Each job must push its pickup time (seconds) on the list ``key`` of ``counter``;
    returns those times once all ``count`` are there.
    """
    counter.delete(key)
    begin = time.monotonic()
    for n in range(count):
        pause = begin + n * gap - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        client.enqueue(worker, time.monotonic(), queue=queue)
        progress.show(f"pickup latency: {n + 1} / {count} jobs enqueued")
    deadline = time.monotonic() + timeout
    while counter.llen(key) < count:
        if time.monotonic() > deadline:
            progress.done()
            raise VerkError(
                f"only {counter.llen(key)} of {count} pickup jobs ran within {timeout:g} s"
            )
        time.sleep(0.01)
    progress.done()
    return [float(v) for v in counter.lrange(key, 0, -1)]
