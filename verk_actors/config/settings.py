"""Node settings: one frozen value with documented defaults, read from ``VERK_*`` on demand.

Every value is checked here, when a ``QueueSpec`` or ``Settings`` is made, whichever
door it came through (a flag, a ``VERK_*`` variable, a TOML key, Python code, a
``ConfigureVerk`` or ``AddQueue`` message): a bad one raises ConfigurationError
saying what was wrong. Each door adds its own name for the value (the flag, the
variable, the file and key). Only what needs the node's own process, importing the
worker modules, waits until the node starts (``verk_actors.config.validate``).

Each field's ``metadata`` holds its one-line ``help``, and where it differs from the
field's name, its ``flag`` on ``verk-actors start`` and how its default reads
(``shown``); ``verk_actors.config.reference`` builds the configuration reference of
the README and of ``start --help`` from them.
"""

from __future__ import annotations

import logging
import math
import os
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from verk_actors.config.redis_url import check_url, redact_url
from verk_actors.errors import ConfigurationError, InvalidJobError
from verk_actors.jobs.cron import CronEntry, check_catch_up, cron_entries
from verk_actors.jobs.job import check_queue_name

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_CONCURRENCY = 25
DAY = 86_400.0
MAX_NODE_ID = 200

TEST_ONLY = frozenset({"allow_in_process"})
"""Fields no flag, variable or config file sets (switches for unit tests)."""


def _spec_name(_inst: object, _attr: object, value: Any) -> None:
    try:
        check_queue_name(value)
    except InvalidJobError as exc:
        raise ConfigurationError(str(exc)) from None


def _spec_concurrency(inst: Any, _attr: object, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"queue {inst.name!r}: concurrency must be a whole number of at least 1, "
            f"got {value!r}"
        )


@attrs.frozen
class QueueSpec:
    """A queue this node works on, and how many jobs of it run at once (at least 1)."""

    name: str = attrs.field(validator=_spec_name)
    concurrency: int = attrs.field(default=DEFAULT_CONCURRENCY, validator=_spec_concurrency)

    @classmethod
    def parse(cls, text: str) -> QueueSpec:
        """Read ``NAME`` or ``NAME=CONCURRENCY`` (as given to ``--queue``).

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
        try:
            concurrency = int(count)
        except ValueError:
            raise ConfigurationError(
                f"queue spec {text!r}: concurrency {count!r} is not a whole number; "
                "write NAME=CONCURRENCY, e.g. default=25"
            ) from None
        return cls(name.strip(), concurrency)

    @classmethod
    def checked(cls, name: str, concurrency: int) -> QueueSpec:
        """A QueueSpec, or ConfigurationError saying what is wrong with it."""
        return cls(name, concurrency)


def _positive(name: str) -> Any:
    def check(_inst: object, _attr: object, value: float) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
        if not (0 < value < math.inf):  # refuses NaN too
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


def _url(_inst: object, _attr: object, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigurationError(f"redis_url must be a string, got {value!r}")
    check_url(value)


def _queues(value: Iterable[QueueSpec]) -> tuple[QueueSpec, ...]:
    if isinstance(value, QueueSpec | str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"queues must be a list of QueueSpec, e.g. queues=(QueueSpec('default', 25),), "
            f"got {value!r}"
        )
    specs = tuple(value)
    for spec in specs:
        if not isinstance(spec, QueueSpec):
            raise ConfigurationError(
                f"queues must hold QueueSpec values, e.g. QueueSpec('default', 25), "
                f"got {spec!r}"
            )
    names = [spec.name for spec in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"queue {dupes[0]!r} is listed twice; list each queue once")
    return specs


def _module_name(name: Any) -> bool:
    return isinstance(name, str) and all(part.isidentifier() for part in name.split("."))


def _imports(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"imports must be a list of module names, e.g. imports=('myapp.jobs',), "
            f"got {value!r}"
        )
    modules = tuple(value)
    for module in modules:
        if not _module_name(module):
            raise ConfigurationError(
                f"imports: {module!r} is not a module name; write a dotted Python module "
                "path such as myapp.jobs (not a file name)"
            )
    return modules


def _node_id(_inst: object, _attr: object, value: Any) -> None:
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


def _flag(_inst: object, _attr: object, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"allow_in_process must be True or False, got {value!r}")


def _meta(help_text: str, *, flag: str | None = None, shown: str | None = None) -> dict[str, str]:
    meta = {"help": help_text}
    if flag is not None:
        meta["flag"] = flag
    if shown is not None:
        meta["shown"] = shown
    return meta


@attrs.frozen
class Settings:
    """Everything a node needs to know. Every field has a default that works locally.

    Each field's one-line help is in its ``metadata["help"]`` (see the configuration
    reference in the README, made from them). In short: ``redis_url``, ``queues``
    (name and concurrency), ``node_id``, ``imports`` (worker modules), the timings
    ``poll_interval``, ``heartbeat_interval`` (a node's lease lasts one and a half, so
    a dead node's jobs are recovered within two), ``shutdown_timeout``,
    ``job_timeout``; Sidekiq's ``max_retries``, ``dead_max_jobs``, ``dead_timeout``;
    ``backtrace_lines``, ``max_batch``; and ``allow_in_process`` (unit tests only).

    ``path`` and ``redis_wait`` are read by ``verk-actors start`` only (an embedding
    application sets up its import path and waits for Redis itself).
    """

    redis_url: str = attrs.field(
        default=DEFAULT_REDIS_URL,
        repr=redact_url,
        validator=_url,
        metadata=_meta(
            "where Redis is; rediss:// for TLS, redis://:password@host for a password; "
            "verk-actors start without one runs an embedded Valkey"
        ),
    )
    queues: tuple[QueueSpec, ...] = attrs.field(
        default=(QueueSpec("default", DEFAULT_CONCURRENCY),),
        converter=_queues,
        metadata=_meta(
            "queues to work on, each NAME=CONCURRENCY (jobs of it run at once); NAME alone "
            f"means {DEFAULT_CONCURRENCY}",
            flag="--queue",
            shown=f"default={DEFAULT_CONCURRENCY}",
        ),
    )
    node_id: str | None = attrs.field(
        default=None,
        validator=_node_id,
        metadata=_meta("stable id of this node", shown="generated at each start"),
    )
    imports: tuple[str, ...] = attrs.field(
        default=(),
        converter=_imports,
        metadata=_meta(
            "modules whose Worker classes this node runs", flag="--import", shown="none"
        ),
    )
    poll_interval: float = attrs.field(
        default=1.0,
        validator=_positive("poll_interval"),
        metadata=_meta("seconds between checks of the schedule and retry sets"),
    )
    max_retries: int = attrs.field(
        default=25,
        validator=_whole("max_retries", 0),
        metadata=_meta("retries of a failing job before it goes to dead (Sidekiq's 25)"),
    )
    dead_max_jobs: int = attrs.field(
        default=10_000,
        validator=_whole("dead_max_jobs", 1),
        metadata=_meta("most jobs kept in the dead set (Sidekiq's 10,000)"),
    )
    dead_timeout: float = attrs.field(
        default=180 * DAY,
        validator=_positive("dead_timeout"),
        metadata=_meta("seconds a dead job is kept (Sidekiq's 180 days)"),
    )
    shutdown_timeout: float = attrs.field(
        default=25.0,
        validator=_positive("shutdown_timeout"),
        metadata=_meta("seconds running jobs get to finish when the node stops"),
    )
    job_timeout: float | None = attrs.field(
        default=None,
        validator=_positive("job_timeout"),
        metadata=_meta(
            "time limit of a job in seconds, unless the job or its worker sets timeout",
            shown="none",
        ),
    )
    heartbeat_interval: float = attrs.field(
        default=5.0,
        validator=_positive("heartbeat_interval"),
        metadata=_meta(
            "seconds between heartbeats; a node's lease lasts 1.5 of them, so a dead "
            "node's jobs are recovered within 2"
        ),
    )
    backtrace_lines: int = attrs.field(
        default=20,
        validator=_whole("backtrace_lines", 0),
        metadata=_meta("lines of a failed job's traceback kept in error_backtrace"),
    )
    max_batch: int = attrs.field(
        default=500,
        validator=_whole("max_batch", 1),
        metadata=_meta("most jobs handed to one worker in one message on a backlog"),
    )
    cron: tuple[CronEntry, ...] = attrs.field(
        default=(),
        converter=cron_entries,
        metadata=_meta(
            "periodic jobs, each NAME=CLASS[@TZ] EXPRESSION (VERK_CRON: ';' between "
            "them; in TOML a [cron.NAME] table); worker classes add theirs (cron = ...)",
            flag="--cron",
            shown="none",
        ),
    )
    cron_catch_up: str = attrs.field(
        default="latest",
        validator=check_catch_up,
        metadata=_meta(
            "ticks of a cron entry that no node was up to enqueue: latest enqueues the "
            "most recent once when a node starts, skip none"
        ),
    )
    allow_in_process: bool = attrs.field(
        default=False,
        validator=_flag,
        metadata=_meta("let VerkRoot run on Thespian's in-process base (unit tests only)"),
    )
    path: tuple[str, ...] = attrs.field(
        default=(),
        converter=tuple,
        metadata=_meta(
            "directories put first on the import path before imports are imported (the "
            "current directory always is); verk-actors start only",
            flag="--path",
            shown="none",
        ),
    )
    redis_wait: float | None = attrs.field(
        default=None,
        validator=_at_least_zero("redis_wait"),
        metadata=_meta(
            "seconds to wait at start for Redis to answer, then exit 1; verk-actors start only",
            shown="wait for ever, saying so",
        ),
    )

    @property
    def lease_ttl(self) -> float:
        """Seconds a node's heartbeat lease lives without renewal."""
        return self.heartbeat_interval * 1.5

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields replaced."""
        return attrs.evolve(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``VERK_*`` environment variables (read now), then ``overrides``.

        Every field but the test-only ones has its variable, ``VERK_<FIELD>``; list
        fields are comma-separated (``VERK_QUEUES=default=10,mail=2``,
        ``VERK_IMPORTS=myapp.jobs,myapp.mail``). An empty variable counts as unset.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in configurable_fields():
            var = env_var(name)
            raw = env.get(var)
            if not raw:
                continue
            try:
                values[name] = read_text(name, raw)
                cls(**{name: values[name]})  # the field's own check, named by the variable
            except ConfigurationError as exc:
                raise ConfigurationError(f"{var}={raw!r}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def configurable_fields() -> tuple[str, ...]:
    """The Settings fields a flag, a ``VERK_*`` variable or a config file may set."""
    return tuple(f.name for f in attrs.fields(Settings) if f.name not in TEST_ONLY)


def env_var(field: str) -> str:
    """The ``VERK_*`` variable of a Settings field (``poll_interval`` -> ``VERK_POLL_INTERVAL``)."""
    return f"VERK_{field.upper()}"


def field_kind(field: str) -> type:
    """What one value of ``field`` is: str, int, float, QueueSpec for ``queues``, or
    CronEntry for ``cron``."""
    if field == "queues":
        return QueueSpec
    if field == "cron":
        return CronEntry
    hint = typing.get_type_hints(Settings)[field]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return str
    kind = args[0] if args else hint
    return kind if isinstance(kind, type) else str


KIND_WORDS = {int: "a whole number", float: "a number", str: "a string"}


def read_text(field: str, text: str) -> Any:
    """The value of ``field`` written as text (a flag or variable): lists comma-separated."""
    kind = field_kind(field)
    if field == "queues":
        return tuple(QueueSpec.parse(part) for part in text.split(",") if part.strip())
    if field == "cron":  # expressions hold commas
        return tuple(CronEntry.parse(part) for part in text.split(";") if part.strip())
    if field == "imports":
        return tuple(m.strip() for m in text.split(",") if m.strip())
    if field == "path":  # separated as PYTHONPATH is
        return tuple(d for d in text.split(os.pathsep) if d.strip())
    if kind is str:
        return text
    try:
        return kind(text)
    except ValueError:
        raise ConfigurationError(
            f"{text!r} is not {KIND_WORDS.get(kind, kind.__name__)}"
        ) from None
