"""No timer chain of any actor can be dropped by one exception in its handler."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import time
from pathlib import Path
from typing import Any

import pytest
from thespian.actors import ActorExitRequest, ActorSystem

import verk_actors
from tests.timer_actors import StartTicking, Ticked, Ticker
from verk_actors.actors._launcher import LauncherWatch
from verk_actors.actors.base import VerkActor
from verk_actors.actors.root import VerkRoot

PACKAGE = Path(verk_actors.__file__).parent


@pytest.fixture
def simple() -> Any:
    """Thespian's in-process base (timers fire inside ask/listen)."""
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    yield system
    system.shutdown()


def _ticks(asys: Any, ticker: Any, seconds: float) -> list[int]:
    """The tick counts the ticker reports within ``seconds``."""
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        reply = asys.listen(left)
        if isinstance(reply, Ticked):
            seen.append(reply.count)
    return seen


def test_a_timer_whose_handler_raises_fires_again(simple) -> None:
    """A periodic chain goes on after its handler raised three times in a row."""
    ticker = simple.createActor(Ticker)
    simple.tell(ticker, StartTicking(failures=3, rearm_first=False))
    seen = _ticks(simple, ticker, 1.0)
    simple.tell(ticker, ActorExitRequest())
    assert seen and max(seen) >= 10, f"the chain stopped after ticks {seen}"


def test_a_timer_rearmed_before_its_handler_raised_is_not_doubled(simple) -> None:
    """A handler that armed its next tick and then raised keeps one chain, not two."""
    ticker = simple.createActor(Ticker)
    simple.tell(ticker, StartTicking(failures=8, rearm_first=True))
    seen = _ticks(simple, ticker, 1.0)
    simple.tell(ticker, ActorExitRequest())
    # One chain ticks once per 10 ms at most; a doubled chain per failure would be
    # 2**8 chains, and counts would repeat.
    assert seen and max(seen) >= 10, f"the chain stopped after ticks {seen}"
    assert len(seen) == len(set(seen)) and max(seen) <= 110, seen


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for info in pkgutil.walk_packages([str(PACKAGE)], "verk_actors."):
        if info.name.endswith("__main__"):
            continue  # running it is the CLI
        module = importlib.import_module(info.name)
        source = inspect.getsource(module)
        found.append((info.name, ast.parse(source)))
    return found


def _timer_calls(tree: ast.Module) -> list[tuple[str, ast.Call]]:
    """(enclosing class name, call) of every ``self.after(...)`` and ``wakeupAfter``."""
    calls = []
    for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
        for node in ast.walk(cls):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("after", "wakeupAfter")
            ):
                calls.append((cls.name, node))
    return calls


def test_every_timer_of_every_actor_goes_through_the_guard() -> None:
    """Every actor arms its timers with VerkActor.after (which the guard covers), handles
    each timer payload it arms, and none bypasses or overrides the guard."""
    checked = []
    for name, tree in _modules():
        module = importlib.import_module(name)
        for class_name, call in _timer_calls(tree):
            cls = getattr(module, class_name)
            where = f"{name}.{class_name} line {call.lineno}"
            if call.func.attr == "wakeupAfter":  # type: ignore[attr-defined]
                assert cls is VerkActor, f"{where}: arm timers with self.after"
                continue
            assert issubclass(cls, VerkActor), f"{where}: not a VerkActor"
            payload = call.args[1] if len(call.args) > 1 else None
            if isinstance(payload, ast.Call) and isinstance(payload.func, ast.Name):
                handler = f"receiveMsg_{payload.func.id}"
                assert hasattr(cls, handler), f"{where}: arms {payload.func.id}, no {handler}"
            checked.append(where)
        for cls in vars(module).values():
            if inspect.isclass(cls) and issubclass(cls, VerkActor) and cls is not VerkActor:
                for method in ("receiveMsg_WakeupMessage", "after", "_timer_failed"):
                    assert method not in vars(cls), f"{cls.__name__} overrides {method}"
    # The chains the guard must keep alive are all among them.
    for chain in (
        "node_manager.NodeManager",
        "schedule_manager.ScheduleManager",
        "queue_manager.QueueManager",
        "workers_manager.WorkersManager",
        "worker_actor.WorkerActor",
        "event_manager.EventManager",
        "_launcher.LauncherWatch",  # VerkRoot's watch on its launcher
    ):
        assert any(f".{chain} line" in w for w in checked), chain
    assert issubclass(VerkRoot, LauncherWatch)
