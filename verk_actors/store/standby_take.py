"""The take of a worker on standby: its own ``BLMOVE`` of one job at a time.

A worker on standby waits on its queue itself (``verk_actors.actors.queue._standby``
tells why) on two connections of its own, named after the worker in ``CLIENT LIST``:
one blocks in the ``BLMOVE`` (``JobWait``), the other interrupts it (``CLIENT
UNBLOCK``) when the standby ends. A job it moves lands in the node's in-progress list,
as every job this node takes.
"""

from __future__ import annotations

from verk_actors.store.connection import connect
from verk_actors.store.job_wait import Answer, JobWait, client_name, wait_name


class StandbyTake:
    """Worker ``index`` of ``queue`` on node ``node_id`` taking jobs one at a time.

    No connection is opened before the first ``start``.
    """

    def __init__(self, url: str, queue: str, node_id: str, index: int) -> None:
        name = client_name(node_id, queue, index)
        self._control = connect(url, name=name)
        self._wait = JobWait(url, queue, node_id, name=wait_name(name), control=self._control)

    def start(self) -> int:
        """Send a BLMOVE for one job; return the socket to watch for its answer."""
        return self._wait.start()

    def finish(self) -> Answer:
        """Read what its readable socket holds (``Answer``: done, job, paused)."""
        return self._wait.finish()

    def interrupt(self) -> None:
        """Make a pending BLMOVE answer now (nil, or the job it just moved)."""
        self._wait.interrupt()

    def cancel(self) -> None:
        """Drop the waiting connection; a job it moved meanwhile stays in progress."""
        self._wait.cancel()

    def close(self) -> None:
        """Close both connections."""
        self._wait.close()
        self._control.close()
