"""The data of every page, as JSON-ready dicts: the HTML pages render these, and the
``/api/...`` routes return them as they are, so both always show the same thing.

Nothing here speaks Redis itself: it calls the operations API (``store/admin``), as the
CLI does. Job data is untrusted: it is returned as data (escaped by the templates),
and in lists long values are clipped (``CLIP`` characters); a job's own page has it all.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from typing import Any

import attrs

from verk_actors.config.redis_url import redact_url
from verk_actors.jobs.stored_job import StoredJob
from verk_actors.store.admin.job_sets import JobSet, SetEntry
from verk_actors.store.admin.nodes import list_nodes
from verk_actors.store.admin.processes import Work, list_processes, running_work
from verk_actors.store.admin.queues import Queue
from verk_actors.store.admin.server import server_info
from verk_actors.store.admin.set_search import SetFilter, search_page
from verk_actors.store.admin.stats import history, queue_stats, totals
from verk_actors.store.connection import Connection

CLIP = 200
"""Characters of an argument list or message shown in a list."""

SETS = {"retries": "retry", "scheduled": "schedule", "dead": "dead"}
"""Page name -> job set name."""

HISTORY_DAYS = (7, 30, 90)
MAX_LIMIT = 500


def clip(text: str, width: int = CLIP) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


ROW_FIELDS = (
    "jid",
    "malformed",
    "class",
    "queue",
    "args",
    "retry_count",
    "enqueued_at",
    "failed_at",
    "error_class",
    "error_message",
    "error",
)
"""The fields of a job in a list (None where it has none)."""


def job_row(stored: StoredJob) -> dict[str, Any]:
    """One job in a list: its main fields, long values clipped."""
    job = stored.job
    row: dict[str, Any] = dict.fromkeys(ROW_FIELDS)
    if job is None:
        row.update(
            jid=stored.jid, malformed=True, args=clip(stored.text), error=clip(stored.error or "")
        )
        return row
    return {
        **row,
        "jid": job.jid,
        "malformed": False,
        "class": clip(job.class_name, 120),
        "queue": job.queue,
        "args": clip(_json_text(job.args)),
        "retry_count": job.retry_count,
        "enqueued_at": job.enqueued_at,
        "failed_at": job.failed_at,
        "error_class": clip(job.error_class, 120) if job.error_class else None,
        "error_message": clip(job.error_message) if job.error_message else None,
    }


def entry_key(entry: SetEntry) -> str:
    """What names one member in a URL or a form: ``<score>:<jid>`` (a lookup by score
    is cheap, a jid alone needs a scan)."""
    return f"{entry.score!r}:{entry.jid or ''}"


def parse_key(key: str) -> tuple[float, str | None] | None:
    """The score and jid of an ``entry_key``; None if it is not one."""
    score, sep, jid = key.partition(":")
    try:
        value = float(score)
    except ValueError:
        return None
    return (value, jid or None) if sep else None


def entry_row(entry: SetEntry) -> dict[str, Any]:
    """One member of a set in a list."""
    return {"key": entry_key(entry), "score": entry.score, **job_row(entry.stored)}


def redis_view(client: Connection, url: str) -> dict[str, Any]:
    """The server: its URL without the password, version, memory, clients."""
    return {"url": redact_url(url), **server_info(client).to_dict()}


def dashboard(client: Connection, url: str, days: int = 7) -> dict[str, Any]:
    """Totals, history of ``days`` days (oldest first), queues, nodes, the server."""
    now = time.time()
    return {
        "at": now,
        "days": days,
        "totals": attrs.asdict(totals(client)),
        "history": [attrs.asdict(d) for d in reversed(history(client, days))],
        "queues": [attrs.asdict(q) for q in queue_stats(client, now=now)],
        "nodes": [n.to_dict() for n in list_nodes(client)],
        "processes": len(list_processes(client)),
        "redis": redis_view(client, url),
    }


def stats(client: Connection) -> dict[str, Any]:
    """The live figures the dashboard polls: totals, read now."""
    return {"at": time.time(), "totals": attrs.asdict(totals(client))}


def _work_row(work: Work, now: float) -> dict[str, Any]:
    row = job_row(work.stored) if work.stored is not None else {"class": None, "args": ""}
    return {
        **row,
        "process": work.identity,
        "thread": work.thread,
        "queue": work.queue or row.get("queue"),
        "run_at": work.run_at,
        "runtime": max(now - work.run_at, 0.0) if work.run_at is not None else None,
    }


def busy(client: Connection) -> dict[str, Any]:
    """Every process (our nodes and Sidekiq's), our nodes as they describe themselves,
    and every job running now."""
    now = time.time()
    processes = list_processes(client)
    works = running_work(client, [p.identity for p in processes])
    return {
        "at": now,
        "processes": [p.to_dict() for p in processes],
        "nodes": [n.to_dict() for n in list_nodes(client)],
        "running": [_work_row(w, now) for w in works],
    }


def queues(client: Connection) -> dict[str, Any]:
    """Every queue: size, latency, in progress, counters, paused."""
    return {"at": time.time(), "queues": [attrs.asdict(q) for q in queue_stats(client)]}


def queue_page(client: Connection, name: str, offset: int, limit: int) -> dict[str, Any]:
    """One queue's figures and a page of its pending jobs, next to run first."""
    queue = Queue(client, name)
    [figures] = queue_stats(client, [queue.name])
    jobs = queue.peek(offset, min(limit, MAX_LIMIT))
    return {
        "queue": attrs.asdict(figures),
        "offset": offset,
        "limit": limit,
        "total": figures.size,
        "jobs": [job_row(s) for s in jobs],
    }


def set_page(
    client: Connection,
    page: str,
    where: SetFilter,
    *,
    offset: int,
    limit: int,
    newest_first: bool | None,
) -> dict[str, Any]:
    """A page of a job set, filtered (a capped search), sorted by time."""
    job_set = JobSet(client, SETS[page])
    found = search_page(
        job_set, where, offset=offset, limit=min(limit, MAX_LIMIT), newest_first=newest_first
    )
    return {
        "set": job_set.name,
        "offset": offset,
        "limit": limit,
        "newest_first": (job_set.name == "dead") if newest_first is None else newest_first,
        "filter": attrs.asdict(where),
        **found.to_dict(),
        "entries": [entry_row(e) for e in found.entries],
    }


def backtrace(value: Any) -> list[str] | None:
    """A job's ``error_backtrace`` as lines: a list as it is, or Sidekiq's compressed
    form (Base64 of zlib of a JSON list) unpacked; any other text as one line."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [str(line) for line in value]
    text = str(value)
    try:
        lines = json.loads(zlib.decompress(base64.b64decode(text, validate=True)))
    except (ValueError, zlib.error):
        return [text]
    return [str(line) for line in lines] if isinstance(lines, list) else [text]


def job_detail(stored: StoredJob) -> dict[str, Any]:
    """Every field of a job, in its stored order, and its raw text when malformed."""
    fields = stored.fields()
    return {
        "jid": stored.jid,
        "fields": fields,
        "backtrace": backtrace(fields.get("error_backtrace")) if fields else None,
        "raw": None if stored.job is not None else stored.text,
        "error": stored.error,
    }


def set_entry_detail(page: str, entry: SetEntry) -> dict[str, Any]:
    """A member of a set on its own page."""
    return {
        "set": entry.set_name,
        "page": page,
        "key": entry_key(entry),
        "score": entry.score,
        **job_detail(entry.stored),
    }
