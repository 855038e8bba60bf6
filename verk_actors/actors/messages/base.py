"""The base classes of every message the actors exchange.

Commands are imperative (``RecordOutcomes``), events and replies past tense
(``JobsDequeued``). Fields hold plain data and actor addresses only: errors travel
as class name and text, never as exception objects.

The messages an embedding application sends to ``VerkRoot`` are the first group;
each gets one reply, or ``RequestFailed`` saying what was wrong.
"""

from __future__ import annotations

from typing import Any

import attrs


class Message:
    """Base of every message: Thespian's deep copy returns it as it is.

    Thespian deep-copies every message before handing it to the receiving actor; for
    a batch of jobs that copy cost more than running them. Messages are frozen and
    hold immutable values, so the copy is the message itself.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> Message:
        return self


class BatchMessage(Message):
    """A message carrying many jobs: its repr gives counts, not every job text.

    Thespian formats messages into its own log lines; a full repr of a batch of job
    texts cost as much as the rest of the QueueManager's work.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        shown = []
        for field in attrs.fields(type(self)):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            shown.append(
                f"{field.name}=<{len(value)}>"
                if isinstance(value, tuple)
                else f"{field.name}={value!r}"
            )
        return f"{type(self).__name__}({', '.join(shown)})"
