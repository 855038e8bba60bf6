"""Pausing and resuming queues cluster-wide: the ``verk:paused`` set in Redis.

Every node reads the set and stops taking jobs of a paused queue (within a poll
interval); a restarted node finds the state there. Jobs keep being enqueued meanwhile.
"""

from __future__ import annotations

import redis

from verk_actors.jobs.job import check_queue_name
from verk_actors.jobs.stored_job import as_text
from verk_actors.store import keys


def pause_queue(client: redis.Redis, queue: str) -> bool:
    """Pause ``queue`` on every node; False if it was paused already."""
    return bool(client.sadd(keys.PAUSED, check_queue_name(queue)))


def resume_queue(client: redis.Redis, queue: str) -> bool:
    """Let every node take jobs of ``queue`` again; False if it was not paused."""
    return bool(client.srem(keys.PAUSED, check_queue_name(queue)))


def is_paused(client: redis.Redis, queue: str) -> bool:
    """Whether ``queue`` is paused."""
    return bool(client.sismember(keys.PAUSED, queue))


def paused_queues(client: redis.Redis) -> list[str]:
    """The paused queues, sorted."""
    return sorted(as_text(name) for name in client.smembers(keys.PAUSED))
