"""``MetricsActor``: serves the node's Prometheus metrics at ``/metrics``.

A child of VerkRoot, started only when ``Settings.metrics_port`` is set. It listens on
that port itself and answers each scrape from its own process (the listening socket is
watched with ``ThespianWatch``, as the QueueManager watches its ``BLMOVE``): a node's
figures already meet in a few actors, so they are sent here instead of being written
to prometheus' multiprocess directory.

- each WorkersManager sends its queue's running totals about once a second
  (``QueueFigures``: jobs by class and outcome, duration buckets, workers busy,
  workers killed and replaced);
- supervisors say when they restart a child (``ActorRestarted``), queue managers when
  Redis fails or comes back (``RedisErrorsSeen``);
- at each scrape it reads queue sizes and latencies and the sets' sizes from Redis.

A restarted MetricsActor has lost the restart and error counts (Prometheus sees a
counter reset); the job counts come back with the next totals.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from thespian.actors import ThespianWatch, WatchMessage

from verk_actors.actors._metrics_tally import NodeTally
from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import (
    ActorRestarted,
    ChildFailed,
    ChildReady,
    InitMetrics,
    MetricsQueues,
    QueueFigures,
    RedisErrorsSeen,
)
from verk_actors.store.admin.metrics import MetricsReader, RedisFigures
from verk_actors.store.failures import REDIS_ERRORS, describe

log = logging.getLogger(__name__)

READ_TIMEOUT = 2.0
"""Seconds a scraper gets to send its request and read the answer (the actor waits)."""

MAX_REQUEST = 16_384
"""Bytes of a request's head read at most."""

ACCEPTS_PER_WAKE = 8
"""Connections answered in one go before the actor reads its messages again."""


def package_version() -> str:
    try:
        return version("verk_actors")
    except PackageNotFoundError:
        return "unknown"


def request_path(head: bytes) -> tuple[str, str]:
    """The method and path (query left out) of an HTTP request head."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) < 2:
        return "", ""
    return parts[0], parts[1].split("?", 1)[0]


def http_response(status: str, content_type: str, body: bytes, *, head: bool = False) -> bytes:
    lines = [
        f"HTTP/1.1 {status}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("latin-1") + (b"" if head else body)


class MetricsActor(VerkActor):
    """Answers Prometheus scrapes with the figures the node's actors send it."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.init: InitMetrics | None = None
        self.tally = NodeTally()
        self.listener: socket.socket | None = None
        self.reader: MetricsReader | None = None
        self.scrapes = 0

    # Every return path hands Thespian the listening socket to watch.
    def receiveMessage(self, message: Any, sender: Any) -> Any:
        super().receiveMessage(message, sender)
        if self.listener is not None:
            return ThespianWatch([self.listener.fileno()])
        return None

    def tree_detail(self) -> str:
        if self.init is None or self.listener is None:
            return "not listening"
        where = f"{self.init.settings.metrics_bind}:{self.init.settings.metrics_port}"
        return f"http://{where}/metrics, {self.scrapes} scrapes"

    def receiveMsg_InitMetrics(self, message: InitMetrics, sender: Any) -> None:
        self.init = message
        self.tally.queues = message.queues
        if self.listener is None:
            try:
                self.listener = self._listen(message)
            except OSError as exc:
                where = f"{message.settings.metrics_bind}:{message.settings.metrics_port}"
                log.error("metrics: cannot listen on %s: %s", where, exc)
                self.send(sender, ChildFailed(type(exc).__name__, f"{where}: {exc}"))
                return
        self.send(sender, ChildReady(os.getpid()))

    def _listen(self, message: InitMetrics) -> socket.socket:
        settings = message.settings
        assert settings.metrics_port is not None
        if not self.can_watch:
            raise OSError("this actor system base cannot watch sockets (use multiprocTCPBase)")
        family = socket.AF_INET6 if ":" in settings.metrics_bind else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((settings.metrics_bind, settings.metrics_port))
            listener.listen(16)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        log.info(
            "node %s: metrics at http://%s:%d/metrics",
            message.node_id,
            settings.metrics_bind,
            settings.metrics_port,
        )
        return listener

    # --- figures ---------------------------------------------------------------------------

    def receiveMsg_QueueFigures(self, message: QueueFigures, sender: Any) -> None:
        self.tally.report(sender, message)

    def receiveMsg_ActorRestarted(self, message: ActorRestarted, sender: Any) -> None:
        self.tally.restarted(message)

    def receiveMsg_RedisErrorsSeen(self, message: RedisErrorsSeen, sender: Any) -> None:
        tally, actor = self.tally, message.actor
        tally.redis_errors[actor] = tally.redis_errors.get(actor, 0) + message.count
        tally.redis_reconnects[actor] = tally.redis_reconnects.get(actor, 0) + message.reconnects

    def receiveMsg_MetricsQueues(self, message: MetricsQueues, sender: Any) -> None:
        self.tally.queues = message.queues

    # --- scrapes ---------------------------------------------------------------------------

    def receiveMsg_WatchMessage(self, message: WatchMessage, sender: Any) -> None:
        listener = self.listener
        if listener is None or listener.fileno() not in message.ready:
            return
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                conn, _peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("metrics: accepting a scrape failed: %s", exc)
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(READ_TIMEOUT)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            method, path = request_path(head)
            if method not in ("GET", "HEAD"):
                reply = http_response("405 Method Not Allowed", "text/plain", b"GET only\n")
            elif path in ("/metrics", "/"):
                content_type, body = self._render()
                reply = http_response("200 OK", content_type, body, head=method == "HEAD")
            else:
                reply = http_response("404 Not Found", "text/plain", b"see /metrics\n")
            conn.sendall(reply)
        except OSError as exc:
            log.debug("metrics: a scrape's connection failed: %s", exc)

    def _render(self) -> tuple[str, bytes]:
        # Imported here: only a node with metrics on needs prometheus_client.
        from verk_actors.actors import _metrics_export as export  # noqa: PLC0415

        assert self.init is not None
        self.scrapes += 1
        info = export.NodeInfo(
            package_version(),
            self.init.node_id,
            str(self.capabilities.get("Thespian ActorSystem Name", "")),
        )
        return export.CONTENT_TYPE, export.render(self.tally, self._read_redis(), info)

    def _read_redis(self) -> RedisFigures | None:
        assert self.init is not None
        try:
            if self.reader is None:
                self.reader = MetricsReader(self.init.settings.redis_url, self.init.node_id)
            return self.reader.figures(self.tally.queues)
        except REDIS_ERRORS as exc:
            errors = self.tally.redis_errors
            errors["metrics"] = errors.get("metrics", 0) + 1
            log.warning("metrics: Redis did not answer the scrape: %s", describe(exc))
            return None

    def stopping(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.close()
            self.listener = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None
