"""VerkRoot's watch on the process that launched it (``verk-actors start``).

When the launcher dies (killed, crashed) nothing would ever stop the node: the root
watches it and shuts the whole actor system down when it is gone. On Linux with
Thespian's socket watches (multiprocTCPBase) it watches a pidfd, which becomes
readable the moment the launcher exits; elsewhere it checks the pid every
``LAUNCHER_POLL`` seconds. Jobs in progress stay in Redis and are recovered.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from thespian.actors import ThespianWatch, WatchMessage

from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import CheckLauncher

log = logging.getLogger(__name__)

LAUNCHER_POLL = 1.0
"""Seconds between two checks of the launcher's pid where no pidfd can be watched."""


class LauncherWatch(VerkActor):
    """Mixin of VerkRoot: ``watch_launcher(pid)``, then the system stops when it is gone."""

    node_id: str

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.launcher_pid: int | None = None
        self.launcher_fd: int | None = None

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        super().receiveMessage(message, sender)
        if self.launcher_fd is not None:
            return ThespianWatch([self.launcher_fd])
        return None

    def watch_launcher(self, pid: int) -> None:
        """Stop the actor system when process ``pid`` is gone."""
        self.launcher_pid = pid
        if self.can_watch and hasattr(os, "pidfd_open"):
            try:
                self.launcher_fd = os.pidfd_open(pid)
                return
            except OSError:
                self.launcher_fd = None
        self.after(LAUNCHER_POLL, CheckLauncher())

    def receiveMsg_WatchMessage(self, message: WatchMessage, sender: Any) -> None:
        if self.launcher_fd is not None and self.launcher_fd in message.ready:
            os.close(self.launcher_fd)
            self.launcher_fd = None
            self._launcher_gone()

    def receiveMsg_CheckLauncher(self, message: CheckLauncher, sender: Any) -> None:
        if self.launcher_pid is None:
            return
        try:
            os.kill(self.launcher_pid, 0)
        except ProcessLookupError:
            self._launcher_gone()
            return
        except PermissionError:
            pass
        self.after(LAUNCHER_POLL, CheckLauncher())

    def _launcher_gone(self) -> None:
        log.error(
            "node %s: its launcher (pid %s) is gone; stopping the actor system (jobs in "
            "progress stay in Redis and are recovered)",
            self.node_id,
            self.launcher_pid,
        )
        self.launcher_pid = None
        self.actorSystemShutdown()
