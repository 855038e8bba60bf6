"""Actors for the child-exit test: a parent that SIGKILLs all its children at once."""

from __future__ import annotations

import os
import signal
from typing import Any

import attrs
from thespian.actors import ActorTypeDispatcher, ChildActorExited


@attrs.frozen
class KillChildren:
    """Create ``count`` children, then SIGKILL them all in one go."""

    count: int


@attrs.frozen
class ExitsSeen:
    """Ask how many ChildActorExited the parent got. Reply: ``Exits``."""


@attrs.frozen
class Exits:
    """How many children died and how many ChildActorExited arrived."""

    killed: int
    reported: int


class PidChild(ActorTypeDispatcher):  # type: ignore[misc]
    """Answers any string with its pid."""

    def receiveMsg_str(self, message: str, sender: Any) -> None:
        self.send(sender, os.getpid())


class KillingParent(ActorTypeDispatcher):  # type: ignore[misc]
    """Kills its children in one loop, as a WorkersManager does at shutdown."""

    def __init__(self) -> None:
        super().__init__()
        self.children: list[Any] = []
        self.pids: list[int] = []
        self.killed = 0
        self.reported = 0

    def receiveMsg_KillChildren(self, message: KillChildren, sender: Any) -> None:
        for _ in range(message.count):
            child = self.createActor(PidChild)
            self.children.append(child)
            self.send(child, "pid")

    def receiveMsg_int(self, pid: int, sender: Any) -> None:
        self.pids.append(pid)
        if len(self.pids) == len(self.children):
            for each in self.pids:
                os.kill(each, signal.SIGKILL)
            self.killed = len(self.pids)

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Any) -> None:
        self.reported += 1

    def receiveMsg_ExitsSeen(self, message: ExitsSeen, sender: Any) -> None:
        self.send(sender, Exits(self.killed, self.reported))


@attrs.frozen
class SpawnChildren:
    """Create ``count`` children and answer ``Spawned`` at once (they are still starting)."""

    count: int


@attrs.frozen
class Spawned:
    """The parent has asked for its children."""

    count: int


class SpawningParent(ActorTypeDispatcher):  # type: ignore[misc]
    """Creates children on request and answers before they have started."""

    def receiveMsg_SpawnChildren(self, message: SpawnChildren, sender: Any) -> None:
        for _ in range(message.count):
            self.createActor(PidChild)
        self.send(sender, Spawned(message.count))
