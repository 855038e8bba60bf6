"""The flags of ``verk-actors start`` that set Settings: one per setting, made from the
configuration reference (``verk_actors.config.reference``), so none is forgotten."""

from __future__ import annotations

import argparse
from typing import Any

from verk_actors.config.reference import Option, options
from verk_actors.config.settings import Settings, field_kind, read_text
from verk_actors.errors import ConfigurationError

METAVARS = {
    "redis_url": "URL",
    "queues": "NAME[=CONCURRENCY]",
    "imports": "MODULE",
    "node_id": "ID",
    "path": "DIR",
    "error_handlers": "MODULE:FUNCTION",
    "death_handlers": "MODULE:FUNCTION",
    "client_middleware": "MODULE:NAME",
    "server_middleware": "MODULE:NAME",
    "cron": "'NAME=CLASS[@TZ] EXPR'",
}
KIND_METAVARS: dict[type, str] = {int: "N", float: "SECONDS", str: "TEXT"}


def dest(option: Option) -> str:
    """The ``argparse`` destination of a setting's flag (``--queue`` keeps ``queue``)."""
    return "queue" if option.field == "queues" else option.field


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """A flag for every setting, its help ending with its variable and default."""
    group = parser.add_argument_group(
        "settings", "each also read from its VERK_* variable or the config file; flags win"
    )
    for option in options():
        metavar = METAVARS.get(option.field) or KIND_METAVARS.get(field_kind(option.field), "X")
        more = "; repeatable" if option.repeatable else ""
        if field_kind(option.field) is bool:  # --flag alone means true
            group.add_argument(
                option.flag,
                dest=dest(option),
                metavar="true|false",
                nargs="?",
                const="true",
                help=f"{option.help} (env {option.env}; default {option.default})",
            )
            continue
        group.add_argument(
            option.flag,
            dest=dest(option),
            metavar=metavar,
            action="append" if option.repeatable else "store",
            help=f"{option.help} (env {option.env}; default {option.default}{more})",
        )


def settings_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, checked, by field (None: not given).

    ``imports`` and ``path`` are left to the caller: ``--import`` and ``--path`` add
    to what the variables or the file name instead of replacing it.
    """
    flags: dict[str, Any] = {}
    for option in options():
        raw = getattr(args, dest(option), None)
        if raw is None or option.field in ("imports", "path"):
            continue
        texts = raw if isinstance(raw, list) else [raw]
        try:
            if option.repeatable:
                value: Any = tuple(v for text in texts for v in read_text(option.field, text))
            else:
                value = read_text(option.field, texts[0])
            Settings(**{option.field: value})  # the setting's own check, named by its flag
        except ConfigurationError as exc:
            given = " ".join(f"{option.flag} {text}" for text in texts)
            raise ConfigurationError(f"{given}: {exc}") from None
        flags[option.field] = value
    return flags
