"""Stopping a queue's workers gracefully (``DrainQueue``).

A drain takes no more jobs: the jobs held and those taken back go back to the queue,
a standby ends, busy workers finish their batch, or are killed when the drain's time
is up (the job each was running goes back to the queue too). Once no worker is busy,
the WorkersManager sends its last outcomes, then ``StopQueueManager`` with how many
jobs the drain gave back.
"""

from __future__ import annotations

from typing import Any

from verk_actors.actors.messages import DrainTimeout, StopQueueManager


class Drain:
    """A drain in progress (or none)."""

    def __init__(self) -> None:
        self.active = False
        self.reply: Any = None
        """Who asked for the drain, until the QueueManager is told to stop."""
        self.token = 0
        """Tells this drain's timeout from an earlier one's."""
        self.requeued = 0
        """Jobs the drain gave back to the queue."""

    def begin(self, reply: Any) -> DrainTimeout:
        """Start draining for ``reply``; the timer payload for when time is up."""
        self.active = True
        self.reply = reply
        self.token += 1
        return DrainTimeout(self.token)

    def timed_out(self, message: DrainTimeout) -> bool:
        """Whether ``message`` ends this drain's time (not an earlier drain's)."""
        return self.active and message.token == self.token

    def stop(self) -> StopQueueManager | None:
        """The message that stops the QueueManager, once (None: sent already)."""
        if self.reply is None:
            return None
        message = StopQueueManager(reply_to=self.reply, requeued=self.requeued)
        self.reply = None
        return message
