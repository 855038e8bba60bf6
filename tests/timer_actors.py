"""An actor whose timer handler fails on purpose, for the timer-guard tests."""

from __future__ import annotations

from typing import Any

import attrs

from verk_actors.actors.base import VerkActor

TICK = 0.01


@attrs.frozen
class StartTicking:
    failures: int
    """The first this many ticks raise."""
    rearm_first: bool
    """Each tick arms the next one before it raises (the guard must not add a second)."""


@attrs.frozen
class Tick:
    pass


@attrs.frozen
class Ticked:
    count: int


class Ticker(VerkActor):
    """Ticks every ``TICK`` seconds and tells whoever started it about each tick."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.to: Any = None
        self.start = StartTicking(0, rearm_first=False)
        self.count = 0

    def receiveMsg_StartTicking(self, message: StartTicking, sender: Any) -> None:
        self.to, self.start = sender, message
        self.after(TICK, Tick())

    def receiveMsg_Tick(self, message: Tick, sender: Any) -> None:
        self.count += 1
        self.send(self.to, Ticked(self.count))
        if self.start.rearm_first:
            self.after(TICK, Tick())
        if self.count <= self.start.failures:
            raise RuntimeError(f"tick {self.count} fails on purpose")
        if not self.start.rearm_first:
            self.after(TICK, Tick())

    def timer_retry(self, payload: object) -> float:
        return TICK
