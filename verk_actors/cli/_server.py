"""Which Redis a command spoke to: the first line of what it prints, a key of its JSON.

Outside the demo folder every command falls back to ``127.0.0.1:6379`` when no URL is
configured, which may be another program's Redis; saying which server answered makes
that visible. Passwords are never shown (``redact_url``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verk_actors.config.redis_url import redact_url


def server_line(url: str) -> str:
    """The header line naming the server: ``Redis redis://127.0.0.1:6379/0``."""
    return f"Redis {redact_url(url)}"


def with_server(url: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the server first, under ``redis``."""
    return {"redis": redact_url(url), **data}
