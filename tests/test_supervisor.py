"""OTP restart strategies and intensity, with real processes killed for real."""

from __future__ import annotations

import os
import signal
import time

import pytest
from thespian.actors import PoisonMessage

from tests.conftest import ask_for, wait_for
from tests.sup_actors import (
    Exits,
    Explode,
    InitSup,
    Parent,
    Pids,
    PidsAre,
    Ping,
    Pong,
    ProbeSupervisor,
    StartChildSupervisor,
)
from verk_actors.actors.messages import ChildReady
from verk_actors.actors.supervisor import RestartIntensity


def _pids(asys, sup) -> dict[str, int | None]:
    reply = asys.ask(sup, Pids(), 5)
    assert isinstance(reply, PidsAre)
    return dict(reply.pids)


def _started(asys, strategy: str, max_restarts: int = 5, window: float = 10.0):
    sup = asys.createActor(ProbeSupervisor)
    assert isinstance(asys.ask(sup, InitSup(strategy, max_restarts, window), 10), ChildReady)
    wait_for(lambda: _all_up(asys, sup))
    return sup, _pids(asys, sup)


def _all_up(asys, sup) -> bool:
    pids = _pids(asys, sup)
    return len(pids) == 3 and all(pids.values())


def _kill_and_wait(asys, sup, before, victim):
    os.kill(before[victim], signal.SIGKILL)

    def restarted():
        now = _pids(asys, sup)
        return now[victim] != before[victim] and len(now) == 3 and all(now.values()) and now

    return wait_for(restarted, timeout=10)


@pytest.mark.parametrize(
    ("strategy", "changed"),
    [("one_for_one", {"b"}), ("one_for_all", {"a", "b", "c"}), ("rest_for_one", {"b", "c"})],
)
def test_strategy_restarts_the_right_children(asys, strategy, changed) -> None:
    """SIGKILL of child b restarts exactly the children the strategy names."""
    sup, before = _started(asys, strategy)
    _kill_and_wait(asys, sup, before, "b")
    time.sleep(0.3)
    after = _pids(asys, sup)
    assert {n for n in before if before[n] != after[n]} == changed
    for name in changed:  # the replaced processes are really gone
        pid = before[name]
        wait_for(lambda pid=pid: _gone(pid), timeout=5)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_intensity_exceeded_escalates_to_the_parent(asys) -> None:
    """Past max_restarts in the window the supervisor exits and its parent restarts it."""
    parent = asys.createActor(Parent)
    sup = asys.ask(parent, StartChildSupervisor(InitSup("one_for_one", 2, 30.0)), 10)
    wait_for(lambda: _all_up(asys, sup))
    for _ in range(2):
        before = _pids(asys, sup)
        _kill_and_wait(asys, sup, before, "a")
    before = _pids(asys, sup)
    os.kill(before["a"], signal.SIGKILL)

    def escalated():
        exits, address = asys.ask(parent, Exits(), 5)
        return address if exits == 1 else None

    new_sup = wait_for(escalated)
    assert new_sup is not None and new_sup != sup
    wait_for(lambda: _all_up(asys, new_sup))
    fresh = _pids(asys, new_sup)
    assert set(fresh.values()).isdisjoint(before.values())
    # The old children did not outlive their supervisor.
    for pid in before.values():
        wait_for(lambda pid=pid: _gone(pid), timeout=5)


def test_a_message_that_keeps_failing_is_dropped_not_looped(asys) -> None:
    """A handler that raises runs at most twice for one message; the actor stays alive."""
    sup, before = _started(asys, "one_for_one")
    probe_pid = before["a"]
    from tests.sup_actors import Probe

    probe = asys.createActor(Probe)
    poison = asys.ask(probe, Explode(), 5)
    assert isinstance(poison, PoisonMessage)
    assert "exploding on purpose" in str(poison.details)
    reply = ask_for(asys, probe, Ping(), Pong)
    assert reply.explosions == 2
    assert _pids(asys, sup)["a"] == probe_pid


def test_restart_intensity_window() -> None:
    """RestartIntensity allows max_restarts in the window, then refuses, then allows again."""
    limit = RestartIntensity(2, 10.0)
    assert limit.allow(0.0) and limit.allow(1.0)
    assert not limit.allow(2.0)
    assert limit.allow(11.5)
