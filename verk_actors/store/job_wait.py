"""A blocking take of one job (``BLMOVE``) whose answer an actor waits for by socket.

The ``BLMOVE`` goes out on a connection of its own and the actor hands its socket to
Thespian (``ThespianWatch``), so the actor keeps receiving messages while it waits and
reads the answer when the socket turns readable. Used by the QueueManager (an idle
queue) and by a worker on standby (which then runs the job without any actor hop).

A pause must stop every take at once, and a ``BLMOVE`` cannot ask whether its queue is
paused. So each ``BLMOVE`` goes out behind a ``SISMEMBER verk:paused <queue>`` in the
same write: Redis runs the two back to back, the check's answer comes at once, and a
wait that finds its queue paused interrupts its own ``BLMOVE`` and reports the job it
may have moved as not to be run (the caller gives it back). A queue paused while a
``BLMOVE`` blocks is seen by the next one: ``pause_queue`` interrupts the blocked waits
of the queue (``unblock_waits``), so that next one comes at once.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import redis
from redis.connection import Connection

from verk_actors.store import keys
from verk_actors.store.connection import connect

WAIT_SECONDS = 2
"""Seconds one BLMOVE waits before it is issued again."""


class Answer(NamedTuple):
    """What a readable wait socket said."""

    done: bool
    """The BLMOVE answered (False: only the pause check did; keep watching the socket)."""
    job: bytes | None
    """The job the BLMOVE moved into this node's in-progress list, if any."""
    paused: bool
    """The queue was paused when the BLMOVE went out: do not run ``job``, give it back."""


WAITING = Answer(False, None, False)


def client_name(node_id: str, queue: str, worker: int | None = None) -> str:
    """The connection name (``CLIENT LIST``) of a node's queue, or of one of its workers."""
    base = f"verk:{node_id}:{queue}"
    return base if worker is None else f"{base}:worker{worker}"


def wait_name(owner: str) -> str:
    """The name of the waiting connection of the client named ``owner``."""
    return f"{owner}:wait"


def unblock_waits(client: redis.Redis, queue: str) -> int:
    """Interrupt every blocked ``BLMOVE`` of ``queue``, on every node; return how many.

    Each wait then goes out again behind a fresh pause check (see above).
    """
    suffix = re.compile(rf":{re.escape(queue)}(:worker\d+)?:wait$")
    unblocked = 0
    for entry in client.client_list():
        name = str(entry.get("name", ""))
        if name.startswith("verk:") and suffix.search(name) and entry.get("cmd") == "blmove":
            unblocked += int(client.client_unblock(int(entry["id"])))
    return unblocked


class JobWait:
    """One queue's ``BLMOVE`` into this node's in-progress list, answered asynchronously.

    ``control`` is a connection for other commands: ``interrupt`` sends
    ``CLIENT UNBLOCK`` on it.
    """

    def __init__(
        self, url: str, queue: str, node_id: str, *, name: str, control: redis.Redis
    ) -> None:
        self.queue = queue
        self.node_id = node_id
        self.control = control
        self._waiter = connect(url, name=name, socket_timeout=None)
        self._conn: Connection | None = None
        self._id: int | None = None
        self._paused: bool | None = None
        """The pause check's answer for the BLMOVE out (None: not read yet)."""

    def start(self) -> int:
        """Send a BLMOVE for one job; return the socket to watch for its answer."""
        if self._conn is None:
            conn = self._waiter.connection_pool.get_connection()
            try:
                conn.send_command("CLIENT", "ID")  # type: ignore[no-untyped-call]
                self._id = int(conn.read_response())
            except BaseException:
                # Kept without its id (an error reply: BUSY...), its BLMOVE could not
                # be interrupted: start afresh next time.
                conn.disconnect()  # type: ignore[no-untyped-call]
                self._waiter.connection_pool.release(conn)
                raise
            self._conn = conn
        conn = self._conn
        commands = (
            ("SISMEMBER", keys.PAUSED, self.queue),
            (
                "BLMOVE",
                keys.queue_key(self.queue),
                keys.inprogress_key(self.queue, self.node_id),
                "RIGHT",
                "LEFT",
                WAIT_SECONDS,
            ),
        )
        conn.send_packed_command(conn.pack_commands(commands))  # type: ignore[no-untyped-call]
        self._paused = None
        sock = conn._sock
        if sock is None:
            raise redis.ConnectionError("wait connection closed right after sending")
        return int(sock.fileno())

    def finish(self) -> Answer:
        """Read what the readable socket holds: the pause check's answer, the BLMOVE's,
        or both (``done``: the BLMOVE answered; else watch the socket again)."""
        conn = self._conn
        if conn is None:
            return Answer(True, None, False)
        try:
            if self._paused is None:
                self._paused = bool(conn.read_response())
                if self._paused:
                    self.interrupt()  # paused: no need to wait the BLMOVE out
                if not conn.can_read(timeout=0):
                    return WAITING
            reply = conn.read_response()
        except BaseException:
            self.cancel()
            raise
        return Answer(True, reply if isinstance(reply, bytes) else None, self._paused)

    def interrupt(self) -> None:
        """Make a pending BLMOVE answer now (nil, or the job it just moved)."""
        if self._conn is not None and self._id is not None:
            self.control.client_unblock(self._id)

    def cancel(self) -> None:
        """Drop the waiting connection. A job it moved meanwhile stays in progress and
        is given back by the next recovery of this node's leftovers."""
        conn, self._conn = self._conn, None
        self._id = None
        if conn is not None:
            conn.disconnect()  # type: ignore[no-untyped-call]
            self._waiter.connection_pool.release(conn)

    def close(self) -> None:
        """Close the waiting connection (``control`` belongs to the caller)."""
        self.cancel()
        self._waiter.close()
