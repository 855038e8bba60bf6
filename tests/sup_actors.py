"""Actors for supervision tests (importable, so the multiproc base can create them)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import attrs
from thespian.actors import ChildActorExited

from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import ChildReady
from verk_actors.actors.supervisor import Child, Strategy, Supervisor


@attrs.frozen
class Ping:
    pass


@attrs.frozen
class Pong:
    pid: int
    explosions: int


@attrs.frozen
class Explode:
    pass


@attrs.frozen
class InitProbe:
    name: str


@attrs.frozen
class InitSup:
    strategy: str
    max_restarts: int
    window: float
    names: tuple[str, ...] = ("a", "b", "c")


@attrs.frozen
class Pids:
    pass


@attrs.frozen
class PidsAre:
    pids: tuple[tuple[str, int | None], ...]
    restarts: int


class Probe(VerkActor):
    """A child that reports its pid and can be made to fail."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.explosions = 0

    def receiveMsg_InitProbe(self, message: InitProbe, sender: Any) -> None:
        self.send(sender, ChildReady(os.getpid()))

    def receiveMsg_Ping(self, message: Ping, sender: Any) -> None:
        self.send(sender, Pong(os.getpid(), self.explosions))

    def receiveMsg_Explode(self, message: Explode, sender: Any) -> None:
        self.explosions += 1
        raise RuntimeError("exploding on purpose")


class ProbeSupervisor(Supervisor):
    """A supervisor whose strategy and intensity come in its init message."""

    strategy: ClassVar[Strategy] = Strategy.ONE_FOR_ONE

    def receiveMsg_InitSup(self, message: InitSup, sender: Any) -> None:
        self.strategy = Strategy(message.strategy)  # type: ignore[misc]
        self.intensity.max_restarts = message.max_restarts
        self.intensity.within = message.window
        self.max_restarts = message.max_restarts  # type: ignore[misc]
        for name in message.names:
            self.start_child(name, Probe)
        self.send(sender, ChildReady(os.getpid()))

    def init_message(self, child: Child) -> object:
        return InitProbe(child.name)

    def receiveMsg_Pids(self, message: Pids, sender: Any) -> None:
        self.send(sender, PidsAre(tuple((c.name, c.pid) for c in self.children), self.restarts()))


@attrs.frozen
class StartChildSupervisor:
    init: InitSup


@attrs.frozen
class ChildExitedReport:
    count: int


@attrs.frozen
class Exits:
    pass


class Parent(Supervisor):
    """Owns one ProbeSupervisor, one_for_one, and counts its exits (escalations)."""

    max_restarts = 10
    restart_window = 60.0

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.sup_init: InitSup | None = None
        self.exits = 0

    def receiveMsg_StartChildSupervisor(self, message: StartChildSupervisor, sender: Any) -> None:
        self.sup_init = message.init
        child = self.start_child("sup", ProbeSupervisor)
        self.send(sender, child.address)

    def init_message(self, child: Child) -> object:
        assert self.sup_init is not None
        return self.sup_init

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Any) -> None:
        if self.child("sup") is not None and self.child("sup").address == message.childAddress:
            self.exits += 1
        super().receiveMsg_ChildActorExited(message, sender)

    def receiveMsg_Exits(self, message: Exits, sender: Any) -> None:
        sup = self.child("sup")
        self.send(sender, (self.exits, sup.address if sup else None))
