"""Pausing and resuming queues cluster-wide: the ``verk:paused`` set in Redis.

Every node reads the set and stops taking jobs of a paused queue (within a poll
interval); a restarted node finds the state there. Jobs keep being enqueued meanwhile.
"""

from __future__ import annotations

import redis

from verk_actors.jobs.job import check_queue_name
from verk_actors.jobs.stored_job import as_text
from verk_actors.store import keys
from verk_actors.store.admin.nodes import list_nodes


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


def known_queues(client: redis.Redis) -> list[str]:
    """Every queue name Redis or a node knows, sorted: in ``queues``, paused, or worked
    on by a node (alive or not) that published its queues."""
    names = {as_text(name) for name in client.smembers(keys.QUEUES)}
    names.update(paused_queues(client))
    for node in list_nodes(client):
        names.update(queue.name for queue in node.queues)
    return sorted(names)


def is_known(client: redis.Redis, queue: str) -> bool:
    """Whether ``queue`` is a name Redis or a node knows, or it holds jobs.

    A name none of them knows is most likely a typo (``pause mial``).
    """
    check_queue_name(queue)
    return queue in known_queues(client) or bool(client.exists(keys.queue_key(queue)))
