"""The web dashboard's credentials: ``verk-actors web`` flags over ``VERK_WEB_*`` over the
config file.

They are not node settings (a node never reads them), so they are no ``Settings``
fields; the config file a node reads may hold them all the same::

    web_token = "a long random string"    # or VERK_WEB_TOKEN, or --token
    web_user = "ops"                      # HTTP basic: VERK_WEB_USER and
    web_password = "secret"               # VERK_WEB_PASSWORD, or --basic USER:PASS
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from verk_actors.errors import ConfigurationError

TOKEN_ENV = "VERK_WEB_TOKEN"  # noqa: S105 - the variable's name, not a secret
USER_ENV = "VERK_WEB_USER"
PASSWORD_ENV = "VERK_WEB_PASSWORD"  # noqa: S105 - same

WEB_KEYS = {"web_token": TOKEN_ENV, "web_user": USER_ENV, "web_password": PASSWORD_ENV}
"""Config file keys of the dashboard's credentials, and their variables."""


def check_web_key(path: Path, key: str, raw: Any) -> str:
    """A credential read from the config file: a non-empty string, else ConfigurationError."""
    if not isinstance(raw, str) or not raw:
        raise ConfigurationError(
            f'{path}: key {key!r} must be a non-empty string, e.g. {key} = "..."'
        )
    return raw


def web_credentials(
    file_values: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """``web_token``, ``web_user`` and ``web_password``: each from its variable, else the
    config file's ``file_values``, else None (flags are applied by the caller)."""
    env = os.environ if environ is None else environ
    return {key: env.get(var) or file_values.get(key) or None for key, var in WEB_KEYS.items()}
