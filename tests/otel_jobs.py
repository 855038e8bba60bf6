"""Tracing in a node's worker processes (imported by nodes as ``tests.otel_jobs``): an
SDK tracer provider with the in-memory exporter, and a job that reports the spans it
holds to the test's Redis."""

from __future__ import annotations

import json
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.jobs import client
from verk_actors import Worker

_exporters: list[InMemorySpanExporter] = []


def exporter() -> InMemorySpanExporter:
    """This process's in-memory exporter, set up (with the global provider) once."""
    if not _exporters:
        found = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(found))
        trace.set_tracer_provider(provider)
        _exporters.append(found)
    return _exporters[0]


def span_record(span) -> dict:
    """What a test needs of a finished span."""
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": span.context.trace_id,
        "span_id": span.context.span_id,
        "parent": span.parent.span_id if span.parent is not None else None,
        "pid": os.getpid(),
    }


exporter()


class ReportSpans(Worker):
    """Pushes the spans this worker process has finished onto the list ``spans``."""

    def perform(self, url: str) -> None:
        spans = [span_record(span) for span in exporter().get_finished_spans()]
        client(url).rpush("spans", json.dumps(spans))
