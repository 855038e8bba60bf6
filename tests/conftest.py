"""Shared fixtures: private Redis servers, private actor systems, nodes, leftover checks.

The test process becomes a child subreaper, so every process a test starts (the
Thespian admin daemonizes, actors fork from it) stays its descendant; after each
test, whatever the test started must be gone, or the test fails (and we kill it).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import redis

from tests.nodeproc import NodeProcess
from tests.servers import RedisServer, descendants
from verk_actors.actors.system import start_actor_system, start_node, stop_node
from verk_actors.config.settings import QueueSpec, Settings

PR_SET_CHILD_SUBREAPER = 36
LEFTOVER_GRACE = 10.0
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    os.environ.setdefault(
        "THESPLOG_FILE", os.path.join(tempfile.gettempdir(), f"thespian-tests-{os.getpid()}.log")
    )


def _reap_zombies() -> None:
    for pid, (ppid, state, _) in descendants().items():
        if state == "Z" and ppid == os.getpid():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Fail a test that leaves processes (actors, admins, servers) behind."""
    _reap_zombies()
    before = set(descendants())
    yield
    deadline = time.monotonic() + LEFTOVER_GRACE
    while True:
        _reap_zombies()
        left = {p: v for p, v in descendants().items() if p not in before and v[1] != "Z"}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if left:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap_zombies()
        described = "\n".join(f"  pid {p}: {v[2]}" for p, v in sorted(left.items()))
        pytest.fail(f"the test left {len(left)} processes behind:\n{described}")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private Redis server on a free port, stopped after the test."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the test's private Redis server."""
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture
def asys() -> Iterator[Any]:
    """A private multiprocTCPBase actor system on a free admin port."""
    system = start_actor_system(log_level="WARNING")
    yield system
    system.shutdown()


@attrs.define
class Node:
    """A VerkRoot running in a test's actor system."""

    asys: Any
    root: Any
    node_id: str
    settings: Settings

    def stop(self) -> Any:
        return stop_node(self.asys, self.root, self.settings)


def node_settings(url: str, **overrides: Any) -> Settings:
    """Settings for a test node: the test workers, fast polls, short timeouts."""
    values: dict[str, Any] = {
        "redis_url": url,
        "queues": (QueueSpec("default", 5),),
        "imports": ("tests.jobs",),
        "poll_interval": 0.2,
        "shutdown_timeout": 5.0,
        "heartbeat_interval": 1.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def start_verk(asys: Any, redis_server: RedisServer) -> Callable[..., Node]:
    """Start a node on the test's Redis and actor system: ``start_verk(queues=...)``."""

    def start(**overrides: Any) -> Node:
        settings = node_settings(redis_server.url, **overrides)
        root, started = start_node(asys, settings)
        return Node(asys, root, started.node_id, settings)

    return start


@pytest.fixture
def node_processes() -> Iterator[list[NodeProcess]]:
    """``NodeProcess``es a test started (it appends them); any still running at the end
    is killed with everything it started."""
    started: list[NodeProcess] = []
    yield started
    for node in started:
        node.kill_if_running()


@pytest.fixture
def run_node(
    redis_server: RedisServer, node_processes: list[NodeProcess]
) -> Callable[..., NodeProcess]:
    """Start ``verk-actors start`` on the test's Redis and wait until it runs:
    ``run_node(node_id, *args, env=None)``; killed at the end if it still runs."""

    def start(node_id: str, *args: str, env: dict[str, str] | None = None) -> NodeProcess:
        node = NodeProcess("--redis-url", redis_server.url, "--node-id", node_id, *args, env=env)
        node_processes.append(node)
        return node.start()

    return start


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, every: float = 0.02) -> Any:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s: {predicate.__doc__ or predicate}")
        time.sleep(every)


def no_standby_waiting(r: redis.Redis) -> bool:
    """No worker of a node waits on a queue itself (no standby's BLMOVE is out)."""
    return not [c for c in r.client_list() if c["name"].endswith(":wait") and c["cmd"] == "blmove"]


def ask_for(asys: Any, address: Any, message: Any, kind: type, timeout: float = 10.0) -> Any:
    """Ask ``address`` and return the first reply of type ``kind`` (stale replies skipped)."""
    deadline = time.monotonic() + timeout
    reply = asys.ask(address, message, timeout)
    while not isinstance(reply, kind):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(
                f"no {kind.__name__} reply to {message!r} within {timeout} s (last: {reply!r})"
            )
        reply = asys.listen(left)
    return reply
