"""``verk-actors web``: serve the dashboard and its JSON API with uvicorn.

It binds 127.0.0.1 by default. Any other address serves the dashboard to the network,
so it needs authentication: a bearer token (``--token``, ``VERK_WEB_TOKEN`` or
``web_token`` in the config file; a browser logs in with any user name and the token
as password) or HTTP basic (``--basic USER:PASS``, or ``VERK_WEB_USER`` and
``VERK_WEB_PASSWORD``, or ``web_user`` and ``web_password``); without one, the command
exits 2 saying so. The dashboard needs the ``web`` extra
(``pip install 'verk_actors[web]'``).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any

from verk_actors.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, redis_url, say
from verk_actors.config.file import CONFIG_ENV, load_web
from verk_actors.config.redis_url import redact_url
from verk_actors.config.web_auth import PASSWORD_ENV, TOKEN_ENV, USER_ENV, web_credentials
from verk_actors.errors import ConfigurationError

DEFAULT_BIND = "127.0.0.1:9292"
GRACE = 3
"""Seconds open connections (event streams never end by themselves) get at a stop."""
EXTRA = "pip install 'verk_actors[web]'"


def add_parser(commands: Any) -> None:
    """Add ``web`` to the subcommands."""
    parser = commands.add_parser(
        "web",
        help="serve the web dashboard and its JSON API",
        description=(
            "Serve the dashboard (queues, retries, scheduled and dead jobs, nodes and their "
            "live supervision trees, running jobs, job events as they happen) and its JSON "
            "API under /api. It reads Redis directly: no node needs to run. Needs the web "
            f"extra: {EXTRA}."
        ),
    )
    parser.add_argument(
        "--bind",
        default=DEFAULT_BIND,
        metavar="HOST:PORT",
        help=f"address to listen on (default {DEFAULT_BIND}); any but loopback needs auth",
    )
    parser.add_argument(
        "--redis-url", default=None, help="Redis URL (env VERK_REDIS_URL); rediss:// for TLS"
    )
    parser.add_argument(
        "--config", metavar="FILE", default=None, help=f"TOML file of settings (env {CONFIG_ENV})"
    )
    parser.add_argument("--read-only", action="store_true", help="show everything, allow no action")
    parser.add_argument(
        "--token",
        default=None,
        help=f"require this bearer token (env {TOKEN_ENV}, or web_token in the config file; "
        "prefer those: ps shows flags)",
    )
    parser.add_argument(
        "--basic",
        default=None,
        metavar="USER:PASS",
        help=f"require HTTP basic (env {USER_ENV} and {PASSWORD_ENV}, or web_user and "
        "web_password in the config file)",
    )
    parser.add_argument(
        "--prefix", default="", help="serve below this path (e.g. /verk behind a proxy)"
    )
    parser.set_defaults(run=run)


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a host and a port."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"--bind takes HOST:PORT, e.g. {DEFAULT_BIND}; got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The token and the ``USER:PASS`` pair: flags, else the environment, else the
    config file (``web_token``, ``web_user``, ``web_password``)."""
    found = web_credentials(load_web(getattr(args, "config", None)), os.environ)
    token = args.token or found["web_token"]
    basic = args.basic
    if basic is None and (found["web_user"] or found["web_password"]):
        basic = f"{found['web_user'] or ''}:{found['web_password'] or ''}"
    return token, basic


def run(args: argparse.Namespace) -> int:
    host, port = parse_bind(args.bind)
    token, basic = credentials(args)
    if token is None and basic is None and not is_loopback(host):
        sys.stderr.write(
            f"verk-actors: error: binding {host} would show every job to the network without "
            f"a password: set {TOKEN_ENV} (or --token TOKEN, or web_token in the config "
            f"file), or {USER_ENV} and {PASSWORD_ENV} (or --basic USER:PASS), or bind "
            "127.0.0.1\n"
        )
        return EXIT_USAGE
    try:  # the web extra is optional: imported only when asked for
        import uvicorn  # noqa: PLC0415

        from verk_actors.web import Auth, create_app  # noqa: PLC0415
    except ImportError as exc:
        sys.stderr.write(
            f"verk-actors: error: the dashboard needs the web extra ({exc.name} is missing): "
            f"{EXTRA}\n"
        )
        return EXIT_FAILURE
    auth: Auth | None = None
    if basic is not None:
        pair = Auth.basic(basic)
        auth = Auth(token=token, user=pair.user, password=pair.password)
    elif token is not None:
        auth = Auth(token=token)
    url = redis_url(args)
    app = create_app(url, read_only=args.read_only, auth=auth, prefix=args.prefix)
    shown = f"[{host}]" if ":" in host else host
    say(
        f"verk-actors web: the dashboard of {redact_url(url)} at "
        f"http://{shown}:{port}{args.prefix}/"
        + (" (read-only)" if args.read_only else "")
        + (" (authentication required)" if auth is not None else "")
    )
    sys.stdout.flush()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACE,
    )
    return EXIT_OK
