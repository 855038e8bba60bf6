"""Middleware of the middleware tests (imported by nodes as ``tests.mw_jobs``).

The jobs' first argument is the test Redis's URL; the middleware note what they see
on the list ``mw_order`` there, so the tests read what ran in the worker processes.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tests.jobs import client

NOT_MIDDLEWARE = "a string"


def tag_tenant(worker: Any, job: dict[str, Any], queue: str, call_next: Any) -> Any:
    """Client middleware: adds the field ``tenant`` to every job."""
    job["tenant"] = "acme"
    return call_next()


def refuse_marked(worker: Any, job: dict[str, Any], queue: str, call_next: Any) -> Any:
    """Client middleware: refuses a job whose last argument is ``"refuse"``, raises for
    one whose last argument is ``"boom"``."""
    if job["args"] and job["args"][-1] == "refuse":
        return None
    if job["args"] and job["args"][-1] == "boom":
        raise RuntimeError("client middleware broke")
    return call_next()


def route_mail(worker: Any, job: dict[str, Any], queue: str, call_next: Any) -> Any:
    """Client middleware: moves a job whose last argument is ``"mail"`` to queue mail."""
    if job["args"] and job["args"][-1] == "mail":
        job["queue"] = "mail"
    return call_next()


class OuterServer:
    """Server middleware (a class with ``call``): notes before and after ``perform``,
    with the pid and the job's ``tenant`` field."""

    def call(self, worker: Any, job: dict[str, Any], queue: str, call_next: Any) -> Any:
        url = job["args"][0]
        seen = {"tenant": job.get("tenant"), "queue": queue, "pid": os.getpid()}
        client(url).rpush("mw_order", "outer-before", json.dumps(seen))
        try:
            return call_next()
        finally:
            client(url).rpush("mw_order", "outer-after")


def inner_server(worker: Any, job: dict[str, Any], queue: str, call_next: Any) -> Any:
    """Server middleware: raises for a job whose last argument is ``"explode"``, else
    notes before and after ``perform`` and checks ``worker.job`` is the job."""
    url = job["args"][0]
    if job["args"][-1] == "explode":
        raise RuntimeError("inner middleware exploded")
    assert worker.job.jid == job["jid"]
    client(url).rpush("mw_order", "inner-before")
    result = call_next()
    client(url).rpush("mw_order", "inner-after")
    return result
