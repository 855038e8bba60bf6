"""OpenTelemetry tracing of jobs, as client and server middleware.

- enqueueing a job opens a **producer** span (``<class> publish``) and writes its W3C
  ``traceparent`` (and ``tracestate``, when there is one) into the job's JSON, as
  extra fields, which Sidekiq and Verk ignore;
- running it opens a **consumer** span (``<class> process``) whose parent is that
  producer span, in whichever process or node runs it; an exception ``perform`` raises
  is recorded on it and marks it failed.

Turn it on with one call (in the launcher or a module of ``imports``)::

    import verk_actors.integrations.otel
    verk_actors.integrations.otel.enable()

or in the settings: ``client_middleware = ["verk_actors.integrations.otel:client_middleware"]``
and ``server_middleware = ["verk_actors.integrations.otel:server_middleware"]``. Spans
go to the global tracer provider (set one up with an exporter, as for any
OpenTelemetry instrumentation). Needs ``pip install 'verk_actors[otel]'``.
"""

from __future__ import annotations

from typing import Any

from verk_actors.errors import ConfigurationError
from verk_actors.jobs.chain import Next
from verk_actors.jobs.middleware import add_client_middleware, add_server_middleware

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind
except ImportError:  # pragma: no cover - the extra is not installed
    trace = None  # type: ignore[assignment]

MISSING = "OpenTelemetry tracing needs it installed: pip install 'verk_actors[otel]'"
FIELDS = ("traceparent", "tracestate")
"""The job fields that carry the trace context (W3C Trace Context)."""

_added: list[bool] = []


def enable() -> None:
    """Trace every enqueue and every perform of this process (and the worker processes
    forked from it); calling it again adds nothing."""
    if trace is None:
        raise ConfigurationError(MISSING)
    if not _added:
        _added.append(True)
        add_client_middleware(client_middleware)
        add_server_middleware(server_middleware)


def _attributes(job: dict[str, Any], queue: str, operation: str) -> dict[str, Any]:
    return {
        "messaging.system": "sidekiq",
        "messaging.operation.type": operation,
        "messaging.destination.name": queue,
        "messaging.message.id": str(job.get("jid") or ""),
        "code.namespace": str(job.get("class") or ""),
    }


def client_middleware(worker: Any, job: dict[str, Any], queue: str, call_next: Next) -> Any:
    """Client middleware: a producer span around the enqueue; its context in the job."""
    if trace is None:
        raise ConfigurationError(MISSING)
    tracer = trace.get_tracer(__name__)
    name = f"{job.get('class')} publish"
    with tracer.start_as_current_span(
        name, kind=SpanKind.PRODUCER, attributes=_attributes(job, queue, "publish")
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        for field in FIELDS:
            if carrier.get(field):
                job[field] = carrier[field]
        return call_next()


def server_middleware(worker: Any, job: dict[str, Any], queue: str, call_next: Next) -> Any:
    """Server middleware: a consumer span around ``perform``, the child of the span
    that enqueued the job (when its ``traceparent`` is there)."""
    if trace is None:
        raise ConfigurationError(MISSING)
    carrier = {field: job[field] for field in FIELDS if isinstance(job.get(field), str)}
    parent = propagate.extract(carrier) if carrier else None
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span(
        f"{job.get('class')} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=_attributes(job, queue, "process"),
    ):
        return call_next()
