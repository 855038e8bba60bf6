"""Sentry reporting, for real: a node's failed job reaches a local HTTP server that the
test points the DSN at, as an envelope with the exception and the job's tags."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from tests.conftest import wait_for
from verk_actors import Client


class Ingest(BaseHTTPRequestHandler):
    """Takes Sentry envelopes as Sentry's ingest does, keeping each item."""

    items: list[tuple[dict[str, Any], dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # type: ignore[import-not-found]

            body = brotli.decompress(body)
        lines = body.split(b"\n")
        index = 1  # after the envelope header
        while index + 1 < len(lines):
            header = json.loads(lines[index])
            payload = json.loads(lines[index + 1]) if lines[index + 1].strip() else {}
            self.server.items.append((header, payload))  # type: ignore[attr-defined]
            index += 2
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sentry_ingest() -> Iterator[ThreadingHTTPServer]:
    """A local HTTP server taking Sentry envelopes on a free port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    server.items = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _events(server: ThreadingHTTPServer) -> list[dict[str, Any]]:
    items = list(server.items)  # type: ignore[attr-defined]
    return [payload for header, payload in items if header.get("type") == "event"]


def test_failed_job_reaches_sentry_with_its_tags(
    run_node, redis_server, r: redis.Redis, sentry_ingest: ThreadingHTTPServer
) -> None:
    """A job that raises on a real node is reported to the DSN's server: the exception
    type and message, and the tags queue, class, jid, retry_count and fate; an event a
    job sends from inside perform carries its job's tags too."""
    port = sentry_ingest.server_address[1]
    run_node(
        "sentry-node",
        "--import",
        "tests.obs_jobs",
        "--import",
        "tests.sentry_jobs",
        env={"TEST_SENTRY_DSN": f"http://public@127.0.0.1:{port}/1"},
    )
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("Flaky", redis_server.url, "tries")
        note_jid = client.enqueue("SentryNote", "inside perform")

    def reported(jid: str) -> dict[str, Any] | None:
        for event in _events(sentry_ingest):
            if event.get("tags", {}).get("jid") == jid:
                return event
        return None

    note = wait_for(lambda: reported(note_jid), timeout=30)
    text = note.get("message") or note.get("logentry", {}).get("message")
    assert text == "inside perform"
    assert (note["tags"]["class"], note["tags"]["queue"]) == ("SentryNote", "default")
    event = wait_for(lambda: reported(jid), timeout=30)
    (value,) = event["exception"]["values"]
    assert (value["type"], value["value"]) == ("ValueError", "flaky tries")
    assert {k: event["tags"][k] for k in ("queue", "class", "jid", "retry_count", "fate")} == {
        "queue": "default",
        "class": "Flaky",
        "jid": jid,
        "retry_count": "0",
        "fate": "retry",
    }


def test_enable_adds_one_error_handler_and_one_middleware() -> None:
    """enable() installs one error handler and one server middleware however often it
    is called (in a fresh interpreter: the lists are process-wide)."""
    code = (
        "import verk_actors.integrations.sentry as sentry\n"
        "from verk_actors.jobs import hooks\n"
        "sentry.enable(dsn='http://public@127.0.0.1:9/1'); sentry.enable()\n"
        "from verk_actors.jobs import middleware\n"
        "print(hooks._error_handlers == [sentry.report],"
        " middleware._server_middleware == [sentry.job_scope])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
