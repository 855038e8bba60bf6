"""Node settings: one frozen value with documented defaults, read from ``VERK_*`` on demand."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from verk_actors.config.redis_url import check_url, redact_url
from verk_actors.errors import ConfigurationError, InvalidJobError
from verk_actors.jobs.job import check_queue_name

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_CONCURRENCY = 25
DAY = 86_400.0


@attrs.frozen
class QueueSpec:
    """A queue this node works on, and how many jobs of it run at once."""

    name: str
    concurrency: int = DEFAULT_CONCURRENCY

    @classmethod
    def parse(cls, text: str) -> QueueSpec:
        """Read ``NAME`` or ``NAME=CONCURRENCY`` (as given to ``--queue``)."""
        name, sep, count = text.partition("=")
        if not sep:
            return cls.checked(name.strip(), DEFAULT_CONCURRENCY)
        try:
            concurrency = int(count)
        except ValueError:
            raise ConfigurationError(
                f"queue spec {text!r}: concurrency {count!r} is not a whole number; "
                "write NAME=CONCURRENCY, e.g. default=25"
            ) from None
        return cls.checked(name.strip(), concurrency)

    @classmethod
    def checked(cls, name: str, concurrency: int) -> QueueSpec:
        """A QueueSpec, or ConfigurationError saying what is wrong with it."""
        try:
            check_queue_name(name)
        except InvalidJobError as exc:
            raise ConfigurationError(str(exc)) from None
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(
                f"queue {name!r}: concurrency must be a whole number of at least 1, "
                f"got {concurrency!r}"
            )
        return cls(name, concurrency)


def _positive(name: str) -> Any:
    def check(_inst: object, _attr: object, value: float) -> None:
        if value is not None and not (0 < value < math.inf):  # refuses NaN too
            raise ConfigurationError(f"{name} must be a finite number more than 0, got {value!r}")

    return check


def _at_least_zero(name: str) -> Any:
    def check(_inst: object, _attr: object, value: float | None) -> None:
        if value is not None and not (0 <= value < math.inf):  # refuses NaN too
            raise ConfigurationError(f"{name} must be a finite number of at least 0, got {value!r}")

    return check


def _whole(name: str, least: int) -> Any:
    def check(_inst: object, _attr: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigurationError(
                f"{name} must be a whole number of at least {least}, got {value!r}"
            )

    return check


def _url(_inst: object, _attr: object, value: str) -> None:
    check_url(value)


def _queues(value: Iterable[QueueSpec]) -> tuple[QueueSpec, ...]:
    specs = tuple(value)
    names = [spec.name for spec in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"queue {dupes[0]!r} is listed twice; list each queue once")
    return specs


@attrs.frozen
class Settings:
    """Everything a node needs to know. Every field has a default that works locally.

    redis_url          where Redis is; ``rediss://`` for TLS, ``redis://:password@host``.
    queues             the queues to work on and the concurrency of each.
    node_id            stable id of this node; None generates one per start.
    imports            modules whose Worker classes this node runs.
    poll_interval      seconds between ScheduleManager checks of ``schedule``/``retry``.
    max_retries        retries of a failing job before it goes to ``dead`` (Sidekiq's 25).
    dead_max_jobs      size cap of the ``dead`` set (Sidekiq's 10,000).
    dead_timeout       seconds a dead job is kept (Sidekiq's 180 days).
    shutdown_timeout   seconds running jobs get to finish when the node stops.
    job_timeout        default time limit of one job in seconds; None = no limit.
    heartbeat_interval seconds between heartbeats; a node's lease lasts one and a half, so
                       a dead node's jobs are recovered within two heartbeats.
    backtrace_lines    lines of a failed job's traceback kept in ``error_backtrace``.
    max_batch          most jobs handed to one worker in one message (backlog batching).
    allow_in_process   let VerkRoot run on Thespian's in-process base (unit tests only).

    Read by ``verk-actors start`` only (an embedding application does this itself):

    path               directories put first on ``sys.path`` before ``imports`` are
                       imported; the current directory always is (as Celery and RQ do).
    redis_wait         seconds to wait at start for Redis to answer before giving up
                       (exit 1); None waits for ever, saying so every few seconds.
    """

    redis_url: str = attrs.field(default=DEFAULT_REDIS_URL, repr=redact_url, validator=_url)
    queues: tuple[QueueSpec, ...] = attrs.field(
        default=(QueueSpec("default", DEFAULT_CONCURRENCY),), converter=_queues
    )
    node_id: str | None = None
    imports: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    poll_interval: float = attrs.field(default=1.0, validator=_positive("poll_interval"))
    max_retries: int = attrs.field(default=25, validator=_whole("max_retries", 0))
    dead_max_jobs: int = attrs.field(default=10_000, validator=_whole("dead_max_jobs", 1))
    dead_timeout: float = attrs.field(default=180 * DAY, validator=_positive("dead_timeout"))
    shutdown_timeout: float = attrs.field(default=25.0, validator=_positive("shutdown_timeout"))
    job_timeout: float | None = attrs.field(default=None, validator=_positive("job_timeout"))
    heartbeat_interval: float = attrs.field(default=5.0, validator=_positive("heartbeat_interval"))
    backtrace_lines: int = attrs.field(default=20, validator=_whole("backtrace_lines", 0))
    max_batch: int = attrs.field(default=500, validator=_whole("max_batch", 1))
    allow_in_process: bool = False
    path: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    redis_wait: float | None = attrs.field(default=None, validator=_at_least_zero("redis_wait"))

    @property
    def lease_ttl(self) -> float:
        """Seconds a node's heartbeat lease lives without renewal."""
        return self.heartbeat_interval * 1.5

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields replaced."""
        return attrs.evolve(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``VERK_*`` environment variables (read now), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        readers: dict[str, tuple[str, Any]] = {
            "VERK_REDIS_URL": ("redis_url", str),
            "VERK_NODE_ID": ("node_id", str),
            "VERK_POLL_INTERVAL": ("poll_interval", float),
            "VERK_MAX_RETRIES": ("max_retries", int),
            "VERK_DEAD_MAX_JOBS": ("dead_max_jobs", int),
            "VERK_DEAD_TIMEOUT": ("dead_timeout", float),
            "VERK_SHUTDOWN_TIMEOUT": ("shutdown_timeout", float),
            "VERK_JOB_TIMEOUT": ("job_timeout", float),
            "VERK_HEARTBEAT_INTERVAL": ("heartbeat_interval", float),
            "VERK_REDIS_WAIT": ("redis_wait", float),
        }
        for var, (field, kind) in readers.items():
            raw = env.get(var)
            if raw:
                try:
                    values[field] = kind(raw)
                except ValueError:
                    raise ConfigurationError(
                        f"{var}={raw!r} is not a valid {kind.__name__}"
                    ) from None
                try:
                    cls(**{field: values[field]})  # the field's own check, naming the variable
                except ConfigurationError as exc:
                    raise ConfigurationError(f"{var}={raw!r}: {exc}") from None
        if env.get("VERK_QUEUES"):
            try:
                values["queues"] = _queues(
                    QueueSpec.parse(part) for part in env["VERK_QUEUES"].split(",") if part.strip()
                )
            except ConfigurationError as exc:
                raise ConfigurationError(f"VERK_QUEUES={env['VERK_QUEUES']!r}: {exc}") from None
        if env.get("VERK_IMPORTS"):
            values["imports"] = tuple(
                m.strip() for m in env["VERK_IMPORTS"].split(",") if m.strip()
            )
        if env.get("VERK_PATH"):  # separated as PYTHONPATH is
            values["path"] = tuple(d for d in env["VERK_PATH"].split(os.pathsep) if d.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
