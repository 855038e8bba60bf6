"""OpenTelemetry: the producer span of an enqueue is the parent of the consumer span
of its perform, across processes, through the job's ``traceparent`` field."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import redis

from tests.conftest import wait_for
from tests.otel_jobs import exporter, span_record
from verk_actors import Client, QueueSpec

OTEL = "verk_actors.integrations.otel"


def test_consumer_span_is_a_child_of_the_producer_span(
    start_verk, redis_server, r: redis.Redis
) -> None:
    """Enqueued here with the client middleware, performed in a worker process with the
    server middleware: one trace, the consumer span's parent is the producer span."""
    finished = exporter()  # this process's provider (the node's processes set their own)
    finished.clear()
    start_verk(
        imports=("tests.jobs", "tests.otel_jobs"),
        queues=(QueueSpec("default", 1),),  # one worker: it runs both jobs
        server_middleware=(f"{OTEL}:server_middleware",),
    )
    url = redis_server.url
    with Client(url=url, middleware=(f"{OTEL}:client_middleware",)) as client:
        client.enqueue_in(3600, "Record", url, "never", "x")
        (stored,) = r.zrange("schedule", 0, -1)
        traceparent = json.loads(stored)["traceparent"]
        jid = client.enqueue("Record", url, "ran", "x")
        wait_for(lambda: r.llen("ran") == 1)
        client.enqueue("ReportSpans", url)  # after Record, on the same worker
    producers = [span_record(s) for s in finished.get_finished_spans()]
    assert [p["kind"] for p in producers] == ["PRODUCER", "PRODUCER", "PRODUCER"]
    assert traceparent.split("-")[2] == f"{producers[0]['span_id']:016x}"
    producer = producers[1]
    assert producer["name"] == "Record publish"
    wait_for(lambda: r.llen("spans") == 1)
    consumers = [s for s in json.loads(r.lindex("spans", 0)) if s["name"] == "Record process"]
    (consumer,) = consumers
    assert consumer["kind"] == "CONSUMER"
    assert consumer["trace_id"] == producer["trace_id"]
    assert consumer["parent"] == producer["span_id"]
    assert consumer["pid"] != os.getpid()
    assert jid is not None


def test_enable_adds_the_two_middleware_once() -> None:
    """enable() adds the client and the server middleware, once however often called
    (in a fresh interpreter: the additions are process-wide)."""
    code = (
        "import verk_actors.integrations.otel as otel\n"
        "from verk_actors.jobs import middleware\n"
        "otel.enable(); otel.enable()\n"
        "print(middleware._client_middleware == [otel.client_middleware],"
        " middleware._server_middleware == [otel.server_middleware])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
