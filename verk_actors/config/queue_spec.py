"""``QueueSpec``: a queue a node works on, how many of its jobs run at once, and how.

Checked when made, whichever door it came through (``--queue``, ``VERK_QUEUES``, the
``[queues]`` table, Python, ``AddQueue``): a bad one raises ConfigurationError.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import attrs

from verk_actors.config.queue_modes import (
    PROCESS,
    check_mode,
    check_per_process,
    default_per_process,
    spec_concurrency,
    spec_name,
    split_mode,
)
from verk_actors.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 25


@attrs.frozen
class QueueSpec:
    """A queue this node works on, how many jobs of it run at once (at least 1), and how
    (``mode``, ``per_process``: see ``verk_actors.config.queue_modes``)."""

    name: str = attrs.field(validator=spec_name)
    concurrency: int = attrs.field(default=DEFAULT_CONCURRENCY, validator=spec_concurrency)
    mode: str = attrs.field(default=PROCESS, validator=check_mode)
    per_process: int = attrs.field(
        default=attrs.Factory(
            lambda s: default_per_process(s.mode, s.concurrency), takes_self=True
        ),
        validator=check_per_process,
    )

    @classmethod
    def parse(cls, text: str) -> QueueSpec:
        """Read ``NAME``, ``NAME=CONCURRENCY`` or ``NAME=CONCURRENCY:MODE[:PER_PROCESS]``
        (as given to ``--queue``).

        ``NAME`` alone takes the default concurrency, and says so in the log: Sidekiq's
        ``-q NAME`` takes no concurrency (its ``-c`` is global), so a Sidekiq user
        writes it expecting a sensible default, not a silent one.
        """
        name, sep, count = text.partition("=")
        if not sep:
            spec = cls(name.strip(), DEFAULT_CONCURRENCY)
            log.info(
                "queue %s: %d workers, the default (write %s=N to choose)",
                spec.name,
                DEFAULT_CONCURRENCY,
                spec.name,
            )
            return spec
        count, sep, mode = count.partition(":")
        try:
            concurrency = int(count)
        except ValueError:
            raise ConfigurationError(
                f"queue spec {text!r}: concurrency {count!r} is not a whole number; "
                "write NAME=CONCURRENCY, e.g. default=25"
            ) from None
        if not sep:
            return cls(name.strip(), concurrency)
        return cls.checked(name.strip(), concurrency, *split_mode(text, mode))

    @classmethod
    def checked(
        cls, name: str, concurrency: int, mode: str = PROCESS, per_process: int | None = None
    ) -> QueueSpec:
        """A QueueSpec, or ConfigurationError saying what is wrong with it."""
        if per_process is None:
            return cls(name, concurrency, mode)
        return cls(name, concurrency, mode, per_process)


def check_queues(value: Iterable[QueueSpec]) -> tuple[QueueSpec, ...]:
    if isinstance(value, QueueSpec | str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"queues must be a list of QueueSpec, e.g. queues=(QueueSpec('default', 25),), "
            f"got {value!r}"
        )
    specs = tuple(value)
    for spec in specs:
        if not isinstance(spec, QueueSpec):
            raise ConfigurationError(
                f"queues must hold QueueSpec values, e.g. QueueSpec('default', 25), got {spec!r}"
            )
    names = [spec.name for spec in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"queue {dupes[0]!r} is listed twice; list each queue once")
    return specs
