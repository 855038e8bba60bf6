"""Redis connections from a URL: passwords and TLS (``rediss://``), never logging secrets.

``Connection`` is the type of what ``connect`` returns, for code outside the store that
hands a connection from one store function to another (the CLI) without importing
redis-py itself. ``session`` is a connection for one command-line action, whose Redis
failures become ``RedisUnavailableError`` with a message saying what to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

import redis

from verk_actors.config.redis_url import check_url, redact_url
from verk_actors.errors import ConfigurationError, RedisUnavailableError
from verk_actors.store.failures import REDIS_ERRORS, is_transient

Connection: TypeAlias = redis.Redis
"""A connection to Redis, as ``connect`` makes it."""


def connect(
    url: str,
    *,
    name: str = "verk_actors",
    socket_timeout: float | None = 10.0,
    connect_timeout: float = 5.0,
) -> Connection:
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


@contextmanager
def session(url: str, *, name: str) -> Iterator[Connection]:
    """A connection to ``url`` for the ``with`` block, closed after it.

    An error reply raised in the block becomes ``RedisUnavailableError`` saying Redis
    refused a command; Redis out of reach (refused, lost, timed out, ``LOADING``)
    becomes one saying where to set the URL. Other errors pass unchanged.
    """
    client = connect(url, name=name)
    try:
        yield client
    except redis.ResponseError as exc:
        raise RedisUnavailableError(f"Redis at {redact_url(url)} refused a command: {exc}") from exc
    except REDIS_ERRORS as exc:
        if not is_transient(exc):
            raise
        raise RedisUnavailableError(
            f"could not reach Redis at {redact_url(url)}: {exc}; check --redis-url, "
            "VERK_REDIS_URL or redis_url in the config file, and that Redis is running"
        ) from exc
    finally:
        client.close()
