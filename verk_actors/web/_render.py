"""Templates, their filters, and reading a page's query: offset, limit, sort, filters.

Jinja2 escapes everything (``autoescape=True``): job data is shown as text, never as
markup, and JSON goes into a page only through ``tojson``.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from verk_actors.store.admin.set_search import SetFilter

HERE = Path(__file__).parent
DEFAULT_LIMIT = 25
LIMITS = (10, 25, 50, 100, 500)


def _number(ts: Any) -> float | None:
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return None
    return float(ts)


def utc(ts: Any) -> str:
    """A unix time as ``2024-05-01 12:00:00 UTC``; the value itself if not a time."""
    value = _number(ts)
    if value is None:
        return "" if ts is None else str(ts)
    try:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def duration(seconds: Any) -> str:
    """``2h 5m``, ``3m 2s``, ``4.2s``."""
    value = _number(seconds)
    if value is None:
        return ""
    value = abs(value)
    if value < 60:
        return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    return f"{hours // 24}d {hours % 24}h"


def ago(ts: Any) -> str:
    """How long before (or after) now ``ts`` is: ``5m 2s ago``, ``in 3m 0s``."""
    value = _number(ts)
    if value is None:
        return ""
    delta = time.time() - value
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(delta)}"


def number(value: Any) -> str:
    """``1,234,567``."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def kilobytes(value: Any) -> str:
    """A size in KB as ``12.3 MB``."""
    if not isinstance(value, int) or isinstance(value, bool):
        return ""
    return f"{value / 1024:.1f} MB" if value >= 1024 else f"{value} KB"


def pretty(value: Any) -> str:
    """A JSON value as indented text (escaped by the template like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def environment() -> jinja2.Environment:
    """The templates, with autoescape on for every one of them."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pretty=pretty, utc=utc, duration=duration, ago=ago, number=number, kb=kilobytes
    )
    return env


def base_path(request: Request) -> str:
    """Where the app is mounted (``""`` at the root): links are made below it."""
    root: str = request.scope.get("root_path") or ""
    return root.rstrip("/")


def render(
    env: jinja2.Environment,
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    read_only: bool,
    status_code: int = 200,
) -> HTMLResponse:
    """The page ``name`` with the data ``context``."""
    page = env.get_template(name).render(
        base=base_path(request),
        csrf=request.state.csrf,
        read_only=read_only,
        msg=request.query_params.get("msg"),
        path=request.url.path,
        query=dict(request.query_params),
        qs=request.url.query,
        **context,
    )
    return HTMLResponse(page, status_code=status_code)


def int_param(request: Request, name: str, default: int, least: int, most: int) -> int:
    """A whole-number query parameter, clamped; the default if absent or not a number."""
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        return default
    return max(least, min(most, value))


def paging(request: Request) -> tuple[int, int]:
    """``offset`` and ``limit`` of a list page."""
    return (
        int_param(request, "offset", 0, 0, 10**12),
        int_param(request, "limit", DEFAULT_LIMIT, 1, LIMITS[-1]),
    )


def sort_param(request: Request) -> bool | None:
    """``sort=desc`` (newest first), ``asc``, or absent (the set's own order)."""
    sort = request.query_params.get("sort")
    return {"desc": True, "asc": False}.get(sort or "")


def set_filter(request: Request) -> SetFilter:
    """The filters of a set page: ``class``, ``queue``, ``error_class``, ``q``."""
    params = request.query_params

    def get(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value[:1000] or None

    return SetFilter(
        class_name=get("class"), queue=get("queue"), error_class=get("error_class"), text=get("q")
    )
