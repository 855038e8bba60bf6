"""Pausing and resuming queues cluster-wide: the ``verk:paused`` set in Redis.

A pause takes effect at once on every node (``pause_queue`` says what that means); a
restarted node finds the state there. Jobs keep being enqueued meanwhile.
"""

from __future__ import annotations

import redis

from verk_actors.jobs.job import check_queue_name
from verk_actors.jobs.stored_job import as_text
from verk_actors.store import keys
from verk_actors.store.admin.nodes import list_nodes
from verk_actors.store.job_wait import unblock_waits


def pause_queue(client: redis.Redis, queue: str) -> bool:
    """Pause ``queue`` on every node at once; False if it was paused already.

    Once this returns, no node starts a job of ``queue`` that it takes afterwards: batch
    takes check the set in the same script, and every blocked ``BLMOVE`` of the queue
    is interrupted to go out again behind a pause check (``job_wait``). Jobs a node took
    before keep running.
    """
    added = bool(client.sadd(keys.PAUSED, check_queue_name(queue)))
    unblock_waits(client, queue)
    return added


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
