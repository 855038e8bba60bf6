"""The job: a frozen value with Sidekiq's field names and a lossless JSON round trip.

A job read from Redis keeps its exact text in ``original_json`` so that it can be
removed from a list or set by its stored bytes (``verk_actors/store/CONTRACT.md``).
Fields we do not know (Sidekiq's ``tags``, ``bid``, Verk's ``finished_at``...) live in
``extra`` and are written back unchanged.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from verk_actors.errors import InvalidJobError, MalformedJobError

KNOWN_FIELDS = frozenset(
    (
        "class",
        "args",
        "retry",
        "queue",
        "jid",
        "created_at",
        "enqueued_at",
        "max_retry_count",
        "retry_count",
        "failed_at",
        "retried_at",
        "error_class",
        "error_message",
        "error_backtrace",
    )
)

MAX_QUEUE_NAME = 200

DEFAULT_QUEUE = "default"
"""Sidekiq's default queue: where a job without a ``queue`` field goes when it is
scheduled, retried or enqueued by name."""


def new_jid() -> str:
    """A new job id: 24 hex characters, as Sidekiq makes them."""
    return secrets.token_hex(12)


def dumps(value: Any) -> str:
    """Compact JSON as Sidekiq writes it (UTF-8 kept, no NaN)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


_STRICT = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_SCAN: Callable[[str, int], tuple[Any, int]] = _STRICT.scan_once  # type: ignore[attr-defined]
"""The decoder's C scanner (set by ``JSONDecoder.__init__``, missing from typeshed)."""


def loads(text: str) -> Any:
    """Strict JSON: NaN, Infinity, out-of-range numbers and too deep nesting raise ValueError.

    Python's ``json`` reads the numbers, but ``dumps`` cannot write them back, so a job
    holding one could never be moved to ``retry`` or ``dead``; deep nesting raised
    RecursionError, which no caller expects from a bad job text.

    A job text is an object with nothing around it: that is parsed by the C scanner
    directly (``decode`` adds two regex matches and two Python calls, a quarter of the
    time); anything else, and every error message, comes from ``decode``.
    """
    try:
        if text.startswith("{"):
            try:
                value, end = _SCAN(text, 0)
            except StopIteration:
                pass  # not JSON: decode says where
            else:
                if end == len(text):
                    return value
        return _STRICT.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


@attrs.frozen
class Job:
    """One job, as stored in Redis (Sidekiq's wire format)."""

    class_name: str
    args: list[Any] = attrs.field(factory=list)
    jid: str | None = None
    queue: str | None = None
    retry: bool | int | None = None
    created_at: Any = None
    enqueued_at: Any = None
    max_retry_count: int | None = None
    retry_count: int | None = None
    failed_at: Any = None
    retried_at: Any = None
    error_class: str | None = None
    error_message: str | None = None
    error_backtrace: Any = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    original_json: str | None = attrs.field(default=None, eq=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this job; fields that are None are left out."""
        out: dict[str, Any] = {"class": self.class_name, "args": list(self.args)}
        for name, value in (
            ("retry", self.retry),
            ("queue", self.queue),
            ("jid", self.jid),
            ("created_at", self.created_at),
            ("enqueued_at", self.enqueued_at),
            ("max_retry_count", self.max_retry_count),
            ("retry_count", self.retry_count),
            ("failed_at", self.failed_at),
            ("retried_at", self.retried_at),
            ("error_class", self.error_class),
            ("error_message", self.error_message),
            ("error_backtrace", self.error_backtrace),
        ):
            if value is not None:
                out[name] = value
        for name, value in self.extra.items():
            out.setdefault(name, value)
        return out

    def to_json(self) -> str:
        """The job as compact JSON text."""
        return dumps(self.to_dict())


def _int_or_none(value: Any) -> int | None:
    if value is None or value.__class__ is bool:
        return None
    if value.__class__ is int:
        return int(value)
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def _decode_args(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, str):
        # Verk 1.4+ writes args as a JSON string holding an array.
        try:
            raw = loads(raw)
        except ValueError as exc:
            raise MalformedJobError(
                f'job "args" is a string that is not JSON ({exc}); '
                "args must be a JSON array, or a string holding one"
            ) from exc
    if not isinstance(raw, list):
        raise MalformedJobError(
            f'job "args" is a JSON {type(raw).__name__}, not an array; enqueue args as a list'
        )
    return raw


def decode_job(text: str | bytes) -> Job:
    """Parse a job text read from Redis; raise MalformedJobError saying what is wrong."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJobError(f"job text is not UTF-8 ({exc})") from exc
    try:
        data = loads(text)
    except ValueError as exc:
        raise MalformedJobError(f"job text is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise MalformedJobError(
            f'job JSON is a {type(data).__name__}, not an object with a "class" field'
        )
    class_name = data.get("class")
    if not isinstance(class_name, str) or not class_name:
        raise MalformedJobError('job JSON has no "class" field naming a worker')
    get = data.get
    retry = get("retry")
    if not isinstance(retry, int):  # bool is an int
        retry = None
    queue = get("queue")
    jid = get("jid")
    args = get("args")
    return Job(
        class_name,
        args if args.__class__ is list else _decode_args(args),
        jid if jid is None or jid.__class__ is str else str(jid),
        queue if queue.__class__ is str and queue else None,
        retry,
        get("created_at"),
        get("enqueued_at"),
        _int_or_none(get("max_retry_count")),
        _int_or_none(get("retry_count")),
        get("failed_at"),
        get("retried_at"),
        _str_or_none(get("error_class")),
        _str_or_none(get("error_message")),
        get("error_backtrace"),
        {k: v for k, v in data.items() if k not in KNOWN_FIELDS},
        text,
    )


def peek_ids(text: str | bytes) -> tuple[str | None, str | None]:
    """The ``jid`` and ``class`` of a job text where they can be read, also from a job
    that cannot run (bad args, no class, not UTF-8), for logs and events."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        data = loads(text)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    return _str_or_none(data.get("jid")), _str_or_none(data.get("class"))


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def check_queue_name(queue: Any) -> str:
    """Return ``queue`` if it can name a queue, else raise InvalidJobError."""
    if not isinstance(queue, str) or not queue:
        raise InvalidJobError(f"queue name must be a non-empty string, got {queue!r}")
    if len(queue) > MAX_QUEUE_NAME or any(ch.isspace() or not ch.isprintable() for ch in queue):
        raise InvalidJobError(
            f"queue name {queue!r} is not usable: use at most {MAX_QUEUE_NAME} printable "
            "characters without spaces"
        )
    return queue


def new_job(
    class_name: str,
    args: Sequence[Any],
    *,
    queue: str,
    now: float,
    retry: bool | int | None = True,
    jid: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Job:
    """A job ready to enqueue; raise InvalidJobError (before touching Redis) if it is not."""
    if not isinstance(class_name, str) or not class_name:
        raise InvalidJobError(
            f"worker class must be a non-empty string or a Worker class, got {class_name!r}"
        )
    if isinstance(args, str | bytes | Mapping) or not isinstance(args, Sequence):
        raise InvalidJobError(f"job args must be a list or tuple, got {type(args).__name__}")
    if retry is not None and not isinstance(retry, bool | int):
        raise InvalidJobError(f"retry must be true, false or a number of retries, got {retry!r}")
    clashing = sorted(set(extra or {}) & set(KNOWN_FIELDS))
    if clashing:
        raise InvalidJobError(f"extra job fields may not override {', '.join(clashing)}")
    job = Job(
        class_name=class_name,
        args=list(args),
        jid=jid or new_jid(),
        queue=check_queue_name(queue),
        retry=retry,
        created_at=now,
        enqueued_at=now,
        extra=dict(extra or {}),
    )
    try:
        job.to_json()
    except (TypeError, ValueError) as exc:
        raise InvalidJobError(
            f"job args must be JSON values (str, int, float, bool, None, list, dict): {exc}"
        ) from exc
    return job
