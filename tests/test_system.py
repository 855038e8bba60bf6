"""The actor system verk_actors starts: Thespian reports every child that dies."""

from __future__ import annotations

import time

from thespian.actors import ActorExitRequest

from tests.conftest import ask_for
from tests.exit_actors import Exits, ExitsSeen, KillChildren, KillingParent


def test_each_of_several_children_killed_at_once_is_reported(asys) -> None:
    """Five children SIGKILLed in one loop give five ChildActorExited, ten times over."""
    outcomes = []
    for _ in range(10):
        parent = asys.createActor(KillingParent)
        asys.tell(parent, KillChildren(5))
        deadline = time.monotonic() + 5
        while True:
            seen = ask_for(asys, parent, ExitsSeen(), Exits)
            if (seen.killed and seen.reported >= seen.killed) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        outcomes.append((seen.killed, seen.reported))
        asys.tell(parent, ActorExitRequest())
    print(f"(killed, reported) per trial: {outcomes}")
    assert outcomes == [(5, 5)] * 10
