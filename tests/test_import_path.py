"""``verk-actors start`` imports the application from where it runs, as Celery and RQ do:
the current directory is on the import path, and ``--path DIR`` (``VERK_PATH``, ``path``
in the config file) adds more. Run as the installed console script, without PYTHONPATH."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import wait_for
from tests.servers import free_port
from verk_actors import Client

SCRIPT = Path(sys.executable).parent / "verk-actors"

JOBS = """
import redis

from verk_actors import Worker


class {name}(Worker):
    def perform(self, url, key, value):
        client = redis.Redis.from_url(url)
        client.rpush(key, value)
        client.close()
"""


def _package(where: Path, package: str, worker: str) -> None:
    (where / package).mkdir(parents=True)
    (where / package / "__init__.py").write_text("")
    (where / package / "jobs.py").write_text(JOBS.format(name=worker))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VERK_"))}
    return {**env, **extra}


class Launcher:
    """The console script run in ``cwd``, its stderr collected."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [str(SCRIPT), "start", "--admin-port", str(free_port()), *args],
            cwd=cwd,
            env=env or _env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def running(self) -> bool:
        """The node says it runs (or the launcher exited)."""
        return self.process.poll() is not None or any(" running: queues" in x for x in self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def _runs_a_job(tmp_path: Path, redis_server, r, worker: str, *args: str, **env: str) -> None:
    node = Launcher(tmp_path, "--redis-url", redis_server.url, *args, env=_env(**env))
    try:
        wait_for(node.running, timeout=60)
        assert node.process.poll() is None, "".join(node.lines)
        with Client(url=redis_server.url) as client:
            client.enqueue(worker, redis_server.url, "ran", worker)
        wait_for(lambda: r.lrange("ran", 0, -1) == [worker.encode()])
    finally:
        code = node.stop()
    assert code == 0, "".join(node.lines)


def test_console_script_imports_a_package_of_the_current_directory(
    tmp_path, redis_server, r
) -> None:
    """``verk-actors start --import myapp.jobs`` beside ``myapp/`` runs myapp's jobs."""
    assert SCRIPT.exists()
    _package(tmp_path, "myapp", "HereWorker")
    _runs_a_job(tmp_path, redis_server, r, "HereWorker", "--import", "myapp.jobs")


def test_path_flag_adds_a_directory_to_import_from(tmp_path, redis_server, r) -> None:
    """``--path src`` finds a package kept under ``src/``."""
    _package(tmp_path / "src", "srcapp", "SrcWorker")
    _runs_a_job(tmp_path, redis_server, r, "SrcWorker", "--path", "src", "--import", "srcapp.jobs")


def test_path_from_the_config_file(tmp_path, redis_server, r) -> None:
    """``path`` in the config file adds directories as --path does."""
    _package(tmp_path / "vendor", "vendorapp", "VendorWorker")
    (tmp_path / "verk.toml").write_text('path = ["vendor"]\nimports = ["vendorapp.jobs"]\n')
    _runs_a_job(tmp_path, redis_server, r, "VendorWorker", "--config", "verk.toml")


def test_path_from_the_environment(tmp_path, redis_server, r) -> None:
    """``VERK_PATH`` (separated as PYTHONPATH is) adds directories as --path does."""
    _package(tmp_path / "lib", "libapp", "LibWorker")
    (tmp_path / "empty").mkdir()
    _runs_a_job(
        tmp_path,
        redis_server,
        r,
        "LibWorker",
        "--import",
        "libapp.jobs",
        VERK_PATH=os.pathsep.join(["empty", "lib"]),
    )


def test_a_path_that_is_not_a_directory_is_refused_with_exit_2(tmp_path) -> None:
    """A mistyped --path stops start at once, saying which directory is missing."""
    result = subprocess.run(
        [str(SCRIPT), "start", "--path", "nosuchdir", "--import", "x.jobs"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "'nosuchdir' is not a directory" in result.stderr
    assert "Traceback" not in result.stderr
