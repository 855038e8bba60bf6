"""Sidekiq's view of the processes on a Redis (its Busy page): ours and Sidekiq's own.

Every process, a verk_actors node or a Ruby Sidekiq, is in the ``processes`` set; its
hash (key: the identity) holds ``info`` (JSON: hostname, pid, tag, concurrency,
queues...), ``busy``, ``beat``, ``quiet`` and ``rss`` (KB); ``<identity>:workers`` maps
each busy thread to its work JSON (``queue``, ``payload``: the job text, ``run_at``).
A member whose hash has expired (the process died without leaving) is skipped, as
Sidekiq's ``ProcessSet`` skips it.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import redis

from verk_actors.errors import ConfigurationError, NotFoundError
from verk_actors.jobs.stored_job import StoredJob, as_text
from verk_actors.store import keys


@attrs.frozen
class ProcessInfo:
    """One process as its hash in Redis describes it."""

    identity: str
    hostname: str | None
    pid: int | None
    tag: str | None
    concurrency: int | None
    queues: tuple[str, ...]
    labels: tuple[str, ...]
    busy: int
    beat: float | None
    rss_kb: int | None
    quiet: bool
    started_at: float | None

    @property
    def verk(self) -> bool:
        """Whether it is a verk_actors node (else a Sidekiq process)."""
        return self.tag == "verk_actors"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        out = attrs.asdict(self)
        out["kind"] = "verk_actors" if self.verk else "sidekiq"
        return out


@attrs.frozen
class Work:
    """A job a process runs now: on which thread, from which queue, since when."""

    identity: str
    thread: str
    queue: str | None
    run_at: float | None
    stored: StoredJob | None


def _num(value: Any, kind: type[int] | type[float]) -> Any:
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def parse_process(identity: str, fields: dict[str, str]) -> ProcessInfo:
    """A ProcessInfo from the fields of a process hash (decoded to text)."""
    try:
        info = json.loads(fields.get("info") or "{}")
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    return ProcessInfo(
        identity=identity,
        hostname=_str(info.get("hostname")),
        pid=_num(info.get("pid"), int),
        tag=_str(info.get("tag")),
        concurrency=_num(info.get("concurrency"), int),
        queues=_strings(info.get("queues")),
        labels=_strings(info.get("labels")),
        busy=_num(fields.get("busy"), int) or 0,
        beat=_num(fields.get("beat"), float),
        rss_kb=_num(fields.get("rss"), int),
        quiet=fields.get("quiet") == "true",
        started_at=_num(info.get("started_at"), float),
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def list_processes(client: redis.Redis) -> list[ProcessInfo]:
    """Every live process in ``processes``, by identity."""
    identities = sorted(as_text(m) for m in client.smembers(keys.PROCESSES))
    if not identities:
        return []
    pipe = client.pipeline(transaction=False)
    for identity in identities:
        pipe.hgetall(identity)
    out = []
    for identity, fields in zip(identities, pipe.execute(), strict=True):
        if fields:
            text = {as_text(k): as_text(v) for k, v in fields.items()}
            out.append(parse_process(identity, text))
    return out


def parse_work(identity: str, thread: str, text: str) -> Work:
    """A Work from one field of a ``<identity>:workers`` hash."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Work(identity, thread, None, None, StoredJob.read(text))
    payload = data.get("payload")
    if isinstance(payload, dict):  # Sidekiq 7 may store it decoded
        payload = json.dumps(payload)
    stored = StoredJob.read(payload) if isinstance(payload, str) else None
    queue = data.get("queue")
    return Work(
        identity,
        thread,
        queue if isinstance(queue, str) else None,
        _num(data.get("run_at"), float),
        stored,
    )


def running_work(client: redis.Redis, identities: list[str], limit: int = 1000) -> list[Work]:
    """The jobs the given processes run now, longest running first, at most ``limit``."""
    if not identities:
        return []
    pipe = client.pipeline(transaction=False)
    for identity in identities:
        pipe.hgetall(keys.process_workers_key(identity))
    works = [
        parse_work(identity, as_text(thread), as_text(text))
        for identity, fields in zip(identities, pipe.execute(), strict=True)
        for thread, text in fields.items()
    ]
    works.sort(key=lambda w: (w.run_at is None, w.run_at or 0.0, w.identity, w.thread))
    return works[:limit]


SIGNALS = {"quiet": "TSTP", "stop": "TERM"}
"""Action -> the signal Sidekiq's Web pushes for it."""


def signal_process(client: redis.Redis, identity: str, action: str) -> str:
    """Ask a process (a node or a Sidekiq) to go quiet or stop, as Sidekiq's Web does:
    ``LPUSH <identity>-signals TSTP|TERM`` with a minute to live. The process pops it at
    its next heartbeat. Returns the signal pushed.

    Raises ``ConfigurationError`` for an action other than ``quiet`` or ``stop``,
    ``NotFoundError`` when ``identity`` is not a live process (see ``find_process``).
    """
    signal = SIGNALS.get(action)
    if signal is None:
        raise ConfigurationError(f"unknown process action {action!r}: use quiet or stop")
    if not client.sismember(keys.PROCESSES, identity) or not client.exists(identity):
        raise NotFoundError(
            f"no live process has the identity {identity!r}; reload the Busy page "
            "(or `verk-actors stats`) to see the processes running now"
        )
    key = keys.process_signals_key(identity)
    with client.pipeline(transaction=True) as pipe:
        pipe.lpush(key, signal)
        pipe.expire(key, keys.SIGNALS_TTL)
        pipe.execute()
    return signal


def find_process(client: redis.Redis, name: str) -> ProcessInfo:
    """The live process named ``name``: its identity, or a node id (the node's process).

    Raises ``NotFoundError`` if none (or several) match."""
    found = [p for p in list_processes(client) if name in (p.identity, _node_of(p))]
    if len(found) != 1:
        known = ", ".join(sorted(_node_of(p) or p.identity for p in list_processes(client)))
        what = "no live process" if not found else "several live processes"
        raise NotFoundError(f"{what} named {name!r}; live: {known or 'none'}")
    return found[0]


def _node_of(process: ProcessInfo) -> str | None:
    """A node's id (its ``node:<id>`` label), None for a Sidekiq process."""
    for label in process.labels:
        if process.verk and label.startswith("node:"):
            return label[len("node:") :]
    return None
