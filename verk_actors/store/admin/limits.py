"""The rate and concurrency limiters jobs have taken, as Redis has them now.

Read-only: ``verk-actors limits`` and the Python API list them. A limiter appears once
a job has taken (or tried to take) it, and is forgotten 7 days after its last use.
"""

from __future__ import annotations

from typing import Any

import attrs
import redis

from verk_actors.jobs.stored_job import as_text
from verk_actors.store import keys


@attrs.frozen
class Holder:
    """One holder of a limiter: a ``Concurrent`` slot (``until``: end of its lease) or
    a take of a ``Window`` (``at``: when)."""

    holder: str
    at: float

    @property
    def jid(self) -> str:
        """The jid of the job that holds it (holders are ``<jid>@<node>/<pid>.<n>``)."""
        return self.holder.split("@", 1)[0]

    @property
    def node(self) -> str:
        """The node whose worker took it."""
        rest = self.holder.split("@", 1)[1] if "@" in self.holder else ""
        return rest.rsplit("/", 1)[0]


@attrs.frozen
class LimiterStatus:
    """One limiter: its kind and limit, and who holds it now."""

    name: str
    kind: str
    """``concurrent`` or ``window`` (``?`` when its hash could not be read)."""
    limit: int
    seconds: float
    """A ``Concurrent``'s lease, a ``Window``'s ``per``."""
    used_at: float | None
    holders: tuple[Holder, ...]
    """Slots held (leases not ended), or takes in the current window, oldest first."""

    @property
    def in_use(self) -> int:
        return len(self.holders)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``verk-actors limits --json``, the dashboard's API)."""
        concurrent = self.kind == "concurrent"
        return {
            "name": self.name,
            "kind": self.kind,
            "limit": self.limit,
            "lease" if concurrent else "per": self.seconds,
            "in_use": self.in_use,
            "used_at": self.used_at,
            "holders": [
                {
                    "holder": h.holder,
                    "jid": h.jid,
                    "node": h.node,
                    "lease_until" if concurrent else "taken_at": h.at,
                }
                for h in self.holders
            ],
        }


def _number(value: bytes | None, default: float = 0.0) -> float:
    try:
        return float(as_text(value)) if value is not None else default
    except ValueError:
        return default


def limiter_statuses(client: redis.Redis) -> list[LimiterStatus]:
    """Every limiter taken in the last 7 days, by name, with its live holders."""
    names = sorted(as_text(name) for name in client.smembers(keys.LIMITS))
    seconds, micros = client.time()
    now = seconds + micros / 1_000_000
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.limit_key(name))
        pipe.zrange(keys.limit_slots_key(name), 0, -1, withscores=True)
        pipe.zrange(keys.limit_window_key(name), 0, -1, withscores=True)
    replies = pipe.execute()
    found: list[LimiterStatus] = []
    for index, name in enumerate(names):
        spec, slots, takes = replies[3 * index : 3 * index + 3]
        if not spec:
            continue  # unused for 7 days: forgotten
        kind = as_text(spec.get(b"kind", b"?"))
        if kind == "concurrent":
            seconds_ = _number(spec.get(b"lease"))
            holders = [Holder(as_text(m), s) for m, s in slots if s > now]
        else:
            seconds_ = _number(spec.get(b"per"), 1.0)
            holders = [Holder(as_text(m), s) for m, s in takes if s > now - seconds_]
        found.append(
            LimiterStatus(
                name=name,
                kind=kind,
                limit=int(_number(spec.get(b"limit"))),
                seconds=seconds_,
                used_at=_number(spec.get(b"used_at")) or None,
                holders=tuple(holders),
            )
        )
    return found
