"""The configuration reference: every setting with its flag, variable, TOML key and default.

It is made from the ``Settings`` fields and their metadata, so it cannot drift from the
code: ``verk-actors start --help`` shows the same help, and the README's table is this
module's output (a test compares them). Print the table with::

    python -m verk_actors.config.reference
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from verk_actors.config.file import CONFIG_ENV
from verk_actors.config.settings import DAY, Settings, configurable_fields, env_var

REPEATABLE = (
    "queues",
    "imports",
    "path",
    "error_handlers",
    "death_handlers",
    "client_middleware",
    "server_middleware",
    "cron",
)
"""Settings whose flag may be given more than once."""


@attrs.frozen
class Option:
    """One setting as a user meets it."""

    field: str
    flag: str
    env: str
    toml_key: str
    default: str
    help: str
    repeatable: bool = False


def _shown(value: object) -> str:
    if isinstance(value, float) and value >= DAY and value % DAY == 0:
        return f"{value:.0f} ({value / DAY:g} days)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def options() -> tuple[Option, ...]:
    """Every setting a flag, a ``VERK_*`` variable or a config file may set, in field order."""
    fields = {f.name: f for f in attrs.fields(Settings)}
    result = []
    for name in configurable_fields():
        meta = fields[name].metadata
        default = meta.get("shown") or _shown(fields[name].default)
        flag = meta.get("flag") or "--" + name.replace("_", "-")
        result.append(
            Option(
                name,
                flag,
                env_var(name),
                name,
                default,
                meta["help"],
                repeatable=name in REPEATABLE,
            )
        )
    return tuple(result)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown_table() -> str:
    """The README's configuration reference, one row per setting, then the config file."""
    lines = [
        _row(["flag of `start`", "variable", "TOML key", "default", "what it sets"]),
        _row(["---"] * 5),
    ]
    for option in options():
        flag = f"`{option.flag}`" + (" (repeatable)" if option.repeatable else "")
        lines.append(
            _row([flag, f"`{option.env}`", f"`{option.toml_key}`", option.default, option.help])
        )
    lines.append(
        _row(
            [
                "`--config FILE`",
                f"`{CONFIG_ENV}`",
                "",
                "none",
                "the TOML file of settings; flags and variables win over it",
            ]
        )
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
