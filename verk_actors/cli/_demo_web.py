"""The dashboard beside a demo node (``verk-actors start --demo``), when the ``web``
extra is installed: uvicorn in a thread of the launcher, on 127.0.0.1 only (port 9292,
or a free one if that is taken), stopped with the node."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from verk_actors.errors import ConfigurationError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PORT = 9292
START_TIMEOUT = 10.0


def _port() -> int:
    """9292 if nobody listens there, else a free port."""
    with socket.socket() as sock:
        try:
            sock.bind((HOST, PORT))
        except OSError:
            sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_dashboard(redis_url: str, stack: contextlib.ExitStack) -> str | None:
    """Serve the dashboard of ``redis_url`` until ``stack`` closes; its URL, or None
    (said in the log) when the web extra is missing or it did not start."""
    try:  # the web extra is optional
        import uvicorn  # noqa: PLC0415

        from verk_actors.web import create_app  # noqa: PLC0415
    except ImportError:
        log.info("demo: pip install 'verk_actors[web]' to watch it on the web dashboard")
        return None
    port = _port()
    try:
        app = create_app(redis_url)
    except ConfigurationError as exc:
        log.warning("demo: no dashboard: %s", exc)
        return None
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=HOST,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,  # event streams never end by themselves
        )
    )
    thread = threading.Thread(target=server.run, name="verk-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(5)

    stack.callback(stop)
    if not server.started:
        log.warning("demo: the dashboard did not start on %s:%d", HOST, port)
        return None
    url = f"http://{HOST}:{port}/"
    log.info("demo: the dashboard is at %s", url)
    return url
