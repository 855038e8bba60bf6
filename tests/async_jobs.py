"""A worker module a node must refuse to load: one of its workers has ``async def perform``."""

from __future__ import annotations

from typing import Any

from tests.jobs import client
from verk_actors import Worker


class AsyncRecord(Worker):
    """Would append ``token`` to ``key``, if anything awaited it."""

    async def perform(self, url: str, key: str, token: Any) -> None:  # type: ignore[override]
        client(url).rpush(key, token)
