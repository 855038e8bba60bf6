"""The job metrics history in Redis: per worker class, per minute and per hour, how many
jobs ran, how many failed, their total run time and a histogram of run times.

Each WorkersManager adds up its jobs in memory (``actors/queue/_history.py``) and
``HistoryWriter.write`` adds them to Redis every ``FLUSH_EVERY`` seconds in one
transaction, whatever the number of jobs: ``HINCRBY`` on the minute's hash and on the
hour's hash (the hourly rollup is written as the minutes are), each given its TTL.

Both hashes have, per class ``<c>`` that ran in them: ``<c>|p`` (executions, failures
included), ``<c>|f`` (failures), ``<c>|us`` (total run time, microseconds) and
``<c>|b<i>`` for each bucket ``i`` of ``BUCKETS`` that counted a job (jobs whose run time
is known: a job whose worker died counts in ``p`` and ``f`` only). The reading side is
``store/admin/job_metrics.py``; ``store/CONTRACT.md`` lists the keys.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import redis

from verk_actors.store import keys
from verk_actors.store.connection import connect

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds (seconds) of the run time histogram; one more bucket takes the rest."""

SLOTS = 3 + len(BUCKETS) + 1
"""A class's figures in one period: executions, failures, microseconds, then buckets."""

EXECUTIONS, FAILURES, MICROS = "p", "f", "us"

MINUTE_TTL = 2 * 3600
"""Seconds a minute's hash lives after its last write (2 hours: the pages read minutes
for the last hour only; longer windows read hours)."""

HOUR_TTL = 8 * 86400
"""Seconds an hour's hash lives after its last write (8 days: a 7-day window and the hour
being written)."""

FLUSH_EVERY = 5.0
"""Seconds between two writes of a WorkersManager's figures."""

TIMEOUT = 0.5
"""Seconds a write (or a connection) may take: the WorkersManager never waits long."""

ERRORS = (redis.RedisError, OSError)

Rows = Mapping[str, Mapping[str, Sequence[float]]]
"""minute (``yyyy-mm-ddTHH:MM``) -> class -> ``SLOTS`` figures."""


def minute_of(ts: float) -> str:
    """The UTC minute of a unix time, as the minute keys name it."""
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ts))


def hour_of(ts: float) -> str:
    """The UTC hour of a unix time, as the hour keys name it."""
    return time.strftime("%Y-%m-%dT%H", time.gmtime(ts))


def bucket_field(class_name: str, index: int) -> str:
    return f"{class_name}|b{index}"


def class_fields(class_name: str) -> list[str]:
    """The fields of ``class_name`` in a period's hash, in ``SLOTS`` order."""
    return [f"{class_name}|{EXECUTIONS}", f"{class_name}|{FAILURES}", f"{class_name}|{MICROS}"] + [
        bucket_field(class_name, i) for i in range(len(BUCKETS) + 1)
    ]


def increments(classes: Mapping[str, Sequence[float]]) -> dict[str, int]:
    """The ``HINCRBY`` amounts of one period's figures (zeros left out)."""
    out: dict[str, int] = {}
    for class_name, row in classes.items():
        for name, value in zip(class_fields(class_name), row, strict=True):
            amount = round(value)
            if amount:
                out[name] = amount
    return out


def writer_name(node_id: str, queue: str) -> str:
    """The name a queue's writer gives its connection (``CLIENT LIST``)."""
    return f"verk:{node_id}:{queue}:metrics"


class HistoryWriter:
    """A connection of its own, with short timeouts, that adds figures to the history."""

    def __init__(self, url: str, name: str) -> None:
        self.client = connect(url, name=name, socket_timeout=TIMEOUT, connect_timeout=TIMEOUT)

    def write(self, rows: Rows) -> None:
        """Add ``rows`` to the minute and hour hashes, in one transaction (``ERRORS``
        raise: nothing was added)."""
        hours: dict[str, dict[str, int]] = {}
        pipe = self.client.pipeline(transaction=True)
        for minute, classes in rows.items():
            amounts = increments(classes)
            if not amounts:
                continue
            key = keys.metrics_minute_key(minute)
            for name, amount in amounts.items():
                pipe.hincrby(key, name, amount)
            pipe.expire(key, MINUTE_TTL)
            hour = hours.setdefault(minute[:13], {})
            for name, amount in amounts.items():
                hour[name] = hour.get(name, 0) + amount
        for hour_name, amounts in hours.items():
            key = keys.metrics_hour_key(hour_name)
            for name, amount in amounts.items():
                pipe.hincrby(key, name, amount)
            pipe.expire(key, HOUR_TTL)
        if hours:
            pipe.execute()

    def close(self) -> None:
        self.client.close()
