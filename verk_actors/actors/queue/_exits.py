"""Worker processes asked to exit, watched until their process has ended.

Thespian tells a parent ``ChildActorExited`` as soon as the child's actor has stopped,
before its process ends. A process whose job left a non-daemon thread running (Python
waits for those before a process ends), or whose exit hangs in a finalizer, would then
live on unseen, holding the memory a recycle was meant to give back. So the
WorkersManager watches each worker it asked to exit (recycled, or idle above a lazy
pool's floor) through a pidfd, which names that process and no later one given its pid,
and kills it if it is still there ``EXIT_GRACE`` seconds after its actor stopped. Its
batch was over and reported before it was asked to exit: no job is lost or run twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal

log = logging.getLogger(__name__)

EXIT_GRACE = 5.0
"""Seconds a worker process asked to exit may live on after its actor has stopped
(it ends within milliseconds unless something in it does not end)."""


class ExitWatch:
    """Processes whose actor has stopped, each until it has ended or been killed."""

    def __init__(self) -> None:
        self.watched: dict[int, tuple[int, float, str]] = {}
        """pid: (its pidfd, when it is killed if still there, what it was)."""

    def watch(self, pid: int | None, what: str, now: float) -> None:
        """Watch process ``pid`` (``what`` names it in the log) from ``now``."""
        if pid is None or pid in self.watched:
            return
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return  # ended and reaped already
        except OSError as exc:  # no pidfd (Linux before 5.3): not watched
            log.warning("cannot watch %s (pid %d) end: %s", what, pid, exc)
            return
        self.watched[pid] = (fd, now + EXIT_GRACE, what)

    def check(self, now: float, queue: str) -> None:
        """Forget the processes that have ended; kill those past ``EXIT_GRACE``."""
        if not self.watched:
            return
        poll = select.poll()  # not select(): a busy manager's descriptors pass 1024
        for fd, _, _ in self.watched.values():
            poll.register(fd, select.POLLIN)
        ended = {fd for fd, _ in poll.poll(0)}  # a pidfd reads once its process ends
        for pid, (fd, deadline, what) in list(self.watched.items()):
            if fd in ended:
                self._forget(pid)
            elif now > deadline:
                log.warning(
                    "queue %s: %s (pid %d) stopped its actor but its process did not end "
                    "within %.0f s (a thread that never ends?); killing it",
                    queue,
                    what,
                    pid,
                    EXIT_GRACE,
                )
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                self._forget(pid)

    def _forget(self, pid: int) -> None:
        fd, _, _ = self.watched.pop(pid)
        os.close(fd)

    def close(self) -> None:
        """Stop watching (the watcher's process is ending)."""
        for pid in list(self.watched):
            self._forget(pid)
