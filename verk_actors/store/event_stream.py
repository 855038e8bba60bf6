"""Job events through Redis pub/sub: a node publishes, the dashboard's ``/api/events`` listens.

A node's EventManager asks ``PUBSUB NUMSUB verk:events`` once a second; only while
someone subscribes does it switch job events on and ``PUBLISH`` them, one message per
batch (a JSON object: ``node``, ``events``, ``dropped``). With nobody listening a node
publishes nothing and builds no event. Pub/sub keeps nothing: a listener sees what
is published while it listens.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import redis
import redis.asyncio

from verk_actors.store import keys
from verk_actors.store.connection import connect


class EventStream:
    """A node's side: how many listen, and publishing a batch."""

    def __init__(self, url: str, node_id: str) -> None:
        self.client = connect(url, name=f"verk:{node_id}:events")

    def listeners(self) -> int:
        """How many connections subscribe to the events channel now."""
        counts = self.client.pubsub_numsub(keys.EVENTS_CHANNEL)
        return int(counts[0][1]) if counts else 0

    def publish(self, text: str) -> int:
        """Publish one batch (JSON text); how many listeners got it."""
        return int(self.client.publish(keys.EVENTS_CHANNEL, text))

    def close(self) -> None:
        self.client.close()


async def listen(url: str, *, poll: float = 1.0) -> AsyncGenerator[str | None, None]:
    """The batches published on the events channel, as text, for as long as the caller
    iterates; ``None`` every ``poll`` seconds without one (so the caller can see whether
    its own client went away). One subscription, closed when the iteration ends."""
    client = redis.asyncio.Redis.from_url(
        url, client_name="verk:web:events", socket_connect_timeout=5.0
    )
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(keys.EVENTS_CHANNEL)
        while True:
            message = await pubsub.get_message(timeout=poll)
            if message is None or message.get("type") != "message":
                yield None
                continue
            data = message["data"]
            yield data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    finally:
        try:
            await pubsub.aclose()
        finally:
            await client.aclose()
