"""Stopping what a failed start of an actor system left running.

Thespian's admin daemonizes (``setsid``, a second fork) before the starter hears from
it, so when the start then fails (the admin's logger could not be configured, or the
admin did not answer within Thespian's 5 s on a loaded machine), ``ActorSystem()``
raises while the admin runs on, listening on the admin port, orphaned: nothing would
ever stop it. ``kill_admin_left_on`` finds it by the port it listens on (a port that
was free a moment before, chosen by the starter) among this user's processes, and
kills it with every process below it. Linux only (``/proc``); elsewhere it finds none.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

TCP_LISTEN = "0A"
"""The state column of a listening socket in ``/proc/net/tcp``."""


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the TCP sockets listening on ``port`` (any address)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            local, state, inode = fields[1], fields[3], fields[9]
            if state == TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def _processes() -> dict[int, int]:
    """This user's processes: pid -> parent pid."""
    parents: dict[int, int] = {}
    uid = os.getuid()
    for entry in os.listdir("/proc") if Path("/proc").is_dir() else ():
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
            parents[int(entry)] = int(stat[stat.rfind(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return parents


def _holds(pid: int, sockets: set[str]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                return True
    return False


def kill_admin_left_on(port: int) -> int:
    """SIGKILL this user's processes (not this one) listening on ``port``, and every
    process below them; return how many were killed."""
    inodes = _listening_inodes(port)
    if not inodes:
        return 0
    sockets = {f"socket:[{inode}]" for inode in inodes}
    parents = _processes()
    holders = [pid for pid in parents if pid != os.getpid() and _holds(pid, sockets)]
    doomed: list[int] = []
    pending = list(holders)
    while pending:
        pid = pending.pop()
        if pid in doomed:
            continue
        doomed.append(pid)
        pending.extend(child for child, parent in parents.items() if parent == pid)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(doomed)
