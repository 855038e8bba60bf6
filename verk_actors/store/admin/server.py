"""What the Redis server says of itself (``INFO``): version, memory, clients, uptime.

Only these few fields are read: nothing that names a password or a file path.
"""

from __future__ import annotations

from typing import Any

import attrs
import redis


@attrs.frozen
class ServerInfo:
    """The Redis server as a dashboard shows it."""

    version: str | None
    mode: str | None
    uptime_seconds: int | None
    used_memory: int | None
    used_memory_human: str | None
    used_memory_peak_human: str | None
    maxmemory: int | None
    connected_clients: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return attrs.asdict(self)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def server_info(client: redis.Redis) -> ServerInfo:
    """Version, mode, uptime, memory and connected clients, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for section in ("server", "memory", "clients"):
        pipe.info(section)
    info: dict[str, Any] = {}
    for part in pipe.execute():
        info.update(part)
    return ServerInfo(
        version=_str(info.get("valkey_version") or info.get("redis_version")),
        mode=_str(info.get("redis_mode") or info.get("server_mode")),
        uptime_seconds=_int(info.get("uptime_in_seconds")),
        used_memory=_int(info.get("used_memory")),
        used_memory_human=_str(info.get("used_memory_human")),
        used_memory_peak_human=_str(info.get("used_memory_peak_human")),
        maxmemory=_int(info.get("maxmemory")),
        connected_clients=_int(info.get("connected_clients")),
    )
