"""Real Sidekiq for the interoperability tests: install it, run Ruby, start servers.

* ``ensure_sidekiq()`` finds Ruby Sidekiq 6.x, installing Debian's ``ruby-sidekiq``
  (Sidekiq 6.4) when it is missing, under a file lock so that parallel test
  processes install it once; it raises ``SidekiqUnavailableError`` saying why it cannot.
* ``run_ruby(url, script, data)`` runs a Ruby snippet with Sidekiq's client and API
  loaded and ``REDIS_URL`` set, sends it ``data`` as JSON and returns what it
  ``emit``s (see ``prelude.rb``).
* ``SidekiqServer`` runs ``sidekiq -r workers.rb`` against a Redis and always stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
PRELUDE_RB = HERE / "prelude.rb"
WORKERS_RB = HERE / "workers.rb"
RESULT_MARK = "INTEROP-RESULT "
DEBIAN_PACKAGE = "ruby-sidekiq"
SUPPORTED_MAJOR = 6
INSTALL_LOCK = Path(tempfile.gettempdir()) / "verk-interop-ruby-sidekiq.lock"
INSTALL_TIMEOUT = 900.0


class SidekiqUnavailableError(Exception):
    """Ruby Sidekiq 6.x is not installed and cannot be installed here."""


class RubyError(Exception):
    """A Ruby snippet failed or timed out; the message holds its output."""


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def installed_version() -> str | None:
    """The version of Sidekiq Ruby can load, or None."""
    try:
        done = subprocess.run(
            ["ruby", "-e", 'require "sidekiq"; print Sidekiq::VERSION'],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(
            ["apt-get", *args],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SidekiqUnavailableError(
            f"apt-get {' '.join(args)} did not finish within {INSTALL_TIMEOUT:g} s"
        ) from exc


def install_sidekiq() -> None:
    """Install Debian's ruby-sidekiq (running apt-get update first if needed)."""
    if shutil.which("apt-get") is None:
        raise SidekiqUnavailableError(
            f"Ruby Sidekiq is not installed and there is no apt-get to install Debian's "
            f"{DEBIAN_PACKAGE}; install Ruby and Sidekiq 6.x (gem install sidekiq -v '~> 6.4')"
        )
    if os.geteuid() != 0:
        raise SidekiqUnavailableError(
            f"Ruby Sidekiq is not installed and installing {DEBIAN_PACKAGE} needs root; "
            f"run: sudo apt-get install -y {DEBIAN_PACKAGE}"
        )
    install = ("install", "-y", "-q", "--no-install-recommends", DEBIAN_PACKAGE)
    done = _apt(*install)
    if done.returncode != 0:
        # Missing or stale package lists: refresh them once and try again.
        _apt("update", "-q")
        done = _apt(*install)
    if done.returncode != 0:
        raise SidekiqUnavailableError(
            f"apt-get install {DEBIAN_PACKAGE} failed (exit {done.returncode}):\n"
            f"{_tail(done.stdout + done.stderr)}"
        )


def ensure_sidekiq() -> str:
    """Sidekiq's version, after installing it if needed; SidekiqUnavailableError if impossible."""
    INSTALL_LOCK.touch(exist_ok=True)
    with INSTALL_LOCK.open("r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            version = installed_version()
            if version is None:
                install_sidekiq()
                version = installed_version()
            if version is None:
                raise SidekiqUnavailableError(
                    f"{DEBIAN_PACKAGE} was installed but `ruby -e 'require \"sidekiq\"'` "
                    "still fails"
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if version.split(".")[0] != str(SUPPORTED_MAJOR):
        raise SidekiqUnavailableError(
            f"Sidekiq {version} is installed; these tests are written for Sidekiq "
            f"{SUPPORTED_MAJOR}.x (Debian's {DEBIAN_PACKAGE} 6.4)"
        )
    return version


def ruby_env(redis_url: str) -> dict[str, str]:
    """The environment of Ruby processes: ours, with Sidekiq pointed at ``redis_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUBY", "GEM_", "BUNDLE"))}
    env["REDIS_URL"] = redis_url
    return env


def run_ruby(redis_url: str, script: str, data: Any = None, *, timeout: float = 30.0) -> Any:
    """Run ``script`` (Sidekiq loaded, ``INPUT`` = ``data``) and return what it ``emit``s."""
    try:
        done = subprocess.run(
            ["ruby", "-r", str(PRELUDE_RB), "-e", script],
            input="" if data is None else json.dumps(data, ensure_ascii=False),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=ruby_env(redis_url),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RubyError(f"Ruby snippet did not finish within {timeout:g} s:\n{script}") from exc
    if done.returncode != 0:
        raise RubyError(
            f"Ruby snippet failed (exit {done.returncode}):\n{script}\n--- output:\n"
            f"{_tail(done.stdout + done.stderr)}"
        )
    # Split on newlines only: str.splitlines() would also split inside a JSON string
    # holding U+2028 or other line separators, which Ruby's JSON leaves unescaped.
    lines = done.stdout.split("\n")
    results = [line[len(RESULT_MARK) :] for line in lines if line.startswith(RESULT_MARK)]
    return json.loads(results[-1]) if results else None


class SidekiqServer:
    """A real ``sidekiq`` process running ``workers.rb`` on some queues of one Redis."""

    def __init__(
        self,
        redis_url: str,
        *,
        queues: Sequence[str] = ("default",),
        concurrency: int = 5,
        shutdown_timeout: int = 3,
        require: Path = WORKERS_RB,
    ) -> None:
        self.redis_url = redis_url
        self.queues = tuple(queues)
        self.concurrency = concurrency
        self.shutdown_timeout = shutdown_timeout
        self.require = require
        self.log_path = Path(tempfile.mkdtemp(prefix="verk-interop-sidekiq-")) / "sidekiq.log"
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        args = ["sidekiq", "-r", str(self.require), "-c", str(self.concurrency)]
        args += ["-t", str(self.shutdown_timeout)]
        for queue in self.queues:
            args += ["-q", queue]
        return args

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 30.0) -> SidekiqServer:
        """Start the server and wait until its heartbeat is in Redis (it is fetching)."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=ruby_env(self.redis_url),
            )
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        deadline = time.monotonic() + timeout
        try:
            while not self._heartbeat_seen(client):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"sidekiq did not start within {timeout:g} s:\n{_tail(self.log())}"
                    )
                time.sleep(0.05)
        finally:
            client.close()
        return self

    def _heartbeat_seen(self, client: redis.Redis) -> bool:
        assert self.process is not None
        for identity in client.smembers("processes"):
            info = client.hget(identity, "info")
            if info and json.loads(info).get("pid") == self.process.pid:
                return True
        return False

    def stop(self) -> None:
        """TERM the server (Sidekiq's graceful stop), KILL it if it lingers, reap it."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(self.shutdown_timeout + 15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def cleanup(self) -> None:
        """Stop the server and remove its log."""
        self.stop()
        shutil.rmtree(self.log_path.parent, ignore_errors=True)


@contextlib.contextmanager
def sidekiq_server(redis_url: str, **options: Any) -> Iterator[SidekiqServer]:
    """A started SidekiqServer that is stopped when the block ends, however it ends."""
    server = SidekiqServer(redis_url, **options)
    try:
        yield server.start()
    finally:
        server.cleanup()
