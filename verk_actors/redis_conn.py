"""Redis connections from a URL: passwords and TLS (``rediss://``), never logging secrets."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import redis

from verk_actors.errors import ConfigurationError

SCHEMES = ("redis", "rediss", "unix")


def redact_url(url: str) -> str:
    """``url`` with any password (before the host or as ``?password=``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    # redis-py also reads a password from the query string.
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")  # host as written: keeps [::1] and the port
        user = userinfo.partition(":")[0]
        netloc = f"{user}:***@{host}" if user else f":***@{host}"
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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
