"""Periodic jobs: cron entries, when they tick, and which of them a node runs.

An entry comes from a worker class (``cron = "*/5 * * * *"``, with ``cron_tz`` and
``cron_args``) or from the settings (``[cron.NAME]`` in the TOML file, ``--cron``).
Expressions are cron's five fields, or six with seconds first
(``"*/10 * * * * *"``: every ten seconds), read by ``cronsim``; ticks are computed in
the entry's time zone (an IANA name, ``UTC`` by default) and handled as unix seconds.

Nothing here talks to Redis: ``verk_actors.store.cron`` claims and enqueues the ticks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from cronsim import CronSim, CronSimError

from verk_actors.errors import ConfigurationError
from verk_actors.jobs.job import check_queue_name, dumps
from verk_actors.jobs.worker import worker_name

CATCH_UP_MODES = ("latest", "skip")
"""What a starting node does with ticks no node was up to enqueue: ``latest`` enqueues
the most recent of them once, ``skip`` enqueues none."""

MAX_TICKS = 1000
"""Most ticks one call of ``ticks_between`` returns (a bound on a long pause)."""


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"time zone {name!r} is not known; write an IANA name such as Europe/Berlin, or UTC"
        ) from None


def _check_name(_inst: object, _attr: object, value: Any) -> None:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 200
        or any(ch.isspace() or ch == ":" or not ch.isprintable() for ch in value)
    ):
        raise ConfigurationError(
            f"cron entry name {value!r} is not usable: write at most 200 printable "
            "characters without spaces or ':'"
        )


def _check_worker(_inst: object, _attr: object, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"a cron entry names its worker class, got {value!r}")


def _check_schedule(_inst: object, _attr: object, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigurationError(f"a cron expression is a string, got {value!r}")
    try:
        CronSim(value, datetime.now(UTC))
    except (CronSimError, ValueError) as exc:
        raise ConfigurationError(
            f"cron expression {value!r} cannot be read ({exc}); write five fields "
            "(minute hour day month weekday, e.g. '*/5 * * * *') or six with seconds "
            "first ('*/10 * * * * *')"
        ) from None


def _check_tz(_inst: object, _attr: object, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigurationError(f"a cron time zone is a string, got {value!r}")
    _zone(value)


def _check_queue(_inst: object, _attr: object, value: Any) -> None:
    if value is not None:
        try:
            check_queue_name(value)
        except Exception as exc:
            raise ConfigurationError(f"cron entry queue: {exc}") from None


def _args(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ConfigurationError(f"cron entry args must be a list, got {value!r}")
    args = tuple(value)
    try:
        dumps(list(args))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"cron entry args must be JSON values: {exc}") from None
    return args


@attrs.frozen
class CronEntry:
    """One periodic job: enqueue ``worker(*args)`` to ``queue`` at every tick of
    ``schedule`` in time zone ``tz``. ``queue`` None: the worker class's queue when
    the entry comes from a class, else ``default``; ``retry`` None: the job carries
    none (the worker's option applies where it runs)."""

    name: str = attrs.field(validator=_check_name)
    worker: str = attrs.field(validator=_check_worker)
    schedule: str = attrs.field(validator=_check_schedule)
    tz: str = attrs.field(default="UTC", validator=_check_tz)
    args: tuple[Any, ...] = attrs.field(default=(), converter=_args)
    queue: str | None = attrs.field(default=None, validator=_check_queue)
    retry: bool | int | None = None

    @property
    def target_queue(self) -> str:
        """The queue its jobs go to."""
        return self.queue or "default"

    def _iter(self, start: float, *, reverse: bool = False) -> CronSim:
        return CronSim(self.schedule, datetime.fromtimestamp(start, _zone(self.tz)), reverse)

    def ticks_between(self, after: float, until: float) -> list[int]:
        """The ticks ``t`` with ``after < t <= until`` (unix seconds), oldest first,
        at most ``MAX_TICKS`` of them."""
        ticks: list[int] = []
        # cronsim starts one second past the whole second of its start: from
        # floor(after), the first tick is past ``after``.
        for moment in self._iter(float(int(after))):
            tick = int(moment.timestamp())
            if tick > until or len(ticks) >= MAX_TICKS:
                break
            ticks.append(tick)
        return ticks

    def latest(self, at: float) -> int | None:
        """The last tick at or before ``at``, None if there is none in 50 years."""
        try:
            return int(next(self._iter(float(int(at) + 1), reverse=True)).timestamp())
        except StopIteration:
            return None

    def next_after(self, at: float) -> int | None:
        """The first tick after ``at``, None if there is none in 50 years."""
        try:
            return int(next(self._iter(float(int(at)))).timestamp())
        except StopIteration:
            return None

    def spec(self) -> str:
        """The entry as JSON, as nodes publish it for ``verk-actors cron list``."""
        return dumps(
            {
                "worker": self.worker,
                "schedule": self.schedule,
                "tz": self.tz,
                "args": list(self.args),
                "queue": self.target_queue,
            }
        )

    @classmethod
    def from_spec(cls, name: str, text: str | bytes) -> CronEntry:
        """An entry read back from ``spec()``'s JSON."""
        data = json.loads(text)
        return cls(name, data["worker"], data["schedule"], data["tz"], data["args"], data["queue"])

    @classmethod
    def parse(cls, text: str) -> CronEntry:
        """An entry written as text (``--cron``, ``VERK_CRON``):
        ``NAME=CLASS[@TZ] EXPRESSION``, e.g. ``report=Report@Europe/Berlin 0 9 * * MON``."""
        name, sep, rest = text.strip().partition("=")
        target, _, schedule = rest.strip().partition(" ")
        worker, _, tz = target.partition("@")
        if not sep or not worker or not schedule.strip():
            raise ConfigurationError(
                f"cron entry {text!r}: write NAME=CLASS[@TZ] EXPRESSION, e.g. "
                "'report=Report@Europe/Berlin 0 9 * * MON'"
            )
        return cls(name.strip(), worker, schedule.strip(), tz or "UTC")

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> CronEntry:
        """An entry from a TOML table: ``class``, ``cron``, and optionally ``tz``,
        ``args``, ``queue``, ``retry``."""
        known = {"class", "cron", "tz", "args", "queue", "retry"}
        unknown = sorted(set(table) - known)
        if unknown or "class" not in table or "cron" not in table:
            raise ConfigurationError(
                f"cron entry {name!r}: keys are class, cron (required), tz, args, queue, "
                f"retry; got {', '.join(sorted(table))}"
            )
        retry = table.get("retry")
        if retry is not None and not isinstance(retry, bool | int):
            raise ConfigurationError(f"cron entry {name!r}: retry is true, false or a number")
        return cls(
            name,
            table["class"],
            table["cron"],
            table.get("tz", "UTC"),
            table.get("args", ()),
            table.get("queue"),
            retry,
        )


def class_entry(cls: type) -> CronEntry | None:
    """The entry a worker class declares with ``cron``, or None."""
    schedule = getattr(cls, "cron", None)
    if schedule is None:
        return None
    name = worker_name(cls)
    try:
        return CronEntry(
            name,
            name,
            schedule,
            getattr(cls, "cron_tz", "UTC"),
            getattr(cls, "cron_args", ()),
            getattr(cls, "queue", None),
            getattr(cls, "retry", None),
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"{cls.__module__}.{cls.__qualname__}: {exc}") from None


def node_entries(configured: Iterable[CronEntry], classes: Iterable[type]) -> tuple[CronEntry, ...]:
    """The entries a node runs: those of its settings, then those of its worker
    classes; a name given twice is refused."""
    entries: dict[str, CronEntry] = {}
    from_classes = [e for e in (class_entry(c) for c in classes) if e is not None]
    for entry in (*configured, *from_classes):
        if entry.name in entries and entries[entry.name] != entry:
            raise ConfigurationError(
                f"two cron entries are named {entry.name!r}; rename one (a worker class's "
                "entry is named after the class)"
            )
        entries[entry.name] = entry
    return tuple(entries.values())


def cron_entries(value: Iterable[CronEntry]) -> tuple[CronEntry, ...]:
    """``Settings.cron`` checked: CronEntry values, each name once."""
    if isinstance(value, CronEntry | str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"cron must be a list of CronEntry, e.g. cron=(CronEntry('report', 'Report', "
            f"'0 9 * * *'),), got {value!r}"
        )
    entries = tuple(value)
    for entry in entries:
        if not isinstance(entry, CronEntry):
            raise ConfigurationError(f"cron must hold CronEntry values, got {entry!r}")
    names = [entry.name for entry in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"cron entry {dupes[0]!r} is listed twice; name each once")
    return entries


def check_catch_up(_inst: object, _attr: object, value: Any) -> None:
    """``Settings.cron_catch_up`` checked: one of ``CATCH_UP_MODES``."""
    if value not in CATCH_UP_MODES:
        raise ConfigurationError(
            f"cron_catch_up must be {' or '.join(CATCH_UP_MODES)}, got {value!r}"
        )
