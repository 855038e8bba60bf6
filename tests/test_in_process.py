"""VerkRoot on Thespian's in-process base refuses to pretend it runs jobs."""

from __future__ import annotations

from thespian.actors import ActorSystem

from verk_actors.actors.messages import ConfigureVerk, Enqueue, RequestFailed
from verk_actors.actors.root import VerkRoot
from verk_actors.config.settings import Settings


def test_in_process_base_is_refused_with_how_to_fix() -> None:
    """ConfigureVerk on simpleSystemBase answers ActorSystemError naming multiprocTCPBase."""
    asys = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        root = asys.createActor(VerkRoot)
        reply = asys.ask(root, ConfigureVerk(Settings()), 5)
        assert isinstance(reply, RequestFailed)
        assert reply.error_class == "ActorSystemError"
        assert "multiprocTCPBase" in reply.message
        refused = asys.ask(root, Enqueue("Record", (1,)), 5)
        assert isinstance(refused, RequestFailed)
        assert "ConfigureVerk" in refused.message
    finally:
        asys.shutdown()
