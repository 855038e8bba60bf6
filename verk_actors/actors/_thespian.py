"""verk_actors' changes to Thespian 4.0.1's multiprocess TCP base: the only module that
touches Thespian's internals.

Security (issue: a node's ports took pickles from anyone):

- ``bind_to_loopback``: every socket of a node (admin, logger, each actor, the
  launcher's) listens on 127.0.0.1 only; Thespian binds ``('', port)``.
- ``authenticate_frames``: every frame carries an HMAC-SHA256 of its payload made
  with the node's key; a frame without a valid MAC is dropped *before* it is
  unpickled (Thespian unpickles whatever arrives).
- ``release_inherited_listeners``: a new actor process (admin, logger, actor) lets go
  of the listening sockets it inherited by fork from the processes above it.

Then three fixes (``report_every_child_exit``, ``tie_actor_processes_to_parents``,
``stop_children_that_start_during_exit``) and three speed-ups. Thespian's TCP
transport is Python: each turn of its loop (``_runWithExpiry``) costs a few hundred
microseconds on a small VM, a message costs an actor four or five turns, and that,
not pickling, is what a message costs (py-spy, cProfile).

Each change is idempotent and applied by ``apply()`` in the process that starts the
admin, before it starts: the admin and every actor process are forked from it and
inherit them, and the node's key with them. ``apply()`` refuses any Thespian but
the version these changes were written for. An application that starts its own
``ActorSystem('multiprocTCPBase', ...)`` for verk_actors must call ``apply()``
first; VerkRoot refuses to run on a system without these changes.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import pickle
import select
import selectors
import socket
import types
from datetime import timedelta
from typing import Any

from thespian.actors import ActorExitRequest
from thespian.system import actorManager, multiprocCommon
from thespian.system.transport import IPBase, TCPTransport, TransmitIntent
from thespian.system.transport.streamBuffer import ackDataErrPacket, ackPacket, toSendBuffer

from verk_actors.actors._keyring import MAC_BYTES, authenticated_body, node_key, seal
from verk_actors.actors._process import die_with_parent, forking_parent
from verk_actors.errors import ActorSystemError, UnauthenticatedFrameError

log = logging.getLogger(__name__)

THESPIAN_VERSION = "4.0.1"
"""The one Thespian release these changes were written and tested for."""

LOOPBACK = "127.0.0.1"

IDLE_SOCKET_SECONDS = 1.0
"""How long a connection to another actor stays open unused (Thespian: 20 minutes)."""


def apply() -> None:
    """All of the changes below; ActorSystemError on a Thespian they were not written for."""
    check_thespian_version()
    bind_to_loopback()
    authenticate_frames()
    release_inherited_listeners()
    report_every_child_exit()
    poll_instead_of_epoll()
    read_whole_messages()
    close_idle_sockets_after(IDLE_SOCKET_SECONDS)
    tie_actor_processes_to_parents()
    stop_children_that_start_during_exit()


def applied() -> bool:
    """True in a process where (or whose forking ancestor) ``apply()`` ran."""
    return bool(getattr(TCPTransport.TCPTransport, "_verk_authenticated", False))


def check_thespian_version() -> None:
    """Refuse, with a clear error, a Thespian these changes were not written for."""
    found = importlib.metadata.version("thespian")
    if found != THESPIAN_VERSION:
        raise ActorSystemError(
            f"verk_actors changes Thespian {THESPIAN_VERSION}'s TCP transport (frame "
            f"authentication, loopback binding) and cannot vouch for Thespian {found}: "
            f"install thespian=={THESPIAN_VERSION}"
        )


# --- loopback only ---------------------------------------------------------------------


def bind_to_loopback() -> None:
    """Make every Thespian TCP socket listen on 127.0.0.1 and advertise that address.

    Thespian binds ``('', port)`` (every interface) for the admin and for each actor;
    ``THESPIAN_BASE_IPADDR`` only changes the address it advertises. A node's actors
    talk to each other on one host (nodes meet in Redis, not in a Thespian convention),
    so nothing of a node needs to be reachable from another host.
    """
    os.environ["THESPIAN_BASE_IPADDR"] = LOOPBACK
    address = IPBase.IPActorAddress
    if getattr(address, "_verk_loopback", False):
        return

    def bindArgs(self: Any) -> tuple[tuple[str, int]]:
        return ((LOOPBACK, self.bindname[1]),)

    address.bindArgs = property(bindArgs)
    address._verk_loopback = True


# --- authenticated frames ----------------------------------------------------------------

_CONTROL = {pickle.dumps(ackPacket): ackPacket, pickle.dumps(ackDataErrPacket): ackDataErrPacket}
"""Thespian's two acknowledgements, exactly as it pickles them. They are accepted
without a MAC: they carry no data, and are compared byte for byte, never unpickled."""


def open_frame(frame: bytes) -> Any:
    """The message in ``frame`` if a key this process holds sealed it; else raise.

    The MAC is checked before anything is unpickled: a frame from a process without
    the key never reaches ``pickle``.
    """
    if len(frame) <= MAC_BYTES and frame in _CONTROL:
        return _CONTROL[frame]
    body = authenticated_body(frame)
    if body is None:
        raise UnauthenticatedFrameError(
            "dropped a frame without a valid MAC: its sender does not hold this node's key"
        )
    return pickle.loads(body)  # noqa: S301 - authenticated: sent by a holder of the key


class _AuthenticatedPickle:
    """Stands in for the ``pickle`` module Thespian's TCP transport (de)serializes with."""

    @staticmethod
    def dumps(message: Any) -> bytes:
        return seal(node_key(None), pickle.dumps(message))

    loads = staticmethod(open_frame)


def _transport_key(transport: Any) -> bytes:
    """The key of the actor system ``transport`` belongs to (by its admin's port)."""
    key: bytes | None = getattr(transport, "_verk_key", None)
    if key is None:
        try:
            port = int(transport._adminAddr.addressDetails.sockname[1])
        except (AttributeError, IndexError, TypeError, ValueError):
            port = None
        key = transport._verk_key = node_key(port)
    return key


def authenticate_frames() -> None:
    """Seal every frame a TCP transport sends; drop, unread, every frame not sealed.

    Thespian frames a message as ``b"<length>>" + pickle``, and unpickles what
    arrives on any of its sockets: anyone who could connect could run code as the
    node's user. The transport now sends ``b"<length>>" + MAC + pickle`` and its
    receive buffers check the MAC with ``open_frame`` first.
    """
    node_key(None)  # made now, so the processes forked from here inherit it
    transport = TCPTransport.TCPTransport
    if getattr(transport, "_verk_authenticated", False):
        return
    TCPTransport.serializer = _AuthenticatedPickle

    def serializer(self: Any, intent: Any) -> bytes:
        key = _transport_key(self)
        sealed: bytes = toSendBuffer(
            (self.myAddress, intent.message), lambda data: seal(key, pickle.dumps(data))
        )
        return sealed

    transport.serializer = serializer
    transport._verk_authenticated = True


# --- no inherited listeners --------------------------------------------------------------


def _is_listening(fd: int) -> bool:
    """True when ``fd`` is a socket that listens (asked of the socket: no /proc tables)."""
    try:
        if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:["):
            return False
        sock = socket.socket(fileno=fd)
    except OSError:
        return False
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return False
    finally:
        sock.detach()  # the fd stays open: it is not this object's to close


def release_listeners(keep: int) -> int:
    """Let go of every listening socket of this process but fd ``keep``; return how many.

    Each fd is pointed at ``/dev/null`` rather than closed, so its number stays taken:
    the socket object it came with may still be closed later by its owner's code.
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return 0  # not Linux
    doomed = [fd for fd in fds if fd != keep and _is_listening(fd)]
    if doomed:
        null = os.open(os.devnull, os.O_RDONLY)
        for fd in doomed:
            os.dup2(null, fd)
        os.close(null)
    return len(doomed)


def release_inherited_listeners() -> None:
    """Make each new admin, logger and actor process drop the listeners it inherited.

    The process that starts an actor system binds its own socket before it forks the
    admin, and Thespian forks the logger from the admin without closing the admin's
    socket: every process of a node held the starter's listening socket, and any
    frame sent there could reach whichever process read it first. A transport made
    for a new actor process (a ``TCPEndpoint``) now releases every other listener.
    """
    transport = TCPTransport.TCPTransport
    if getattr(transport, "_verk_releases_listeners", False):
        return
    init = transport.__init__

    def init_then_release(self: Any, init_type: Any, *args: Any) -> None:
        init(self, init_type, *args)
        if isinstance(init_type, TCPTransport.TCPEndpoint):
            release_listeners(self.socket.fileno())

    transport.__init__ = init_then_release
    transport._verk_releases_listeners = True


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


def stop_children_that_start_during_exit() -> None:
    """Tell a child that finishes starting after its parent began to exit to exit too.

    On ``ActorExitRequest`` Thespian's ``ActorManager._shutdownActor`` sends the request
    on to the children it knows, then waits for each of them to exit. A child created
    just before (a supervisor answering a ``ChildReady``) is not known until it
    connects; when it connects later, it is registered and waited for, but never asked
    to exit: the parent waits for ever, and so does ``ActorSystem.shutdown()``, which
    gives up after 10 s and leaves the node running (seen when a node was shut down
    within a fraction of a second of its start).
    """
    manager = actorManager.ActorManager
    if getattr(manager, "_verk_stops_late_children", False):
        return
    ready = manager._pendingActorReady

    def ready_then_stop(self: Any, instance: Any, address: Any, *args: Any, **kw: Any) -> None:
        ready(self, instance, address, *args, **kw)
        mine = kw.get("isMyChild", args[0] if args else True)
        if mine and getattr(self, "_exiting", False):
            self._send_intent(
                TransmitIntent(
                    address,
                    ActorExitRequest(recursive=True),
                    onError=lambda _result, _intent: self._childInaccessible(address, None),
                )
            )

    manager._pendingActorReady = ready_then_stop
    manager._verk_stops_late_children = True
