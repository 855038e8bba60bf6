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
import os
import typing
from collections.abc import Mapping
from typing import Any

import attrs

from verk_actors.config._checks import (
    at_least_zero,
    bind_address,
    flag,
    handlers,
    imports,
    log_format,
    node_id,
    port,
    positive,
    url,
    whole,
    whole_or_none,
)
from verk_actors.config.log_format import FORMATS
from verk_actors.config.queue_spec import DEFAULT_CONCURRENCY, QueueSpec, check_queues
from verk_actors.config.redis_url import redact_url
from verk_actors.errors import ConfigurationError
from verk_actors.jobs.cron import CronEntry, check_catch_up, cron_entries

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DAY = 86_400.0

TEST_ONLY = frozenset({"allow_in_process"})
"""Fields no flag, variable or config file sets (switches for unit tests)."""


def _meta(help_text: str, *, flag: str | None = None, shown: str | None = None) -> dict[str, str]:
    meta = {"help": help_text}
    if flag is not None:
        meta["flag"] = flag
    if shown is not None:
        meta["shown"] = shown
    return meta


def _functions(help_text: str, flag: str) -> Any:
    """A field holding ``module:name`` specs of user functions (handlers, middleware)."""
    meta = _meta(help_text, flag=flag, shown="none")
    return attrs.field(default=(), converter=handlers, metadata=meta)


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
        validator=url,
        metadata=_meta(
            "where Redis is; rediss:// for TLS, redis://:password@host for a password; "
            "verk-actors start without one runs an embedded Valkey"
        ),
    )
    queues: tuple[QueueSpec, ...] = attrs.field(
        default=(QueueSpec("default", DEFAULT_CONCURRENCY),),
        converter=check_queues,
        metadata=_meta(
            "queues to work on, each NAME=CONCURRENCY (jobs of it run at once); NAME alone "
            f"means {DEFAULT_CONCURRENCY}; NAME=CONCURRENCY:threads[:N] or :async[:N] runs N "
            "jobs per worker process (threads, or coroutines for async def perform)",
            flag="--queue",
            shown=f"default={DEFAULT_CONCURRENCY}",
        ),
    )
    node_id: str | None = attrs.field(
        default=None,
        validator=node_id,
        metadata=_meta("stable id of this node", shown="generated at each start"),
    )
    imports: tuple[str, ...] = attrs.field(
        default=(),
        converter=imports,
        metadata=_meta(
            "modules whose Worker classes this node runs", flag="--import", shown="none"
        ),
    )
    poll_interval: float = attrs.field(
        default=1.0,
        validator=positive("poll_interval"),
        metadata=_meta("seconds between checks of the schedule and retry sets"),
    )
    max_retries: int = attrs.field(
        default=25,
        validator=whole("max_retries", 0),
        metadata=_meta("retries of a failing job before it goes to dead (Sidekiq's 25)"),
    )
    dead_max_jobs: int = attrs.field(
        default=10_000,
        validator=whole("dead_max_jobs", 1),
        metadata=_meta("most jobs kept in the dead set (Sidekiq's 10,000)"),
    )
    dead_timeout: float = attrs.field(
        default=180 * DAY,
        validator=positive("dead_timeout"),
        metadata=_meta("seconds a dead job is kept (Sidekiq's 180 days)"),
    )
    shutdown_timeout: float = attrs.field(
        default=25.0,
        validator=positive("shutdown_timeout"),
        metadata=_meta("seconds running jobs get to finish when the node stops"),
    )
    job_timeout: float | None = attrs.field(
        default=None,
        validator=positive("job_timeout"),
        metadata=_meta(
            "time limit of a job in seconds, unless the job or its worker sets timeout",
            shown="none",
        ),
    )
    heartbeat_interval: float = attrs.field(
        default=5.0,
        validator=positive("heartbeat_interval"),
        metadata=_meta(
            "seconds between heartbeats; a node's lease lasts 1.5 of them, so a dead "
            "node's jobs are recovered within 2"
        ),
    )
    backtrace_lines: int = attrs.field(
        default=20,
        validator=whole("backtrace_lines", 0),
        metadata=_meta("lines of a failed job's traceback kept in error_backtrace"),
    )
    max_batch: int = attrs.field(
        default=500,
        validator=whole("max_batch", 1),
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
    max_jobs_per_worker: int | None = attrs.field(
        default=None,
        validator=whole_or_none("max_jobs_per_worker"),
        metadata=_meta(
            "replace a worker process after it has run this many jobs (a queue's own "
            "max_jobs, in --queue NAME=N:max_jobs=J, wins; process mode)",
            shown="no limit",
        ),
    )
    max_memory_per_worker: int | None = attrs.field(
        default=None,
        validator=whole_or_none("max_memory_per_worker"),
        metadata=_meta(
            "replace a worker process, after its job, once its resident memory passes "
            "this many MB (a queue's own max_memory wins; process mode)",
            shown="no limit",
        ),
    )
    min_workers: int | None = attrs.field(
        default=None,
        validator=whole_or_none("min_workers"),
        metadata=_meta(
            "worker processes each queue keeps when idle; the others start as jobs come "
            "and stop after worker_idle_timeout (a queue's own min_workers, in --queue "
            "NAME=N:min_workers=M, wins; process mode)",
            shown="all (concurrency)",
        ),
    )
    worker_idle_timeout: float = attrs.field(
        default=60.0,
        validator=positive("worker_idle_timeout"),
        metadata=_meta("seconds a worker above min_workers stays idle before it stops"),
    )
    allow_in_process: bool = attrs.field(
        default=False,
        validator=flag,
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
        validator=at_least_zero("redis_wait"),
        metadata=_meta(
            "seconds to wait at start for Redis to answer, then exit 1; verk-actors start only",
            shown="wait for ever, saying so",
        ),
    )

    error_handlers: tuple[str, ...] = _functions(
        "functions (module:function) called in the worker with (exception, context) "
        "for every failed try of a job",
        "--error-handler",
    )
    death_handlers: tuple[str, ...] = _functions(
        "functions (module:function) called in the worker with (job, exception) once "
        "when a job goes to dead",
        "--death-handler",
    )
    client_middleware: tuple[str, ...] = _functions(
        "middleware (module:name) called as call(worker, job, queue, next) on every "
        "enqueue by the node and verk-actors enqueue; may add fields or refuse the job",
        "--client-middleware",
    )
    server_middleware: tuple[str, ...] = _functions(
        "middleware (module:name) called as call(worker, job, queue, next) around every "
        "perform, in the worker",
        "--server-middleware",
    )

    log_format: str = attrs.field(
        default="text",
        validator=log_format,
        metadata=_meta(f"format of the node's log: {' or '.join(FORMATS)} (one object a line)"),
    )
    job_logs: bool = attrs.field(
        default=False,
        validator=flag,
        metadata=_meta(
            "log each job's start and end (jid, class, queue, duration, outcome) at INFO",
            shown="false",
        ),
    )

    metrics_port: int | None = attrs.field(
        default=None,
        validator=port("metrics_port"),
        metadata=_meta(
            "serve Prometheus metrics at http://METRICS_BIND:PORT/metrics (needs "
            "pip install 'verk_actors[metrics]')",
            shown="off",
        ),
    )
    metrics_bind: str = attrs.field(
        default="127.0.0.1",
        validator=bind_address,
        metadata=_meta(
            "address the metrics port listens on; 0.0.0.0 for every interface (anyone "
            "who reaches it reads queue names and counts)"
        ),
    )
    metrics_history: bool = attrs.field(
        default=True,
        validator=flag,
        metadata=_meta(
            "record per worker class, per minute and hour, executions, failures and run "
            "times into Redis for the dashboard's Metrics page (bounded: 2 h of minutes, "
            "8 days of hours)",
            shown="true",
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


LIST_FIELDS: tuple[str, ...] = ("imports", "error_handlers", "death_handlers")
LIST_FIELDS += ("client_middleware", "server_middleware")
"""Fields written as comma-separated lists in a variable."""

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def read_bool(text: str) -> bool:
    """``true``/``false`` (or yes/no, on/off, 1/0) as a bool, else ConfigurationError."""
    word = text.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ConfigurationError(f"{text!r} is not true or false")


KIND_WORDS = {int: "a whole number", float: "a number", str: "a string"}


def _list_items(field: str, text: str) -> tuple[Any, ...] | None:
    """The items of a list field written as text; None for a field that is no list."""
    if field == "queues":
        return tuple(QueueSpec.parse(part) for part in text.split(",") if part.strip())
    if field == "cron":  # expressions hold commas
        return tuple(CronEntry.parse(part) for part in text.split(";") if part.strip())
    if field in LIST_FIELDS:
        return tuple(m.strip() for m in text.split(",") if m.strip())
    if field == "path":  # separated as PYTHONPATH is
        return tuple(d for d in text.split(os.pathsep) if d.strip())
    return None


def read_text(field: str, text: str) -> Any:
    """The value of ``field`` written as text (a flag or variable): lists comma-separated."""
    items = _list_items(field, text)
    if items is not None:
        return items
    kind = field_kind(field)
    if kind is str:
        return text
    if kind is bool:
        return read_bool(text)
    try:
        return kind(text)
    except ValueError:
        raise ConfigurationError(f"{text!r} is not {KIND_WORDS.get(kind, kind.__name__)}") from None
