"""Bad job texts in Redis never run anything and never stop the queue."""

from __future__ import annotations

import json
import os
import tempfile

from tests.conftest import wait_for
from tests.nodeproc import NodeProcess
from verk_actors import Client
from verk_actors.store.admin.job_sets import JobSet


def test_malformed_and_unknown_jobs_are_parked_and_the_queue_goes_on(
    start_verk, redis_server, r
) -> None:
    """Invalid JSON, non-objects and missing class go to dead; unknown classes to retry."""
    marker = os.path.join(tempfile.mkdtemp(), "pwned")
    texts = [
        b"this is not json",
        b"[1, 2, 3]",
        b'{"args": [1], "queue": "default", "jid": "noclass"}',
        json.dumps({"class": "os.system", "args": [f"touch {marker}"], "jid": "sys"}).encode(),
        json.dumps(
            {"class": "builtins.eval", "args": [f"open({marker!r}, 'w')"], "jid": "ev"}
        ).encode(),
        json.dumps({"class": "NoSuchWorker", "args": [], "jid": "nosuch", "retry": True}).encode(),
        json.dumps({"class": "Record", "args": {"not": "a list"}, "jid": "badargs"}).encode(),
    ]
    for text in texts:
        r.lpush("queue:default", text)
    node = start_verk()
    with Client(url=redis_server.url) as client:
        client.enqueue("Record", redis_server.url, "after", "ok")
    wait_for(lambda: r.llen("after") == 1)
    wait_for(lambda: r.zcard("dead") == 4 and r.zcard("retry") == 3)
    assert not os.path.exists(marker)

    dead = [json.loads(t) for t in r.zrange("dead", 0, -1)]
    wrapped = sorted(d["args"][0] for d in dead if d.get("class") == "verk_actors.MalformedJob")
    assert wrapped == ["[1, 2, 3]", "this is not json"]
    messages = {d.get("jid"): d["error_message"] for d in dead}
    assert "not valid JSON" in " ".join(messages.values())
    assert "not an object" in " ".join(messages.values())
    assert 'no "class"' in messages["noclass"]
    assert "not an array" in messages["badargs"]
    assert all(d["error_class"] == "MalformedJobError" for d in dead)

    retried = {json.loads(t)["jid"]: json.loads(t) for t in r.zrange("retry", 0, -1)}
    assert set(retried) == {"sys", "ev", "nosuch"}
    for job in retried.values():
        assert job["error_class"] == "UnknownWorkerError"
        assert "no registered worker" in job["error_message"]
    wait_for(lambda: not r.exists(f"inprogress:default:{node.node_id}"))
    node.stop()


def test_malformed_jobs_are_logged_by_jid_and_bytes_kept_exactly(redis_server, r) -> None:
    """A malformed job's log line names its jid and class; a non-UTF-8 one stays byte-exact."""
    not_utf8 = b'{"class": "Record", "args": ["caf\xe9 \xff"], "jid": "latin1"}'
    bad_args = json.dumps({"class": "Record", "args": {"a": 1}, "jid": "badargs"}).encode()
    not_utf8_nor_json = b"\xfe\xff garbage \x80"
    for text in (not_utf8, bad_args, not_utf8_nor_json):
        r.lpush("queue:default", text)
    node = NodeProcess("--redis-url", redis_server.url, "--queue", "default=2").start()
    try:
        wait_for(lambda: r.zcard("dead") == 3)
        node.wait_for_line("job latin1 (Record) failed: MalformedJobError: job text is not UTF-8")
        node.wait_for_line("job badargs (Record) failed: MalformedJobError")
        node.wait_for_line("job None (None) failed: MalformedJobError: job text is not UTF-8")
    finally:
        assert node.terminate() == 0
    dead = r.zrange("dead", 0, -1)
    assert not_utf8 in dead and not_utf8_nor_json in dead
    entries = {e.stored.raw: e for e in JobSet(r, "dead").scan()}
    assert "not UTF-8" in (entries[not_utf8].stored.error or "")
    assert entries[not_utf8].jid == "latin1"
