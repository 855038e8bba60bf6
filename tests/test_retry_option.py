"""A worker's own ``retry`` option bounds its jobs, however they were enqueued."""

from __future__ import annotations

import json
import time

from tests.conftest import wait_for
from tests.jobs import FailTwice
from verk_actors import Client
from verk_actors.jobs.job import dumps, new_jid
from verk_actors.store import keys


def _dead(r) -> dict[str, dict]:
    return {json.loads(t)["jid"]: json.loads(t) for t in r.zrange("dead", 0, -1)}


def test_worker_retry_option_bounds_jobs_by_class_by_name_and_raw(
    start_verk, redis_server, r
) -> None:
    """FailTwice (retry = 2) runs 3 times whether enqueued by class, by name or as raw JSON."""
    url = redis_server.url
    node = start_verk()
    raw_jid = new_jid()
    with Client(url=url) as client:
        by_class = client.enqueue(FailTwice, url, "attempts:class", "c")
        by_name = client.enqueue("FailTwice", url, "attempts:name", "n")
    raw = {
        "class": "FailTwice",
        "args": [url, "attempts:raw", "r"],
        "jid": raw_jid,
        "queue": "default",
    }
    r.lpush(keys.queue_key("default"), dumps(raw))  # another client's job: no retry field
    wait_for(lambda: r.zcard("dead") == 3, timeout=30)
    dead = _dead(r)
    for jid, key in ((by_class, "class"), (by_name, "name"), (raw_jid, "raw")):
        assert dead[jid]["retry_count"] == 3, key
        assert r.llen(f"attempts:{key}") == 3, key
    assert dead[by_class]["retry"] == 2
    assert "retry" not in dead[by_name] and "retry" not in dead[raw_jid]
    time.sleep(0.5)  # nothing runs a fourth time
    assert [r.llen(f"attempts:{k}") for k in ("class", "name", "raw")] == [3, 3, 3]
    node.stop()


def test_worker_retry_option_bounds_a_job_whose_worker_dies(start_verk, redis_server, r) -> None:
    """A job without retry whose worker dies each time is dead after its worker's 1 retry."""
    url = redis_server.url
    node = start_verk()
    with Client(url=url) as client:
        jid = client.enqueue("CrashOnceRetried", url, "crashes", "x")
    wait_for(lambda: r.zcard("retry") == 1)
    [text] = r.zrange("retry", 0, -1)
    r.zadd("retry", {text: 0}, xx=True)  # due now, not in 16-46 s
    wait_for(lambda: r.zcard("dead") == 1)
    job = _dead(r)[jid]
    assert (job["error_class"], job["retry_count"]) == ("WorkerDiedError", 2)
    assert r.llen("crashes") == 2
    node.stop()
