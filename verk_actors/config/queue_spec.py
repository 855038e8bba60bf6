"""``QueueSpec``: a queue a node works on, how many of its jobs run at once and how
(``queue_modes``), when its worker processes are recycled and how many it keeps idle."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

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

QUEUE_OPTIONS = ("max_jobs", "max_memory", "min_workers")
"""A queue's own options, written after its concurrency and mode:
``NAME=CONCURRENCY[:MODE[:PER_PROCESS]]:max_jobs=N:max_memory=MB:min_workers=F``."""


def _spec_limit(inst: Any, attr: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigurationError(
            f"queue {inst.name!r}: {attr.name} must be a whole number of at least 0 "
            f"(0: no limit), got {value!r}"
        )


@attrs.frozen
class QueueSpec:
    """A queue this node works on, how many jobs of it run at once (at least 1), and how
    (``mode``, ``per_process``: see ``verk_actors.config.queue_modes``).

    ``max_jobs`` and ``max_memory`` (MB of resident memory) replace a worker process
    of the queue once it has run that many jobs or grown that big, between two jobs;
    None takes the node's ``max_jobs_per_worker``/``max_memory_per_worker``, 0 is no limit.
    ``min_workers``: the worker processes kept when the queue is idle (the others
    start as work comes and go after ``worker_idle_timeout``); None takes the node's
    ``min_workers``, which by default keeps them all. All three: process mode only.
    """

    name: str = attrs.field(validator=spec_name)
    concurrency: int = attrs.field(default=DEFAULT_CONCURRENCY, validator=spec_concurrency)
    mode: str = attrs.field(default=PROCESS, validator=check_mode)
    per_process: int = attrs.field(
        default=attrs.Factory(
            lambda s: default_per_process(s.mode, s.concurrency), takes_self=True
        ),
        validator=check_per_process,
    )
    max_jobs: int | None = attrs.field(default=None, validator=_spec_limit, kw_only=True)
    max_memory: int | None = attrs.field(default=None, validator=_spec_limit, kw_only=True)
    min_workers: int | None = attrs.field(default=None, validator=_spec_limit, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.mode == PROCESS:
            return
        given = [name for name in QUEUE_OPTIONS if getattr(self, name) not in (None, 0)]
        if given:
            raise ConfigurationError(
                f"queue {self.name!r}: {given[0]} applies to process mode only; a "
                f"{self.mode} queue's processes hold many jobs each and are neither "
                "recycled nor started lazily (drop the option, or use process mode)"
            )

    @classmethod
    def parse(cls, text: str) -> QueueSpec:
        """Read ``NAME``, ``NAME=CONCURRENCY`` or ``NAME=CONCURRENCY:MODE[:PER_PROCESS]``
        (as given to ``--queue``), each part after the concurrency optionally followed by
        the queue's options: ``images=4:max_jobs=100:max_memory=300:min_workers=1``.

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
        count, *parts = count.split(":")
        try:
            concurrency = int(count)
        except ValueError:
            raise ConfigurationError(
                f"queue spec {text!r}: concurrency {count!r} is not a whole number; "
                "write NAME=CONCURRENCY, e.g. default=25"
            ) from None
        options = _options(text, [part for part in parts if "=" in part])
        mode = ":".join(part for part in parts if "=" not in part)
        if not mode:
            return cls.checked(name.strip(), concurrency, **options)
        return cls.checked(name.strip(), concurrency, *split_mode(text, mode), **options)

    @classmethod
    def checked(
        cls,
        name: str,
        concurrency: Any = DEFAULT_CONCURRENCY,
        mode: str = PROCESS,
        per_process: int | None = None,
        **options: Any,
    ) -> QueueSpec:
        """A QueueSpec, or ConfigurationError saying what is wrong with it (``options``:
        ``max_jobs``, ``max_memory``, ``min_workers``)."""
        unknown = sorted(set(options) - set(QUEUE_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"queue {name!r}: unknown option {unknown[0]!r}; a queue takes "
                f"concurrency, mode, per_process, {', '.join(QUEUE_OPTIONS)}"
            )
        if per_process is None:
            return cls(name, concurrency, mode, **options)
        return cls(name, concurrency, mode, per_process, **options)


def _options(text: str, options: list[str]) -> dict[str, Any]:
    """``max_jobs=N``, ``max_memory=MB``, ``min_workers=F`` after a spec's concurrency."""
    read: dict[str, Any] = {}
    for option in options:
        key, _, value = option.partition("=")
        try:
            read[key.strip()] = int(value)
        except ValueError:
            raise ConfigurationError(
                f"queue spec {text!r}: {option!r} is not OPTION=NUMBER; write e.g. "
                "images=4:max_jobs=100:max_memory=300"
            ) from None
    return read


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
