"""Redis URLs as settings: which forms work, and how they are printed without secrets."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from verk_actors.errors import ConfigurationError

SCHEMES = ("redis", "rediss", "unix")


def _credentials(url: str) -> tuple[str, str, str, bool] | None:
    """``(scheme, userinfo, after, garbled)`` when ``url`` carries a user or password.

    ``after`` is the URL after the ``@``. ``garbled`` is True when a password holds an
    unescaped ``#``, ``/`` or ``?``, which end the host part of a URL early: the
    userinfo then runs to the last ``@``, and the URL cannot work as written.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        return scheme, userinfo, rest[len(userinfo) + 1 :], False
    if parts is not None and _host_and_port(parts):
        return None  # an "@" in the path or query, after a well-formed host
    userinfo, _, after = rest.rpartition("@")
    return scheme, userinfo, after, True


def _host_and_port(parts: SplitResult) -> bool:
    """True when ``parts`` has a host, and a port that is a number if it has one."""
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return bool(parts.hostname) or parts.scheme == "unix"


def redact_url(url: str) -> str:
    """``url`` with any password (before the host or as ``?password=``) replaced by ``***``.

    A password with unescaped ``#``, ``/`` or ``?`` is hidden too: everything up to the
    last ``@`` counts as the user's.
    """
    found = _credentials(url)
    if found is not None:
        scheme, userinfo, after, _ = found
        url = f"{scheme}://{userinfo.partition(':')[0]}:***@{after}"
    # redis-py also reads a password from the query string.
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)


def check_url(url: str) -> str:
    """Return ``url`` if redis-py can use it, else raise ConfigurationError saying why."""
    scheme = urlsplit(url).scheme if isinstance(url, str) else ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"Redis URL {redact_url(str(url))!r} must start with redis://, rediss:// (TLS) "
            "or unix://, e.g. redis://localhost:6379/0"
        )
    found = _credentials(url)
    if found is not None and found[3]:
        raise ConfigurationError(
            f"the password in Redis URL {redact_url(url)!r} holds a '#', '/' or '?', which "
            "end the host part of a URL: percent-encode them (%23, %2F, %3F; in Python "
            "urllib.parse.quote(password, safe='')), or pass the password in VERK_REDIS_URL "
            "or the config file written that way"
        )
    return url
