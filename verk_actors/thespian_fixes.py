"""Changes to Thespian 4.0.1's multiprocess TCP base: one bug fix and three speed-ups.

Each is idempotent and applied by ``apply()`` in the process that starts the
admin, before it starts: the admin and every actor process are forked from it and
inherit them. An application that starts its own ``ActorSystem('multiprocTCPBase',
...)`` for verk_actors should call ``apply()`` first.

Thespian's TCP transport is Python: each turn of its loop (``_runWithExpiry``) costs
a few hundred microseconds on a small VM, a message costs an actor four or five
turns, and that, not pickling, is what a message costs (py-spy, cProfile).
"""

from __future__ import annotations

import select
import selectors
import socket
import types
from datetime import timedelta
from typing import Any

from thespian.system import multiprocCommon
from thespian.system.transport import TCPTransport

from verk_actors.actor_process import die_with_parent, forking_parent

IDLE_SOCKET_SECONDS = 1.0
"""How long a connection to another actor stays open unused (Thespian: 20 minutes)."""


def apply() -> None:
    """All of the changes below."""
    report_every_child_exit()
    poll_instead_of_epoll()
    read_whole_messages()
    close_idle_sockets_after(IDLE_SOCKET_SECONDS)
    tie_actor_processes_to_parents()


def report_every_child_exit() -> None:
    """Make Thespian tell a parent of *each* dead child (a fix to Thespian 4.0.1).

    When an actor handles a ``ChildActorExited``, Thespian's
    ``MultiProcReplicator._childExited`` (``thespian/system/multiprocCommon.py``)
    drops every dead child from the actor's process list, also a child whose death
    it has not reported yet. So when two children of one actor die within a
    millisecond or so (a WorkersManager killing its busy workers at shutdown, two
    workers OOM-killed together), the later one often never gets its
    ``ChildActorExited`` (measured: in 15 % of trials with two children killed at
    once, 40 % with five): its supervisor waits for it forever. This version drops
    only the child whose exit is being handled (once it is really gone); the others
    stay listed until their own SIGCHLD reports them.
    """
    replicator = multiprocCommon.MultiProcReplicator
    if getattr(replicator, "_verk_reports_every_exit", False):
        return
    alive = replicator._checkChildLiveness

    def _childExited(self: Any, exited: Any) -> None:
        def keep(child: Any) -> bool:
            addresses = (getattr(child, "childRealAddr", None), child.childAddr)
            return exited not in addresses or bool(alive(child))

        self._child_procs = [c for c in getattr(self, "_child_procs", []) if keep(c)]

    replicator._childExited = _childExited
    replicator._verk_reports_every_exit = True


def poll_instead_of_epoll() -> None:
    """Make Thespian's TCP transport wait with ``poll`` instead of a new ``epoll``.

    Each turn of its loop, ``TCPTransport._runWithExpiry`` builds a
    ``selectors.DefaultSelector`` (epoll on Linux), registers every socket and watched
    fd in it, waits once and closes it: one ``epoll_create``, one ``epoll_ctl`` per fd
    and a ``close`` per message. A WorkersManager watches a socket per worker, so with
    25 workers that was a third of its time during a drain (py-spy). A
    ``PollSelector`` registers in Python and waits with one ``poll`` system call.
    """
    if getattr(TCPTransport, "_verk_poll", False):
        return
    TCPTransport.selectors = types.SimpleNamespace(
        DefaultSelector=selectors.PollSelector,
        EVENT_READ=selectors.EVENT_READ,
        EVENT_WRITE=selectors.EVENT_WRITE,
    )
    TCPTransport._verk_poll = True


def _readable(sock: socket.socket) -> bool:
    """True when ``sock`` has data (or an end) to read now."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def read_whole_messages() -> None:
    """Read the rest of a message in the same turn when it has already arrived.

    Thespian reads an incoming message's first 20 bytes (its length) in one turn of
    its loop and the rest in the next, so every message costs the receiver a turn
    more than it needs: of the five turns an actor spent per message received and
    answered, this saves one (counted). The rest is read only when ``poll`` says it
    is there, and never past the message's end, so the next message on the socket
    and a slow sender are handled as before.
    """
    transport = TCPTransport.TCPTransport
    if getattr(transport, "_verk_whole_messages", False):
        return
    read_once = transport._handleReadableIncoming

    def _handleReadableIncoming(self: Any, inc: Any, has_exclusive_flag: bool = False) -> Any:
        result = read_once(self, inc, has_exclusive_flag=has_exclusive_flag)
        while (
            result is inc
            and inc.socket is not None
            and not inc.receivedAllData()
            and _readable(inc.socket)
        ):
            result = read_once(self, inc, has_exclusive_flag=has_exclusive_flag)
        return result

    transport._handleReadableIncoming = _handleReadableIncoming
    transport._verk_whole_messages = True


def close_idle_sockets_after(seconds: float) -> None:
    """Close a connection to another actor once it has gone ``seconds`` unused.

    Thespian keeps one for 20 minutes, and every turn of its loop polls and checks
    each (expiry, address hashing): a WorkersManager with 25 workers, of which a
    drain keeps 2 or 3 busy, spent a third of its turns on the idle ones (cProfile: 29
    sockets a turn, 10 with this). A closed connection is opened again by the next
    message, as Thespian does after its own 20 minutes.
    """
    TCPTransport.MAX_IDLE_SOCKET_PERIOD = timedelta(seconds=seconds)


def tie_actor_processes_to_parents() -> None:
    """Make each actor process ask to die with its parent first thing after the fork.

    ``VerkActor.__init__`` asks too, but Thespian's child start path
    (``multiprocCommon.startChild``) runs for a while before it: it opens the
    transport, sets up logging and signals, imports the actor's class. A parent
    killed in that window left its new child running with no parent (seen in 5 of
    12 rounds of killing a QueueSupervisor, then the rest of its node 5-50 ms
    later). ``_startChildActor`` looks ``startChild`` up at each start, so wrapping
    it puts the request before all of that; ``die_with_parent`` also exits at once
    if the parent is already gone.
    """
    if getattr(multiprocCommon, "_verk_ties_children", False):
        return
    start_child = multiprocCommon.startChild

    def startChild(*args: Any, **kwargs: Any) -> Any:
        die_with_parent(forking_parent())
        return start_child(*args, **kwargs)

    multiprocCommon.startChild = startChild
    multiprocCommon._verk_ties_children = True
