"""The actor system verk_actors starts: Thespian reports every child that dies, and its
transport, changed by ``verk_actors.actors._thespian``, still delivers every message whole."""

from __future__ import annotations

import hashlib
import time

from thespian.actors import ActorExitRequest

from tests.conftest import ask_for, wait_for
from tests.echo_actors import (
    Echo,
    Echoes,
    Fire,
    Relay,
    SocketCount,
    Sockets,
    payload,
)
from tests.exit_actors import (
    Exits,
    ExitsSeen,
    KillChildren,
    KillingParent,
    SpawnChildren,
    Spawned,
    SpawningParent,
)
from tests.servers import descendants
from verk_actors.actors import _thespian as thespian_fixes
from verk_actors.actors.system import start_actor_system


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


SIZES = (0, 1, 19, 20, 21, 4096, 65_536, 3_000_000, 7, 250_000) * 3
"""Around Thespian's 20-byte first read, around a socket buffer, and far above one."""


def test_messages_of_every_size_arrive_whole_and_once(asys) -> None:
    """Thirty payloads sent back to back, actor to actor, each answered once with the
    length and hash it was sent with (a message read in two parts in one turn)."""
    echo, relay = asys.createActor(Echo), asys.createActor(Relay)
    echoes = ask_for(asys, relay, Fire(echo, SIZES), Echoes, timeout=60)
    got = sorted((a.index, a.length, a.digest) for a in echoes.answers)
    sent = [(i, size, hashlib.sha256(payload(i, size)).hexdigest()) for i, size in enumerate(SIZES)]
    assert got == sent


def test_a_connection_closed_for_idleness_is_opened_again(asys) -> None:
    """An actor closes connections left unused for IDLE_SOCKET_SECONDS; the next
    message opens a new one and arrives."""
    echo, relay = asys.createActor(Echo), asys.createActor(Relay)
    assert ask_for(asys, relay, Fire(echo, (10,)), Echoes).answers[0].length == 10
    busy = ask_for(asys, echo, Sockets(), SocketCount).count
    time.sleep(thespian_fixes.IDLE_SOCKET_SECONDS + 0.5)

    def fewer_sockets() -> bool:
        # The echo looks at its idle connections when a message wakes it.
        return ask_for(asys, echo, Sockets(), SocketCount).count < busy

    wait_for(fewer_sockets, timeout=10, every=0.3)
    again = ask_for(asys, relay, Fire(echo, (10, 20)), Echoes)
    assert sorted(a.length for a in again.answers) == [10, 20]


def test_the_changes_are_applied_once() -> None:
    """``apply`` is idempotent: a second call does not wrap the read twice."""
    from thespian.system.transport import TCPTransport

    read = TCPTransport.TCPTransport._handleReadableIncoming
    thespian_fixes.apply()
    assert TCPTransport.TCPTransport._handleReadableIncoming is read
    assert TCPTransport.MAX_IDLE_SOCKET_PERIOD.total_seconds() == (
        thespian_fixes.IDLE_SOCKET_SECONDS
    )


def test_a_parent_told_to_exit_while_its_children_start_takes_them_along() -> None:
    """An actor that exits while children it just created are still starting asks each of
    them to exit as it connects: the whole system shuts down and no process is left, ten
    times over (Thespian alone waited for ever for such a child)."""
    for _ in range(10):
        system = start_actor_system(log_level="WARNING")
        try:
            parent = system.createActor(SpawningParent)
            assert ask_for(system, parent, SpawnChildren(8), Spawned).count == 8
            system.tell(parent, ActorExitRequest())
            wait_for(
                lambda: not [p for p, v in descendants().items() if "PidChild" in v[2]], timeout=15
            )
        finally:
            system.shutdown()
