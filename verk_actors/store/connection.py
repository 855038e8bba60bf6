"""Redis connections from a URL: passwords and TLS (``rediss://``), never logging secrets."""

from __future__ import annotations

import redis

from verk_actors.config.redis_url import check_url, redact_url
from verk_actors.errors import ConfigurationError


def connect(
    url: str,
    *,
    name: str = "verk_actors",
    socket_timeout: float | None = 10.0,
    connect_timeout: float = 5.0,
) -> redis.Redis:
    """A client for ``url`` that names itself ``name`` in ``CLIENT LIST``.

    ``socket_timeout`` bounds every command; callers that block (BLMOVE) pass a bigger
    one. ``connect_timeout`` bounds opening a connection.
    """
    check_url(url)
    try:
        return redis.Redis.from_url(
            url,
            client_name=name,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            health_check_interval=30,
        )
    except ValueError as exc:
        raise ConfigurationError(f"Redis URL {redact_url(url)!r} is not usable: {exc}") from None
