"""Settings from three layers: command-line flags over ``VERK_*`` variables over a TOML file.

A config file (``--config verk.toml``, or ``VERK_CONFIG``) holds Settings fields by
name (every key, with its flag and variable: ``python -m verk_actors.config.reference``,
or the README's configuration reference)::

    redis_url = "redis://localhost:6379/0"
    imports = ["myapp.workers"]
    poll_interval = 0.5

    [queues]            # or: queues = ["default=25", "mail=5", "images=4:max_jobs=100"]
    default = 25
    mail = 5

    [queues.images]     # a queue with its own recycling limits
    concurrency = 4
    max_jobs = 100      # a new worker process after 100 jobs
    max_memory = 300    # or once one passes 300 MB resident

An unknown key, a value of the wrong type or a file that is not TOML is refused with
a ConfigurationError naming the file, the key and what to write instead.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import TEST_ONLY, Settings, configurable_fields, env_var
from verk_actors.config.web_auth import WEB_KEYS, check_web_key
from verk_actors.errors import ConfigurationError
from verk_actors.jobs.cron import CronEntry

CONFIG_ENV = "VERK_CONFIG"
"""The variable naming a config file when ``--config`` is not given."""

NOT_IN_FILES = TEST_ONLY
"""Settings fields a config file may not set (test-only switches)."""

FLAG, ENV, FILE = "flag", "env", "file"

KIND_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def file_fields() -> dict[str, Any]:
    """Settings fields a config file may set, with their types."""
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in attrs.fields(Settings) if f.name not in NOT_IN_FILES}


def _kinds(hint: Any) -> set[type]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return {k for arg in typing.get_args(hint) for k in _kinds(arg)}
    return {hint} if isinstance(hint, type) else {typing.get_origin(hint) or object}


def _queue_specs(path: Path, raw: Any) -> tuple[QueueSpec, ...]:
    how = (
        'write a table ([queues] then default = 25 or crawl = "500:async:100") '
        'or a list (queues = ["default=25"])'
    )
    try:
        if isinstance(raw, dict):
            return tuple(
                QueueSpec.parse(f"{name}={n}")
                if isinstance(n, str)
                else QueueSpec.checked(str(name), **n)
                if isinstance(n, dict)
                else QueueSpec.checked(str(name), n)
                for name, n in raw.items()
            )
        if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            return tuple(QueueSpec.parse(item) for item in raw)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{path}: key 'queues': {exc}") from None
    raise ConfigurationError(f"{path}: key 'queues' is a {type(raw).__name__}; {how}")


def _cron_entries(path: Path, raw: Any) -> tuple[CronEntry, ...]:
    how = (
        'write a table per entry ([cron.report] then class = "Report" and '
        'cron = "0 9 * * *") or a list (cron = ["report=Report 0 9 * * *"])'
    )
    try:
        if isinstance(raw, dict) and all(isinstance(t, dict) for t in raw.values()):
            return tuple(CronEntry.from_table(str(name), t) for name, t in raw.items())
        if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            return tuple(CronEntry.parse(item) for item in raw)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{path}: key 'cron': {exc}") from None
    raise ConfigurationError(f"{path}: key 'cron' is a {type(raw).__name__}; {how}")


def _value(path: Path, key: str, hint: Any, raw: Any) -> Any:
    if key == "queues":
        return _queue_specs(path, raw)
    if key == "cron":
        return _cron_entries(path, raw)
    kinds = _kinds(hint)
    if key == "imports" or tuple in kinds:
        if isinstance(raw, list) and all(isinstance(item, str) and item for item in raw):
            return tuple(raw)
        raise ConfigurationError(
            f'{path}: key {key!r} must be a list of strings, e.g. {key} = ["myapp.workers"]'
        )
    ok = (
        (bool in kinds and isinstance(raw, bool))
        or (not isinstance(raw, bool) and int in kinds and isinstance(raw, int))
        or (not isinstance(raw, bool) and float in kinds and isinstance(raw, int | float))
        or (str in kinds and isinstance(raw, str))
    )
    if not ok:
        wanted = " or ".join(sorted(KIND_NAMES[k] for k in kinds if k in KIND_NAMES))
        raise ConfigurationError(
            f"{path}: key {key!r} must be {wanted or 'something else'}, "
            f"got {type(raw).__name__} {raw!r}"
        )
    return float(raw) if float in kinds and int not in kinds else raw


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(
            f"config file {path} does not exist; check --config or {CONFIG_ENV}"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            f'{path} is not valid TOML ({exc}); fix the syntax, e.g. redis_url = "redis://..."'
        ) from None
    return data


def load_config(path: Path | str) -> dict[str, Any]:
    """The Settings fields set by the TOML file at ``path``, checked one by one (the web
    dashboard's credentials, ``web_token``... are checked and left out: see ``load_web``)."""
    path = Path(path)
    data = _read_toml(path)
    known = file_fields()
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key in WEB_KEYS:
            check_web_key(path, key, raw)
            continue
        if key not in known:
            close = difflib.get_close_matches(key, [*known, *WEB_KEYS], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(
                f"{path}: unknown key {key!r}; {hint}remove it or use one of "
                f"{', '.join(sorted([*known, *WEB_KEYS]))}"
            )
        values[key] = _value(path, key, known[key], raw)
    try:
        Settings(**values)
    except (ConfigurationError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    return values


def load_web(
    config: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The web dashboard's credentials in the config file (``config``, else the one
    ``VERK_CONFIG`` names, else none): ``web_token``, ``web_user``, ``web_password``
    as far as it sets them. The whole file is checked as ``load_config`` checks it."""
    env = os.environ if environ is None else environ
    named = config or env.get(CONFIG_ENV) or None
    if not named:
        return {}
    path = Path(named)
    load_config(path)
    return {k: v for k, v in _read_toml(path).items() if k in WEB_KEYS}


@attrs.frozen
class Resolved:
    """The settings, and where each field not left at its default came from."""

    settings: Settings
    sources: Mapping[str, str]
    config_path: Path | None = None

    def source(self, field: str) -> str | None:
        """``flag``, ``env`` or ``file`` if ``field`` was given, else None (the default)."""
        return self.sources.get(field)


def resolve_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    config: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Resolved:
    """Settings from ``flags`` (None = not given) over ``VERK_*`` over the config file.

    The file is ``config``, else the one named by ``VERK_CONFIG``, else none.
    """
    env = os.environ if environ is None else environ
    named = config or env.get(CONFIG_ENV) or None
    path = Path(named) if named else None
    values: dict[str, Any] = load_config(path) if path is not None else {}
    sources = dict.fromkeys(values, FILE)
    from_env = Settings.from_env(env)
    for name in configurable_fields():
        if env.get(env_var(name)):
            values[name] = getattr(from_env, name)
            sources[name] = ENV
    for key, value in (flags or {}).items():
        if value is not None:
            values[key] = value
            sources[key] = FLAG
    return Resolved(Settings(**values), sources, path)
