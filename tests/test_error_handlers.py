"""Error handlers, death handlers and ``retries_exhausted``, run by real nodes."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import wait_for
from verk_actors import Client, ConfigurationError, QueueSpec, Settings
from verk_actors.jobs import hooks

IMPORTS = ("tests.jobs", "tests.obs_jobs")


def test_error_handler_sees_every_failed_try_with_its_context(start_verk, redis_server, r) -> None:
    """Each failed try reaches the error handler with jid, class, queue, args, retry count
    and fate; the last try's fate is dead, and retries_exhausted runs once."""
    node = start_verk(imports=IMPORTS, error_handlers=("tests.obs_jobs:record_error",))
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("Flaky", redis_server.url, "tries")
    wait_for(lambda: r.llen("errors") == 1)
    first = json.loads(r.lindex("errors", 0))
    assert first == {
        "error": "ValueError",
        "message": "flaky tries",
        "jid": jid,
        "class": "Flaky",
        "queue": "default",
        "args": [redis_server.url, "tries"],
        "retry_count": 0,
        "fate": "retry",
    }
    # Make the retry due now rather than in ~20 s.
    wait_for(lambda: r.zcard("retry") == 1)
    (entry,) = r.zrange("retry", 0, -1)
    r.zadd("retry", {entry: time.time()})
    wait_for(lambda: r.llen("errors") == 2 and r.zcard("dead") == 1)
    second = json.loads(r.lindex("errors", 1))
    assert (second["jid"], second["retry_count"], second["fate"]) == (jid, 1, "dead")
    wait_for(lambda: r.llen("exhausted") == 1)
    assert json.loads(r.lindex("exhausted", 0)) == [jid, 2, "ValueError"]
    assert r.lrange("added_deaths", 0, -1) == [jid.encode()]
    time.sleep(0.3)
    assert r.llen("exhausted") == 1 and r.llen("errors") == 2
    node.stop()


def test_raising_and_hanging_handlers_change_nothing(start_verk, redis_server, r) -> None:
    """A handler that raises and one that hangs leave the outcome as it was (retry, then
    dead) and the worker alive: it runs the next jobs."""
    node = start_verk(
        imports=IMPORTS,
        queues=(QueueSpec("default", 1),),
        error_handlers=("tests.obs_jobs:raising_handler", "tests.obs_jobs:hanging_handler"),
        death_handlers=("tests.obs_jobs:hanging_death",),
    )
    pid = wait_for(lambda: _worker_pids(node))
    with Client(url=redis_server.url) as client:
        jid = client.enqueue("Flaky", redis_server.url, "tries")
        client.enqueue("Record", redis_server.url, "after", "a")
    wait_for(lambda: r.zcard("retry") == 1, timeout=15)
    assert r.lrange("raised", 0, -1) == [jid.encode()]
    assert r.lrange("hung", 0, -1) == [jid.encode()]
    (entry,) = r.zrange("retry", 0, -1)
    assert json.loads(entry)["retry_count"] == 1
    wait_for(lambda: r.llen("after") == 1, timeout=15)
    r.zadd("retry", {entry: time.time()})
    wait_for(lambda: r.zcard("dead") == 1, timeout=15)
    wait_for(lambda: r.llen("deaths") == 1, timeout=15)
    with Client(url=redis_server.url) as client:
        client.enqueue("Record", redis_server.url, "after", "b")
    wait_for(lambda: r.llen("after") == 2, timeout=20)
    assert r.llen("hung") == 2 and r.zcard("retry") == 0
    assert _worker_pids(node) == pid  # the same worker process throughout
    node.stop()


def _worker_pids(node) -> set[int]:
    from tests.conftest import ask_for
    from verk_actors.actors.messages import DescribeTree, TreeNode

    tree = ask_for(node.asys, node.root, DescribeTree(1), TreeNode)
    pids = set()

    def walk(entry: TreeNode) -> None:
        if entry.kind == "WorkerActor" and entry.pid is not None:
            pids.add(entry.pid)
        for child in entry.children:
            walk(child)

    walk(tree)
    return pids


def test_handler_settings_are_checked() -> None:
    """A handler that is not module:function is refused, saying what to write."""
    with pytest.raises(ConfigurationError, match="module:function"):
        Settings(error_handlers=("myapp.errors.report",))
    with pytest.raises(ConfigurationError, match="cannot import handler"):
        hooks.import_handler("tests.obs_jobs:nothing_here")
    assert Settings.from_env({"VERK_DEATH_HANDLERS": "a:b, c.d:e"}).death_handlers == (
        "a:b",
        "c.d:e",
    )


def test_handler_added_before_the_system_starts_reaches_the_workers(redis_server, r) -> None:
    """add_error_handler called in the launcher before start_actor_system is inherited by
    the worker processes (forked from it)."""
    from tests.conftest import node_settings
    from tests.obs_jobs import launcher_handler
    from verk_actors import add_error_handler, start_actor_system, start_node, stop_node

    add_error_handler(launcher_handler)
    try:
        asys = start_actor_system(log_level="WARNING")
    finally:
        hooks._error_handlers.remove(launcher_handler)  # this process's own list only
    try:
        settings = node_settings(redis_server.url, imports=IMPORTS)
        root, _ = start_node(asys, settings)
        with Client(url=redis_server.url) as client:
            jid = client.enqueue("Flaky", redis_server.url, "tries")
        wait_for(lambda: r.llen("launcher_errors") == 1)
        assert r.lrange("launcher_errors", 0, -1) == [jid.encode()]
        stop_node(asys, root, settings)
    finally:
        asys.shutdown()
