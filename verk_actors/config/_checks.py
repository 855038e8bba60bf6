"""The checks of single Settings values: each raises ConfigurationError saying what was
wrong and what to write instead."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from typing import Any

from verk_actors.config.log_format import check_log_format
from verk_actors.config.redis_url import check_url
from verk_actors.errors import ConfigurationError
from verk_actors.jobs.hooks import check_handler_spec

MAX_NODE_ID = 200


def positive(name: str) -> Any:
    def check(_inst: object, _attr: object, value: float) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
        if not (0 < value < math.inf):  # refuses NaN too
            raise ConfigurationError(f"{name} must be a finite number more than 0, got {value!r}")

    return check


def at_least_zero(name: str) -> Any:
    def check(_inst: object, _attr: object, value: float | None) -> None:
        if value is not None and not (0 <= value < math.inf):  # refuses NaN too
            raise ConfigurationError(f"{name} must be a finite number of at least 0, got {value!r}")

    return check


def whole(name: str, least: int) -> Any:
    def check(_inst: object, _attr: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigurationError(
                f"{name} must be a whole number of at least {least}, got {value!r}"
            )

    return check


def whole_or_none(name: str) -> Any:
    """None, or a whole number of at least 0."""
    at_least = whole(name, 0)

    def check(inst: object, attr: object, value: int | None) -> None:
        if value is not None:
            at_least(inst, attr, value)

    return check


def url(_inst: object, _attr: object, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigurationError(f"redis_url must be a string, got {value!r}")
    check_url(value)


def module_name(name: Any) -> bool:
    return isinstance(name, str) and all(part.isidentifier() for part in name.split("."))


def imports(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"imports must be a list of module names, e.g. imports=('myapp.jobs',), got {value!r}"
        )
    modules = tuple(value)
    for module in modules:
        if not module_name(module):
            raise ConfigurationError(
                f"imports: {module!r} is not a module name; write a dotted Python module "
                "path such as myapp.jobs (not a file name)"
            )
    return modules


def handlers(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"handlers must be a list of module:function names, e.g. "
            f"('myapp.errors:report',), got {value!r}"
        )
    return tuple(check_handler_spec(spec) for spec in value)


def node_id(_inst: object, _attr: object, value: Any) -> None:
    if value is None:
        return
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_NODE_ID
        or any(ch.isspace() or not ch.isprintable() for ch in value)
    ):
        raise ConfigurationError(
            f"node_id must be at most {MAX_NODE_ID} printable characters without spaces, "
            f"got {value!r}; leave it out to have one generated"
        )


def flag(_inst: object, attr: Any, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{attr.name} must be True or False, got {value!r}")


def log_format(_inst: object, _attr: object, value: Any) -> None:
    check_log_format(value)


def port(name: str) -> Any:
    def check(_inst: object, _attr: object, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise ConfigurationError(
                f"{name} must be a TCP port number from 1 to 65535, got {value!r}"
            )

    return check


def bind_address(_inst: object, _attr: object, value: Any) -> None:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigurationError(
            f"metrics_bind must be an IP address such as 127.0.0.1 or 0.0.0.0, got {value!r}"
        ) from None
