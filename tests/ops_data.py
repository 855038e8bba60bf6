"""Job texts for the Redis-side operations tests, written as other tools write them."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from verk_actors.jobs.job import new_jid


def job_text(**fields: Any) -> str:
    """A job JSON text with Sidekiq's fields; ``fields`` override or add (None drops one)."""
    data: dict[str, Any] = {
        "class": "HardWorker",
        "args": [1, "two"],
        "jid": new_jid(),
        "queue": "default",
        "retry": True,
        "created_at": time.time() - 100,
    }
    data.update(fields)
    return json.dumps({k: v for k, v in data.items() if v is not None})


def add_to_set(r: redis.Redis, key: str, score: float, **fields: Any) -> tuple[str, str]:
    """ZADD a job to ``key``; returns (jid, text)."""
    text = job_text(**fields)
    r.zadd(key, {text: score})
    return json.loads(text)["jid"], text


def failed_fields(count: int, **fields: Any) -> dict[str, Any]:
    """The fields a job has after ``count`` failures."""
    now = time.time()
    return {
        "retry_count": count,
        "error_class": "RuntimeError",
        "error_message": "boom",
        "failed_at": now - 600,
        "retried_at": now - 60,
        "error_backtrace": ["app.py:10:in perform"],
        **fields,
    }
