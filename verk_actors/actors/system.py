"""Starting the Thespian actor system a node runs on, and a node in it.

verk_actors runs on ``multiprocTCPBase``: one process per actor (a job that crashes
or hangs takes down one worker, not the node), about 2 ms for a parent to hear that
a child died, and the only base that can watch sockets (``ThespianWatch``), which is
how an idle queue picks up a new job at once instead of polling. The queue base
takes about 2 s to notice a dead child and can hang under load; the in-process base
runs nothing in the background.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from thespian.actors import ActorExitRequest, ActorSystem

from verk_actors.actors import _thespian as thespian_fixes
from verk_actors.actors._keyring import trust_key
from verk_actors.actors._node_key import read_key
from verk_actors.actors._orphans import kill_admin_left_on
from verk_actors.actors.messages import (
    ConfigureVerk,
    RequestFailed,
    StopVerk,
    VerkStarted,
    VerkStopped,
)
from verk_actors.actors.root import VerkRoot
from verk_actors.config.log_format import TEXT_FORMAT, formatter, formatter_config
from verk_actors.config.settings import Settings
from verk_actors.errors import ActorSystemError, ConfigurationError, VerkError

log = logging.getLogger(__name__)

BASE = "multiprocTCPBase"
ROOT_NAME = "verk_root"
"""The ``globalName`` of a node's VerkRoot, so ``verk-actors tree`` can find it."""
LOG_FORMAT = TEXT_FORMAT
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
STOP_GRACE = 20.0
"""Seconds past ``shutdown_timeout`` a stop may take (the queues give their jobs back)."""
HURRY_GRACE = 10.0
"""Seconds a stop told to hurry may still take: workers are killed at once."""
LISTEN_STEP = 0.2
"""Seconds between two looks at whether a stop must hurry."""


def free_port(host: str = thespian_fixes.LOOPBACK) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = thespian_fixes.LOOPBACK) -> bool:
    """True when some socket on this host holds ``port`` (as Thespian itself probes)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_admin_port_free(port: int) -> None:
    """Refuse an admin port already in use: starting there would join that actor system."""
    if port_in_use(port):
        raise ConfigurationError(
            f"admin port {port} is in use, by another node or another program; a node must "
            "have an actor system of its own: give this one another --admin-port, or none "
            "to have a free one chosen"
        )


def check_metrics_port_free(host: str, port: int) -> None:
    """Refuse a metrics port something already listens on (the node could not serve it)."""
    if port_in_use(port, host):
        raise ConfigurationError(
            f"metrics port {port} on {host} is in use by another program or node; give "
            "--metrics-port another port"
        )


def check_log_level(level: str) -> str:
    """``level`` as a name ``logging`` knows (``info`` -> ``INFO``), or ConfigurationError."""
    name = level.strip().upper()
    if name not in LOG_LEVELS:
        raise ConfigurationError(
            f"{level!r} is not a log level; use one of {', '.join(LOG_LEVELS)}"
        )
    return name


def log_defs(
    level: str = "INFO", stream: str = "ext://sys.stderr", log_format: str = "text"
) -> dict[str, Any]:
    """The logging config every actor process applies (Thespian's ``logDefs``);
    ``log_format`` is ``text`` or ``json`` (``verk_actors.config.log_format``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": formatter_config(log_format)},
        "handlers": {
            "out": {"class": "logging.StreamHandler", "formatter": "plain", "stream": stream}
        },
        "loggers": {"verk_actors": {"level": level}},
        "root": {"level": "WARNING", "handlers": ["out"]},
    }


def start_actor_system(
    admin_port: int | None = None,
    *,
    log_level: str = "INFO",
    transient: bool = True,
    log_format: str = "text",
) -> ActorSystem:
    """Start a private ``multiprocTCPBase`` system on ``admin_port`` (a free one if None).

    Shut it down with ``.shutdown()``; until then its admin process keeps running. It
    never joins a system already on ``admin_port``: ConfigurationError if the port is
    taken. Every socket of the system listens on 127.0.0.1, and its frames are sealed
    with this process's key (``thespian_fixes``).
    """
    level = check_log_level(log_level)  # a bad one would kill the logger, not the admin
    thespian_fixes.apply()
    if admin_port:
        check_admin_port_free(admin_port)
    port = admin_port or free_port()
    try:
        return ActorSystem(
            BASE,
            {"Admin Port": port},
            logDefs=log_defs(level, log_format=log_format),
            transientUnique=transient,
        )
    except Exception as exc:
        # Thespian's admin daemonizes before the start can fail: it would stay, alone.
        left = kill_admin_left_on(port)
        behind = f" (stopped the {left} process(es) it had left)" if left else ""
        raise ActorSystemError(
            f"could not start the Thespian actor system on admin port {port}{behind}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def start_node(
    asys: ActorSystem,
    settings: Settings,
    *,
    launcher_pid: int | None = None,
    timeout: float = 30.0,
) -> tuple[Any, VerkStarted]:
    """Create a VerkRoot in ``asys`` and configure it; raise the reason if it refuses."""
    root = asys.createActor(VerkRoot, globalName=ROOT_NAME)
    reply = asys.ask(root, ConfigureVerk(settings, launcher_pid), timeout)
    if isinstance(reply, VerkStarted):
        return root, reply
    asys.tell(root, ActorExitRequest())
    if isinstance(reply, RequestFailed):
        raise VerkError(f"{reply.error_class}: {reply.message}")
    raise ActorSystemError(
        f"VerkRoot did not answer ConfigureVerk within {timeout:g} s (got {reply!r})"
    )


def stop_node(
    asys: ActorSystem,
    root: Any,
    settings: Settings,
    *,
    hurry: threading.Event | None = None,
    hurrying: Callable[[], None] | None = None,
) -> VerkStopped | None:
    """Ask the node to stop gracefully and wait for it; None if it did not answer.

    Running jobs get ``settings.shutdown_timeout`` seconds to finish. Once ``hurry`` is
    set (a second Ctrl-C), ``hurrying()`` is called and the node is told to stop now:
    jobs still running are killed and go back to their queues, and the wait is cut to
    ``HURRY_GRACE`` seconds.
    """
    if hurry is None:
        reply = asys.ask(root, StopVerk(), settings.shutdown_timeout + STOP_GRACE)
        return reply if isinstance(reply, VerkStopped) else None
    asys.tell(root, StopVerk())
    deadline = time.monotonic() + settings.shutdown_timeout + STOP_GRACE
    hurried = False
    while (left := deadline - time.monotonic()) > 0:
        reply = asys.listen(min(left, LISTEN_STEP))
        if isinstance(reply, VerkStopped):
            return reply
        if hurry.is_set() and not hurried:
            hurried = True
            if hurrying is not None:
                hurrying()
            asys.tell(root, StopVerk(timeout=0.0))
            deadline = min(deadline, time.monotonic() + HURRY_GRACE)
    return None


def configure_launcher_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Logging for the launcher process itself (actors use ``log_defs``); called again,
    it changes the level and the format."""
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("verk_actors").setLevel(check_log_level(level))
    shown = formatter(log_format)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(shown)


def attach(admin_port: int, host: str = thespian_fixes.LOOPBACK) -> ActorSystem:
    """Join the running actor system of a node on this host (never starts one).

    Its frames must be sealed with the node's key, read from the node's private key
    file: only the node's user on its host can attach.
    """
    thespian_fixes.apply()
    trust_key(admin_port, read_key(admin_port))
    with socket.socket() as probe:
        probe.settimeout(2.0)
        try:
            probe.connect((host, admin_port))
        except OSError as exc:
            raise ActorSystemError(
                f"no node's actor system answers on {host}:{admin_port} ({exc}); is the node "
                "running on this host?"
            ) from None
    return ActorSystem(BASE, {"Admin Port": admin_port}, transientUnique=True)


def root_of(asys: ActorSystem) -> Any:
    """The VerkRoot of the node whose actor system ``asys`` is."""
    return asys.createActor(VerkRoot, globalName=ROOT_NAME)
