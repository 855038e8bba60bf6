"""Middleware: user code around every enqueue (client) and every ``perform`` (server).

Sidekiq's shape: each middleware is ``call(worker, job, queue, next)`` and the
middleware of one side form an ordered chain, the first configured the outermost.

- **Client middleware** runs wherever a job is enqueued (``Client`` and the
  ``enqueue*`` functions, VerkRoot's ``Enqueue``, ``verk-actors enqueue``), before
  anything is written. ``worker`` is the Worker class or class name given, ``job`` the
  job's JSON object as a dict (Sidekiq's job hash) and ``queue`` its queue. It may add
  or change fields of ``job`` and returns ``next()`` to go on; returning None (or not
  calling ``next``) refuses the job: nothing is written and the enqueue returns None.
- **Server middleware** wraps ``perform`` in the worker process. ``worker`` is the
  Worker instance about to run (``worker.job`` is the ``Job``), ``job`` the job's JSON
  object as a dict, ``queue`` the queue it came from; it returns ``next()`` (what
  ``perform`` returned). Whatever it raises fails the try as ``perform`` raising would
  (retry, then dead), under the job's time limit; the worker lives on.

A middleware is a function, or an object or class with a ``call`` method (a class is
made with no arguments). They come from the settings (``client_middleware`` /
``server_middleware``, each ``"module:name"``) and from ``add_client_middleware`` /
``add_server_middleware``: the configured ones first, then the added ones in order.
Server middleware is collected when a worker starts (so add it at import time of a
module in ``imports``, or before the actor system starts); client middleware added
later still runs on the next enqueue.

A worker with no server middleware calls ``perform`` directly: no chain, no cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from verk_actors.errors import ConfigurationError, InvalidJobError, MalformedJobError
from verk_actors.jobs.chain import Middleware, invoke
from verk_actors.jobs.hooks import import_handler
from verk_actors.jobs.job import Job, decode_job, dumps

M = TypeVar("M")

_client_middleware: list[Middleware] = []
_server_middleware: list[Middleware] = []


def add_client_middleware(middleware: M) -> M:
    """Run ``middleware`` (a function, or an object or class with ``call``) on every
    enqueue from this process, after the configured ones; usable as a decorator."""
    _client_middleware.append(as_middleware(middleware))
    return middleware


def add_server_middleware(middleware: M) -> M:
    """Run ``middleware`` around every ``perform`` in this process (and the worker
    processes forked from it), after the configured ones; usable as a decorator."""
    _server_middleware.append(as_middleware(middleware))
    return middleware


def as_middleware(found: object, spec: str | None = None) -> Middleware:
    """The ``call`` of a middleware given as a function, an object with ``call``, or a
    class with ``call`` (made with no arguments); else ConfigurationError."""
    shown = spec or repr(found)
    if isinstance(found, type):
        try:
            found = found()
        except Exception as exc:
            raise ConfigurationError(
                f"middleware {shown}: cannot make it with no arguments ({type(exc).__name__}: "
                f"{exc}); give it defaults, or register an instance"
            ) from None
    call = getattr(found, "call", None)
    if callable(call):
        return call  # type: ignore[no-any-return]
    if callable(found):
        return found
    raise ConfigurationError(
        f"middleware {shown} is a {type(found).__name__}: write a function "
        "call(worker, job, queue, next) or a class with such a call method"
    )


def import_middleware(specs: Iterable[str]) -> list[Middleware]:
    """The middleware the ``module:name`` specs name, in order (ConfigurationError if
    one does not import or is no middleware)."""
    return [as_middleware(import_handler(spec), spec) for spec in specs]


class ClientChain:
    """The client middleware of one enqueuer: its configured ones, then the added ones
    (read at each enqueue)."""

    def __init__(self, specs: Iterable[str] = ()) -> None:
        self.configured = import_middleware(specs)

    def entries(self) -> list[Middleware]:
        """The chain as it stands now (empty: nothing to run)."""
        if not _client_middleware:
            return self.configured
        return [*self.configured, *_client_middleware]

    def run(self, worker: Any, job: dict[str, Any], queue: str) -> dict[str, Any] | None:
        """``job`` (a job's JSON object) as the chain leaves it, or None if a middleware
        refused it."""
        chain = self.entries()
        if not chain:
            return job
        result = invoke(chain, worker, job, queue, lambda: job)
        return result if isinstance(result, dict) else None


def server_chain(specs: Iterable[str] = ()) -> tuple[Middleware, ...] | None:
    """The server middleware of a worker process (configured, then added); None when
    there is none, so ``perform`` is called directly."""
    chain = (*import_middleware(specs), *_server_middleware)
    return chain or None


def admit(chain: ClientChain, worker: Any, job: Job) -> Job | None:
    """``job`` as the client middleware leave it (itself when there are none), or None
    when one refused it; InvalidJobError when one left it no longer a job."""
    entries = chain.entries()
    if not entries:
        return job
    data = job.to_dict()
    result = invoke(entries, worker, data, job.queue or "default", lambda: data)
    if not isinstance(result, dict):
        return None
    try:
        return decode_job(dumps(result))
    except (MalformedJobError, TypeError, ValueError) as exc:
        raise InvalidJobError(
            f"client middleware left job {job.jid} unwritable: {exc}; a middleware may add "
            "JSON fields and must keep class and args"
        ) from exc
