"""Every way ``verk-actors start`` (and ``bench``) can fail while starting ends with a
clear message, the right exit code, no traceback, and no process left behind: no
Thespian admin or logger, no actor, no embedded server.

The test process is a child subreaper (``tests/conftest.py``), so the processes a
launcher starts stay its descendants even when they daemonize or outlive the launcher.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.nodeproc import ROOT
from tests.servers import descendants, free_port
from verk_actors.actors.system import start_actor_system
from verk_actors.errors import ConfigurationError

BROKEN_LOGGER = """
import sys

from verk_actors.actors import system

real = system.log_defs


def broken(*args, **kwargs):
    defs = real(*args, **kwargs)
    defs["handlers"]["out"]["class"] = "no.such.Handler"
    return defs


system.log_defs = broken
from verk_actors.cli import main

sys.exit(main(sys.argv[1:]))
"""
"""A launcher whose actor system's logger cannot be configured: Thespian's admin
daemonizes, its logger dies, and ``ActorSystem()`` gives up after 5 s."""


def _run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("VERK_REDIS_URL", "VERK_CONFIG")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _nothing_left(before: set[int], grace: float = 5.0) -> None:
    """No process started since ``before`` is still running (zombies aside)."""
    deadline = time.monotonic() + grace
    while True:
        left = {
            pid: cmd
            for pid, (_, state, cmd) in descendants().items()
            if pid not in before and state != "Z"
        }
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"left behind: {left}"


@pytest.fixture
def before() -> set[int]:
    return set(descendants())


def _failed(
    result: subprocess.CompletedProcess[str], code: int, *said: str, traceback: bool = False
) -> None:
    print(result.stderr)
    assert result.returncode == code
    assert traceback or "Traceback" not in result.stderr
    for text in said:
        assert text in result.stderr


@pytest.mark.parametrize("command", ["start", "bench"])
def test_a_bad_log_level_is_a_usage_error(tmp_path, before, command) -> None:
    """``--log-level bogus`` is refused as the command line is read: exit 2, the
    levels it takes, nothing started (bench used to leave its Thespian admin running)."""
    result = _run(tmp_path, "-m", "verk_actors", command, "--log-level", "bogus")
    _failed(result, 2, "'bogus' is not a log level", "DEBUG, INFO, WARNING, ERROR, CRITICAL")
    _nothing_left(before)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--jobs", "0"], "--jobs: 0 is less than 1"),
        (["--concurrency", "many"], "--concurrency: 'many' is not a whole number"),
        (["--redis-url", "http://x"], "must start with redis://"),
    ],
)
def test_bench_refuses_bad_input_with_exit_2(tmp_path, before, args, said) -> None:
    """Bad bench options are usage errors, before anything is started."""
    result = _run(tmp_path, "-m", "verk_actors", "bench", *args)
    _failed(result, 2, said)
    _nothing_left(before)


def test_a_module_that_cannot_be_imported(redis_server, tmp_path, before) -> None:
    """An --import that fails: exit 2 naming it, nothing started."""
    result = _run(
        tmp_path, "-m", "verk_actors", "start", "--redis-url", redis_server.url,
        "--import", "no.such.module",
    )  # fmt: skip
    _failed(result, 2, "no.such.module")
    _nothing_left(before)


def test_an_admin_port_in_use(redis_server, tmp_path, before) -> None:
    """An --admin-port some program listens on: exit 2 saying so, nothing started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(
            tmp_path, "-m", "verk_actors", "start", "--redis-url", redis_server.url,
            "--admin-port", str(port),
        )  # fmt: skip
    _failed(result, 2, f"admin port {port} is in use")
    _nothing_left(before)


def test_redis_not_answering_within_redis_wait(tmp_path, before) -> None:
    """Nothing listens at the Redis URL and --redis-wait runs out: exit 1, nothing started."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = _run(tmp_path, "-m", "verk_actors", "start", "--redis-url", url, "--redis-wait", "1")
    _failed(result, 1, "did not answer within 1 s")
    _nothing_left(before)


def test_a_data_dir_that_is_a_file(tmp_path, before) -> None:
    """The embedded server's --data-dir is a file: exit 2 saying what to do."""
    (tmp_path / "data").write_text("not a directory")
    result = _run(tmp_path, "-m", "verk_actors", "start", "--data-dir", "data")
    _failed(result, 2, "cannot keep the embedded Valkey's data in data", "--data-dir")
    assert "Exception ignored" not in result.stderr
    _nothing_left(before)


def test_an_embedded_server_that_dies_at_start(tmp_path, before) -> None:
    """The embedded Valkey refuses its data (a corrupt append-only manifest) and exits:
    start exits 1 with the server's own words, and no server is left."""
    aof = tmp_path / "verk-data" / "appendonlydir"
    aof.mkdir(parents=True)
    (aof / "appendonly.aof.manifest").write_text("this is not a manifest\n")
    result = _run(tmp_path, "-m", "verk_actors", "start")
    _failed(result, 1, "the embedded Valkey server did not start")
    _nothing_left(before)


def test_an_actor_system_that_fails_to_start_after_the_embedded_server(tmp_path, before) -> None:
    """The actor system's logger cannot start (Thespian then gives up after 5 s, its
    admin already daemonized): exit 1, and neither the admin nor the embedded server
    that was started before it is left running."""
    result = _run(tmp_path, "-c", BROKEN_LOGGER, "start")
    _failed(
        result,
        1,
        "could not start the Thespian actor system",
        "process(es) it had left",
        traceback=True,  # the logger process's own, printed as it dies
    )
    assert result.stderr.rstrip().splitlines()[-1].startswith("verk-actors: error: ")
    assert "started an embedded Valkey server" in result.stderr
    _nothing_left(before)


def test_start_actor_system_refuses_a_bad_level_before_starting_anything(before) -> None:
    """The library door checks the level too, before Thespian forks its admin."""
    with pytest.raises(ConfigurationError, match="'loud' is not a log level"):
        start_actor_system(log_level="loud")
    _nothing_left(before)
