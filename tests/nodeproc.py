"""A node run as ``verk-actors start`` in a subprocess, that tests can signal or kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.servers import descendants, free_port

ROOT = Path(__file__).resolve().parent.parent


class NodeProcess:
    """``verk-actors start`` with the test workers importable."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        own_group: bool = False,
    ):
        if "--admin-port" not in args:
            args = (*args, "--admin-port", str(free_port()))
        self.admin_port = int(args[args.index("--admin-port") + 1])
        self.args = ["-m", "verk_actors", "start", "--import", "tests.jobs", *args]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.cwd = cwd or tempfile.mkdtemp(prefix="verk-node-")
        self.own_group = own_group
        """Start the launcher as the leader of a process group, as a shell runs a command
        (then ``interrupt_group`` is a terminal's Ctrl-C)."""
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._before: set[int] = set()

    def start(self, timeout: float = 30.0, ready: str | None = " running: queues") -> NodeProcess:
        """Start the launcher and wait until it logs ``ready`` (None: do not wait)."""
        self._before = set(descendants())
        self.process = subprocess.Popen(
            [sys.executable, *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            process_group=0 if self.own_group else None,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if ready is not None:
            self.wait_for_line(ready, timeout)
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process is not None and self.process.poll() is not None:
                time.sleep(0.2)
                break
            time.sleep(0.02)
        output = "\n".join(self.lines)
        raise AssertionError(f"node never logged {text!r}; its output:\n{output}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def processes(self) -> list[int]:
        """The launcher and every process the node started (admin, actors), and no other's.

        The Thespian admin daemonizes (the test process, a subreaper, becomes its
        parent), so it is found by its process title, which names its admin port.
        """
        table = descendants()
        roots = [self.process.pid] if self.process is not None else []
        roots += [
            pid
            for pid, (_, _, cmd) in table.items()
            if cmd.startswith("MultiProcAdmin") and f":{self.admin_port})" in cmd
        ]
        found = [p for p in roots if p in table]
        for pid in roots:
            found += [p for p in descendants(pid) if p not in found]
        return [p for p in found if p not in self._before and table.get(p, (0, "Z"))[1] != "Z"]

    def actor_pids(self, title: str) -> list[int]:
        """Pids of this node's actors whose process title starts with ``title``."""
        table = descendants()
        return [p for p in self.processes() if table.get(p, (0, "", ""))[2].startswith(title)]

    def signal_all(self, signum: int) -> int:
        """Send ``signum`` to the launcher and everything it started, all at once."""
        pids = self.processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        return len(pids)

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the launcher only (as systemd or Ctrl-C would)."""
        assert self.process is not None
        self.process.send_signal(signum)

    def interrupt_group(self) -> None:
        """SIGINT to every process of the launcher's group, as Ctrl-C in a terminal."""
        assert self.process is not None and self.own_group
        os.killpg(self.process.pid, signal.SIGINT)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill_all(self) -> int:
        """SIGKILL the launcher and everything it started, all at once."""
        killed = self.signal_all(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)
        return killed

    def kill_if_running(self) -> None:
        """A test's cleanup: SIGKILL the launcher and everything it started if it still
        runs (a stopped one too: SIGSTOP trials wake it first, so nothing stays stopped)."""
        if self.process is not None and self.process.poll() is None:
            self.signal_all(signal.SIGCONT)
            self.kill_all()
