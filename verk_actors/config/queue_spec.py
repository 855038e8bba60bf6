"""``QueueSpec``: a queue a node works on, how many of its jobs run at once, and when
its worker processes are recycled."""

from __future__ import annotations

import logging
from typing import Any

import attrs

from verk_actors.errors import ConfigurationError, InvalidJobError
from verk_actors.jobs.job import check_queue_name

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 25


def _spec_name(_inst: object, _attr: object, value: Any) -> None:
    try:
        check_queue_name(value)
    except InvalidJobError as exc:
        raise ConfigurationError(str(exc)) from None


def _spec_concurrency(inst: Any, _attr: object, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"queue {inst.name!r}: concurrency must be a whole number of at least 1, got {value!r}"
        )


def _spec_limit(inst: Any, attr: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigurationError(
            f"queue {inst.name!r}: {attr.name} must be a whole number of at least 0 "
            f"(0: no limit), got {value!r}"
        )


QUEUE_OPTIONS = ("max_jobs", "max_memory", "min_workers")
"""A queue's own options, written ``NAME=CONCURRENCY:max_jobs=N:max_memory=MB:min_workers=F``."""


@attrs.frozen
class QueueSpec:
    """A queue this node works on, and how many jobs of it run at once (at least 1).

    ``max_jobs`` and ``max_memory`` (MB of resident memory) replace a worker process
    of the queue once it has run that many jobs or grown that big, between two jobs;
    None takes the node's ``max_jobs_per_worker``/``max_memory_per_worker``, 0 is no limit.
    ``min_workers``: the worker processes kept when the queue is idle (the others
    start as work comes and go after ``worker_idle_timeout``); None takes the node's
    ``min_workers``, which by default keeps them all.
    """

    name: str = attrs.field(validator=_spec_name)
    concurrency: int = attrs.field(default=DEFAULT_CONCURRENCY, validator=_spec_concurrency)
    max_jobs: int | None = attrs.field(default=None, validator=_spec_limit, kw_only=True)
    max_memory: int | None = attrs.field(default=None, validator=_spec_limit, kw_only=True)
    min_workers: int | None = attrs.field(default=None, validator=_spec_limit, kw_only=True)

    @classmethod
    def parse(cls, text: str) -> QueueSpec:
        """Read ``NAME``, ``NAME=CONCURRENCY`` (as given to ``--queue``), or with the
        queue's recycling limits, ``NAME=CONCURRENCY:max_jobs=N:max_memory=MB``.

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
        count, *options = count.split(":")
        try:
            concurrency = int(count)
        except ValueError:
            raise ConfigurationError(
                f"queue spec {text!r}: concurrency {count!r} is not a whole number; "
                "write NAME=CONCURRENCY, e.g. default=25"
            ) from None
        return cls.checked(name.strip(), concurrency, **_limits(text, options))

    @classmethod
    def checked(cls, name: str, concurrency: Any = DEFAULT_CONCURRENCY, **limits: Any) -> QueueSpec:
        """A QueueSpec, or ConfigurationError saying what is wrong with it (``limits``:
        ``max_jobs``, ``max_memory``)."""
        unknown = sorted(set(limits) - set(QUEUE_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"queue {name!r}: unknown option {unknown[0]!r}; a queue takes "
                f"concurrency, {', '.join(QUEUE_OPTIONS)}"
            )
        return cls(name, concurrency, **limits)


def _limits(text: str, options: list[str]) -> dict[str, int]:
    """``max_jobs=N`` and ``max_memory=MB`` after a queue spec's concurrency."""
    limits = {}
    for option in options:
        key, _, value = option.partition("=")
        try:
            limits[key.strip()] = int(value)
        except ValueError:
            raise ConfigurationError(
                f"queue spec {text!r}: {option!r} is not OPTION=NUMBER; write e.g. "
                "images=4:max_jobs=100:max_memory=300"
            ) from None
    return limits
