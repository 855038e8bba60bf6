"""Redis connections from a URL: passwords and TLS (``rediss://``), never logging secrets."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis

from verk_actors.errors import ConfigurationError

SCHEMES = ("redis", "rediss", "unix")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}" if user else f":***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_url(url: str) -> str:
    """Return ``url`` if redis-py can use it, else raise ConfigurationError saying why."""
    scheme = urlsplit(url).scheme if isinstance(url, str) else ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"Redis URL {redact_url(str(url))!r} must start with redis://, rediss:// (TLS) "
            "or unix://, e.g. redis://localhost:6379/0"
        )
    return url


def connect(
    url: str,
    *,
    name: str = "verk_actors",
    socket_timeout: float | None = 10.0,
) -> redis.Redis:
    """A client for ``url`` that names itself ``name`` in ``CLIENT LIST``.

    ``socket_timeout`` bounds every command; callers that block (BLMOVE) pass a bigger one.
    """
    check_url(url)
    try:
        return redis.Redis.from_url(
            url,
            client_name=name,
            socket_timeout=socket_timeout,
            socket_connect_timeout=5.0,
            socket_keepalive=True,
            health_check_interval=30,
        )
    except ValueError as exc:
        raise ConfigurationError(f"Redis URL {redact_url(url)!r} is not usable: {exc}") from None
