"""What every actor process sets up for itself: it dies with its parent, and a crash kills it.

Two things Thespian's child start path leaves to us:

- **Dying with the parent.** Linux kills a process whose parent dies only if the
  process asked first (``PR_SET_PDEATHSIG``), and the request does not survive
  ``fork``: each actor process must make it itself. A parent that dies between the
  fork and that request leaves the child running for ever (re-parented, still
  listening, still consuming), so after asking, the child checks that its parent is
  still the one that forked it and exits at once if not.
- **Crashing on a crash.** Thespian installs a Python handler for every signal it
  can catch, SIGSEGV included. A Python handler only sets a flag for the interpreter
  and returns, so after a fault in C code (a bad pointer in an extension, a
  ``ctypes`` mistake) the faulting instruction runs again, for ever, at full CPU: the
  process neither works nor dies, and its supervisor never hears of it. Actor
  processes give these signals back their default action (the process dies, and its
  parent settles what it was doing), with ``faulthandler`` first writing the Python
  stack of every thread to stderr, which is where the node's log goes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import faulthandler
import multiprocessing
import os
import signal
import sys

PR_SET_PDEATHSIG = 1

CRASH_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT")
    if hasattr(signal, name)
)
"""Signals that mean this process is broken: it must die of them, not handle them."""

ORPHAN_EXIT = 70
"""Exit status of an actor process that found its parent gone as it started."""


def forking_parent() -> int | None:
    """The pid of the process that forked this one with ``multiprocessing`` (None if none)."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else None


def die_with_parent(expected_parent: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit now if it already has.

    ``expected_parent`` is the pid that forked this process: if ``getppid()`` is no
    longer that after the request, the parent died before the request could cover it,
    and this process exits at once (``ORPHAN_EXIT``) instead of running orphaned.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(ORPHAN_EXIT)


def crash_on_fatal_signals() -> None:
    """Let SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT kill this process, stack dumped first.

    Call it after Thespian has installed its own handlers (from the actor's
    ``__init__``). ``faulthandler`` is re-enabled last, so the handler it falls back to
    after writing the stack is the default action, not Thespian's.
    """
    faulthandler.disable()
    for signum in CRASH_SIGNALS:
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            signal.signal(signum, signal.SIG_DFL)
    stream = sys.__stderr__
    with contextlib.suppress(AttributeError, OSError, RuntimeError, ValueError):
        if stream is not None:
            faulthandler.enable(file=stream, all_threads=True)
