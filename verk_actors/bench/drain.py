"""The standard benchmark, importable: ``verk-actors bench`` runs it.

The workload is ``jobs`` no-op jobs of ``BenchIncr``, each doing one ``INCR`` on a
second Redis (the *counter* server), so every system compared runs the same job. The
benchmark:

1. **enqueue**: pushes all jobs with ``Client.enqueue_many`` while no node runs;
2. **drain**: starts a node and watches the counter every few milliseconds; the drain
   rate is the jobs that ran between the last look that saw none finished and the
   moment the counter reached ``jobs`` with the queue and the node's in-progress list
   empty, divided by that time (node start-up is left out, and reported apart);
3. **pickup latency** (optional): on the idle node, 200 jobs of ``BenchPickup``
   enqueued 10 ms apart; each carries ``time.monotonic()`` read just before it was
   built and pushed, and records the monotonic time its ``perform`` started minus that
   (``CLOCK_MONOTONIC`` is one clock for every process of a host, Ruby's included).

Redis commands per job are read from ``INFO commandstats`` of the job server (commands
run inside Lua count), from just before the enqueue to the end of the drain (enqueue and
drain apart), less the benchmark's own commands, over ``jobs``. Memory is the resident
set of every process of the node (the Thespian admin, found by its process title, and
its descendants), sampled during the run; RSS counts pages the forked processes share
once per process, PSS splits them, so the PSS sum is what the node really costs.

The jobs are in ``verk_actors.bench.workload``, which the node imports.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import redis

from verk_actors.actors.system import (
    configure_launcher_logging,
    free_port,
    start_actor_system,
    start_node,
    stop_node,
)
from verk_actors.bench import workload
from verk_actors.bench.measure import (
    CommandCounter,
    Drain,
    MemorySampler,
    Progress,
    client_stack,
    cpu_of,
    cpu_since,
    measure_pickups,
    node_processes,
    percentile,
    wait_drained,
)
from verk_actors.bench.servers import Servers, environ, open_servers
from verk_actors.bench.workload import (
    COUNTER_KEY,
    COUNTER_URL_ENV,
    PICKUP_KEY,
    QUEUE,
    BenchIncr,
    BenchNoop,
    BenchSleep,
)
from verk_actors.config.queue_modes import ASYNC
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import Settings
from verk_actors.errors import ConfigurationError
from verk_actors.store import keys
from verk_actors.store.client import Client

DEFAULT_JOBS = 20_000
PICKUP_JOBS = 200
SETTLE = 0.5
"""Seconds the node idles between the drain and the pickup-latency test."""


# --- the whole run -------------------------------------------------------------------


@attrs.frozen
class BenchOptions:
    """What to run. ``redis_url`` None = an embedded Valkey in a temporary directory.

    ``counter_url`` None = a private Valkey for the counter (API only: the benchmark
    script passes its own server there; the bench writes ``bench:*`` keys in it).
    """

    jobs: int = DEFAULT_JOBS
    concurrency: int | None = None
    min_workers: int | None = None
    """Workers the queue starts with, the rest as jobs come (None: all, the default)."""
    latency: bool = False
    incr: bool = True
    redis_url: str | None = None
    force: bool = False
    counter_url: str | None = None
    pickups: int = PICKUP_JOBS
    log_level: str = "WARNING"
    job_logs: bool = False
    """Log each job's start and end (``job_logs``): their cost, with ``log_level`` INFO."""
    metrics: bool = False
    """Serve Prometheus metrics (``metrics_port`` on a free port): their cost."""
    metrics_history: bool = True
    """Record the job metrics history in Redis (``metrics_history``, on by default)."""
    timeout: float | None = None
    """Seconds the drain may take; None = 60 s plus 5 ms per job."""
    waiting: int = 0
    """More jobs left waiting behind the ``jobs`` that are timed (a long queue); they
    are deleted when the node has stopped."""
    mode: str = "process"
    """How the queue runs its jobs: process, threads or async (``QueueSpec.mode``)."""
    per_process: int | None = None
    """Jobs at once per worker process in threads or async mode (None: the default)."""
    sleep: float = 0.0
    """Seconds each job waits before its INCR (``BenchSleep``; async mode awaits)."""

    def __attrs_post_init__(self) -> None:
        if self.waiting < 0:
            raise ConfigurationError(f"waiting must be 0 or more, not {self.waiting}")
        if self.waiting and self.latency:
            raise ConfigurationError(
                "the pickup latency is measured on an idle node: leave out waiting jobs "
                "or the latency test"
            )


@attrs.frozen
class BenchResult:
    """The figures of one run (times in seconds, memory in bytes)."""

    jobs: int
    concurrency: int
    redis: str
    incr: bool
    enqueue_seconds: float
    drain: Drain
    enqueue_commands: dict[str, int]
    """Commands of the enqueue, by name."""
    commands: dict[str, int]
    """Commands from the end of the enqueue to the end of the drain, by name."""
    peak_rss: int
    peak_pss: int
    processes: int
    pickups: tuple[float, ...] = ()
    system: str = "verk_actors"
    setting: str = ""
    waiting: int = 0
    node_cpu: float = 0.0
    """CPU seconds the node's processes used from when it was up (``start_node``
    answered) to the end of the drain: its cost per job, less noisy than the rate."""
    client: str = attrs.field(factory=client_stack)
    """The Python and redis-py the jobs ran with (their INCR is mostly client CPU)."""

    @property
    def commands_per_job(self) -> float:
        """Commands the job server ran per job, the enqueue included."""
        return (sum(self.enqueue_commands.values()) + sum(self.commands.values())) / self.jobs

    @property
    def enqueue_commands_per_job(self) -> float:
        """Commands the enqueue cost per job."""
        return sum(self.enqueue_commands.values()) / self.jobs

    def pickup_ms(self, q: float) -> float | None:
        """The ``q``-th percentile pickup time in ms; None without a latency test."""
        return percentile(self.pickups, q) * 1000 if self.pickups else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "system": self.system,
            "setting": self.setting,
            "jobs": self.jobs,
            "concurrency": self.concurrency,
            "redis": self.redis,
            "client": self.client,
            "incr": self.incr,
            "enqueue_seconds": self.enqueue_seconds,
            "enqueue_jobs_per_s": self.jobs / self.enqueue_seconds,
            "drain_jobs_per_s": self.drain.rate,
            "drain_jobs": self.drain.jobs,
            "drain_seconds": self.drain.seconds,
            "drain_wall_seconds": self.drain.wall,
            "drain_steal": self.drain.steal,
            "waiting": self.waiting,
            "pickup_p50_ms": self.pickup_ms(50),
            "pickup_p99_ms": self.pickup_ms(99),
            "pickup_max_ms": self.pickup_ms(100),
            "pickup_jobs": len(self.pickups),
            "node_cpu_us_per_job": 1e6 * self.node_cpu / self.jobs,
            "commands_per_job": self.commands_per_job,
            "enqueue_commands_per_job": self.enqueue_commands_per_job,
            "enqueue_commands": self.enqueue_commands,
            "commands": self.commands,
            "peak_rss_bytes": self.peak_rss,
            "peak_pss_bytes": self.peak_pss,
            "processes": self.processes,
            "rss_per_slot_bytes": self.peak_rss / self.concurrency,
            "pss_per_slot_bytes": self.peak_pss / self.concurrency,
        }


def standard_pickups(
    client: Client, counter: redis.Redis, progress: Progress, *, count: int = PICKUP_JOBS
) -> list[float]:
    """The pickup-latency test of the standard benchmark: ``BenchPickup`` jobs on the
    bench queue (the Sidekiq twin has the same name), their times in seconds."""
    return measure_pickups(
        client,
        counter,
        "BenchPickup",
        queue=QUEUE,
        key=PICKUP_KEY,
        count=count,
        progress=progress,
    )


def enqueue_all(
    client: Client,
    commands: CommandCounter,
    worker: type | str,
    jobs: int,
    args: tuple[Any, ...] = (),
) -> tuple[float, dict[str, int]]:
    """``enqueue_many`` ``jobs`` jobs of ``args``; the seconds and commands it took."""
    commands.start()
    begin = time.monotonic()
    client.enqueue_many(worker, [args] * jobs, queue=QUEUE)
    seconds = time.monotonic() - begin
    return seconds, commands.stop()


def run_bench(
    options: BenchOptions,
    progress: Progress | None = None,
    *,
    on_started: Callable[[Callable[[], dict[int, str]]], None] | None = None,
    on_drained: Callable[[], None] | None = None,
) -> BenchResult:
    """Run the benchmark; start and stop every server and process it needs.

    ``on_started`` is called once the node runs with a function that lists its
    processes (pid -> title), and ``on_drained`` when the drain ends (the profiling
    script attaches py-spy in between).
    """
    progress = progress or Progress(None)
    tmp = Path(tempfile.mkdtemp(prefix="verk-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            servers = open_servers(options, tmp, stack, progress)
            return _run(
                options, servers, stack, progress, on_started=on_started, on_drained=on_drained
            )
    finally:
        progress.done()
        shutil.rmtree(tmp, ignore_errors=True)


def _run(
    options: BenchOptions,
    servers: Servers,
    stack: contextlib.ExitStack,
    progress: Progress,
    *,
    on_started: Callable[[Callable[[], dict[int, str]]], None] | None,
    on_drained: Callable[[], None] | None,
) -> BenchResult:
    concurrency = options.concurrency or Settings().queues[0].concurrency
    spec = QueueSpec.checked(QUEUE, concurrency, options.mode, options.per_process)
    settings = Settings(redis_url=servers.url, queues=(spec,)).with_changes(
        imports=(workload.__name__,)
        + (("verk_actors.bench.async_workload",) * (spec.mode == ASYNC)),
        job_logs=options.job_logs,
        metrics_port=free_port() if options.metrics else None,
        metrics_history=options.metrics_history,
        min_workers=options.min_workers,
    )
    admin_port = free_port()
    if options.job_logs:
        # The actor processes fork from this one and log through its handlers too.
        configure_launcher_logging(options.log_level)
    with environ(COUNTER_URL_ENV, servers.counter_url):  # the admin forks now and keeps it
        asys = start_actor_system(admin_port, log_level=options.log_level)
    stack.callback(asys.shutdown)
    commands = CommandCounter(servers.jobs)
    client = stack.enter_context(Client(url=servers.url))
    client.redis.ping()

    progress.show(f"enqueueing {options.jobs:,} jobs", force=True)
    worker: str | type = BenchIncr if options.incr else BenchNoop
    args: tuple[Any, ...] = ()
    if spec.mode == ASYNC and options.incr:
        # An async queue's own kind of job, even a quick one (a plain def perform
        # there runs in a thread of the process: a hand-off each way per job).
        worker, args = "BenchAsyncSleep", (options.sleep,)
    elif options.sleep:
        worker, args = BenchSleep, (options.sleep,)
    enqueue_seconds, enqueue_calls = enqueue_all(client, commands, worker, options.jobs, args)
    if options.waiting:
        progress.show(f"enqueueing {options.waiting:,} jobs that stay waiting", force=True)
        for start in range(0, options.waiting, 100_000):
            count = min(100_000, options.waiting - start)
            client.enqueue_many(worker, [()] * count, queue=QUEUE)
        # Runs after the node has stopped (and given its in-progress jobs back).
        stack.callback(servers.jobs.delete, keys.queue_key(QUEUE))

    commands.start()
    memory = stack.enter_context(MemorySampler(lambda: list(node_processes(admin_port))))
    progress.show("starting the node", force=True)
    started = time.monotonic()
    root, node = start_node(asys, settings)
    stack.callback(stop_node, asys, root, settings)
    if on_started is not None:
        on_started(lambda: node_processes(admin_port))
    queue_keys = (keys.queue_key(QUEUE), keys.inprogress_key(QUEUE, node.node_id))
    cpu_before = cpu_of(list(node_processes(admin_port)))

    def done() -> int:
        if options.incr:
            return int(servers.counter.get(COUNTER_KEY) or 0)
        return options.jobs + options.waiting - sum(commands.llens(*queue_keys))

    drain = wait_drained(
        options.jobs,
        done,
        lambda: options.waiting > 0 or not any(commands.llens(*queue_keys)),
        started=started,
        timeout=options.timeout or 60 + 0.005 * options.jobs,
        progress=progress,
    )
    calls = commands.stop()
    node_cpu = cpu_since(cpu_before, list(node_processes(admin_port)))
    if on_drained is not None:
        on_drained()
    pickups: list[float] = []
    if options.latency:
        with memory.paused():
            time.sleep(SETTLE)
            pickups = standard_pickups(client, servers.counter, progress, count=options.pickups)
    memory.sample(full=True)
    progress.show("stopping the node", force=True)
    return BenchResult(
        jobs=options.jobs,
        concurrency=concurrency,
        redis=servers.where,
        incr=options.incr,
        enqueue_seconds=enqueue_seconds,
        drain=drain,
        enqueue_commands=enqueue_calls,
        commands=calls,
        peak_rss=memory.peak_rss,
        peak_pss=memory.peak_pss,
        processes=memory.processes,
        pickups=tuple(pickups),
        setting=f"1 node x {concurrency} workers"
        + (f" ({spec.mode}, {spec.per_process} per process)" if spec.mode != "process" else "")
        + (f", jobs sleep {options.sleep:g} s" if options.sleep else ""),
        waiting=options.waiting,
        node_cpu=node_cpu,
    )
