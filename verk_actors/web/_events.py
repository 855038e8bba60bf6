"""``/api/events``: job started, finished and failed as server-sent events.

Each connection subscribes to the events channel in Redis (``redis.asyncio``: nothing
blocks Starlette's event loop); nodes publish there only while someone subscribes, so
the stream starts within about a second of the first listener. Every event goes out
as one ``data:`` line of JSON (``kind``: ``job_started``, ``job_finished``,
``job_failed``, or ``node`` when a node starts streaming; ``node``, ``queue``,
``jid``, ``class``, times, and a failure's ``error_class``, ``error_message`` and
``target``). ``?queue=NAME`` and ``?kind=KIND`` (repeatable) filter. A comment line
keeps the connection alive every ``KEEPALIVE`` seconds; the stream ends when the client
goes away (looked at every second) or Redis fails (a browser reconnects by itself), and
at most ``max_streams`` are open at once (more are answered 503).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from verk_actors.store.event_stream import listen
from verk_actors.store.failures import REDIS_ERRORS

KEEPALIVE = 15.0
"""Seconds between two keep-alive comments on a quiet stream."""

MAX_STREAMS = 20
"""Event streams one app serves at once, by default."""

RETRY_MS = 3000
"""How long a browser waits before reconnecting (EventSource's ``retry`` field)."""

RETRY_FIELD = "retry"
"""The SSE field naming that wait (a name apart: ``retry`` is also a Redis key)."""


def _events(text: str) -> list[dict[str, Any]]:
    """The events of one published batch, each with its node; [] if it is not one."""
    try:
        batch = json.loads(text)
    except ValueError:
        return []
    if not isinstance(batch, dict) or not isinstance(batch.get("events"), list):
        return []
    node = batch.get("node")
    out = [{**e, "node": node} for e in batch["events"] if isinstance(e, dict)]
    if batch.get("dropped"):
        out.append({"kind": "dropped", "node": node, "count": batch["dropped"]})
    return out


class EventStreams:
    """The open streams of one app, and the endpoint that opens one."""

    def __init__(self, url: str, *, max_streams: int = MAX_STREAMS) -> None:
        self.url = url
        self.max_streams = max_streams
        self.open = 0

    async def endpoint(self, request: Request) -> Response:
        if self.open >= self.max_streams:
            return JSONResponse(
                {"error": f"{self.max_streams} event streams are open already; try later"},
                status_code=503,
                headers={"retry-after": "10"},
            )
        kinds = set(request.query_params.getlist("kind"))
        queues = set(request.query_params.getlist("queue"))
        return StreamingResponse(
            self._stream(request, kinds, queues),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def _stream(
        self, request: Request, kinds: set[str], queues: set[str]
    ) -> AsyncIterator[str]:
        self.open += 1
        try:
            yield f"{RETRY_FIELD}: {RETRY_MS}\n: listening\n\n"
            quiet_since = time.monotonic()
            async with aclosing(listen(self.url)) as batches:
                async for text in batches:
                    if await request.is_disconnected():
                        return
                    if text is None:
                        if time.monotonic() - quiet_since >= KEEPALIVE:
                            quiet_since = time.monotonic()
                            yield ": keep-alive\n\n"
                        continue
                    out = "".join(
                        f"data: {json.dumps(e, ensure_ascii=False, default=str)}\n\n"
                        for e in _events(text)
                        if (not kinds or e.get("kind") in kinds)
                        and (not queues or e.get("queue") in queues or e.get("kind") == "node")
                    )
                    if out:
                        quiet_since = time.monotonic()
                        yield out
        except REDIS_ERRORS as exc:  # the browser reconnects after RETRY_MS
            yield f": Redis did not answer ({type(exc).__name__}); reconnect later\n\n"
        finally:
            self.open -= 1
