"""``verk-actors start``: run a node in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from verk_actors.actors.messages import GetStatus, VerkStatus
from verk_actors.actors.system import (
    check_admin_port_free,
    configure_launcher_logging,
    start_actor_system,
    start_node,
    stop_node,
)
from verk_actors.cli._settings_options import add_settings_options, settings_flags
from verk_actors.config.file import CONFIG_ENV, Resolved, resolve_settings
from verk_actors.config.redis_url import redact_url
from verk_actors.config.settings import Settings
from verk_actors.errors import ConfigurationError
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.store.client import Client
from verk_actors.store.embedded import DEFAULT_DATA_DIR, EmbeddedRedis, running_url

log = logging.getLogger("verk_actors.cli")

HEALTH_EVERY = 2.0
HEALTH_TIMEOUT = 10.0
STOP_GRACE = 20.0
"""Seconds past ``shutdown_timeout`` a stop asked through the API may take."""
DEMO_MODULE = "verk_actors.jobs.demo"


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
    add_settings_options(parser)
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML file of settings (env {CONFIG_ENV}); flags and VERK_* variables win over it",
    )
    parser.add_argument("--admin-port", type=int, help="Thespian admin port (default: a free one)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the embedded server keeps its data (default ./verk-data)",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING... (default INFO)"
    )
    parser.add_argument(
        "--demo", action="store_true", help="also enqueue a few demo jobs (verk_actors.jobs.demo)"
    )
    parser.set_defaults(run=run)


def resolve(args: argparse.Namespace) -> Resolved:
    """Settings from flags over ``VERK_*`` variables over the config file.

    ``--import`` adds to the modules imported by the variables or the file.
    """
    resolved = resolve_settings(settings_flags(args), config=getattr(args, "config", None))
    imports = list(resolved.settings.imports) + list(args.imports or [])
    if args.demo and DEMO_MODULE not in imports:
        imports.append(DEMO_MODULE)
    settings = resolved.settings.with_changes(imports=tuple(dict.fromkeys(imports)))
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


def run(args: argparse.Namespace) -> int:
    """Start the node and keep it running until a signal says stop."""
    configure_launcher_logging(args.log_level.upper())
    resolved = resolve(args)
    settings = resolved.settings
    registry = WorkerRegistry.from_modules(settings.imports)
    if args.admin_port:
        check_admin_port_free(args.admin_port)  # before anything is started
    embedded: EmbeddedRedis | None = None
    if resolved.source("redis_url") is None:
        already = running_url(Path(args.data_dir))
        if already is not None:
            raise ConfigurationError(
                f"an embedded Valkey of another node already runs on {args.data_dir} "
                f"({already}); two servers must not share one data directory. Join that "
                f"node with --redis-url {already}, or give this one another --data-dir"
            )
        embedded = EmbeddedRedis(args.data_dir)
        url = embedded.start()
        settings = settings.with_changes(redis_url=url)
        log.info(
            "no Redis configured: started an embedded Valkey server at %s (data and "
            "persistence in %s); enqueue to it with VERK_REDIS_URL=%s",
            url,
            embedded.data_dir,
            url,
        )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    asys = start_actor_system(args.admin_port, log_level=args.log_level.upper())
    try:
        root, started = start_node(asys, settings, launcher_pid=os.getpid())
        log.info(
            "node %s running: queues %s, Redis %s, workers %s",
            started.node_id,
            ", ".join(f"{q.name}={q.concurrency}" for q in settings.queues),
            redact_url(settings.redis_url),
            ", ".join(n for n in registry.names() if "." not in n) or "(none imported)",
        )
        if args.demo:
            enqueue_demo(settings.redis_url)
        code = watch(asys, root, stop, stop_grace=settings.shutdown_timeout + STOP_GRACE)
        if code is None:
            log.info("stopping: running jobs get up to %g s", settings.shutdown_timeout)
            stopped = stop_node(asys, root, settings)
            if stopped is None:
                log.warning("the node did not confirm its stop; in-progress jobs stay in Redis")
            else:
                log.info("stopped; %d unfinished jobs went back to their queues", stopped.requeued)
            code = 0
        return code
    finally:
        asys.shutdown()
        if embedded is not None:
            embedded.stop()


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
