"""A blocking take of one job (``BLMOVE``) whose answer an actor waits for by socket.

The ``BLMOVE`` goes out on a connection of its own and the actor hands its socket to
Thespian (``ThespianWatch``), so the actor keeps receiving messages while it waits and
reads the answer when the socket turns readable. Used by the QueueManager (an idle
queue) and by a worker on standby (which then runs the job without any actor hop).
"""

from __future__ import annotations

import redis
from redis.connection import Connection

from verk_actors.store import keys
from verk_actors.store.connection import connect

WAIT_SECONDS = 2
"""Seconds one BLMOVE waits before it is issued again."""


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
        conn.send_command(  # type: ignore[no-untyped-call]
            "BLMOVE",
            keys.queue_key(self.queue),
            keys.inprogress_key(self.queue, self.node_id),
            "RIGHT",
            "LEFT",
            WAIT_SECONDS,
        )
        sock = conn._sock
        if sock is None:
            raise redis.ConnectionError("wait connection closed right after sending")
        return int(sock.fileno())

    def finish(self) -> bytes | None:
        """Read the BLMOVE answer (the socket is readable): a job, or None on timeout."""
        conn = self._conn
        if conn is None:
            return None
        try:
            reply = conn.read_response()
        except BaseException:
            self.cancel()
            raise
        return reply if isinstance(reply, bytes) else None

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
