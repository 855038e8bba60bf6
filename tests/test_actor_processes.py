"""Actor processes die with their parents, and die of a crash instead of hanging on it."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import random
import signal
import time

import pytest

from tests.conftest import _reap_zombies, wait_for
from tests.nodeproc import NodeProcess
from tests.servers import descendants
from verk_actors.actors._process import (
    CRASH_SIGNALS,
    ORPHAN_EXIT,
    crash_on_fatal_signals,
    die_with_parent,
    forking_parent,
)

ROUNDS = 20

FORK = multiprocessing.get_context("fork")


def _expect_a_stranger_as_parent() -> None:
    die_with_parent(os.getppid() + 1)


def _expect_the_real_parent() -> None:
    die_with_parent(forking_parent())


def _segfault_under_a_python_handler() -> None:
    # What Thespian does in every actor process, then what VerkActor undoes.
    for signum in CRASH_SIGNALS:
        signal.signal(signum, lambda *_: None)
    crash_on_fatal_signals()
    ctypes.string_at(0)


def _run(target) -> int | None:
    process = FORK.Process(target=target)
    process.start()
    process.join(20)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    return process.exitcode


def test_a_process_whose_parent_is_already_gone_exits_at_once() -> None:
    """die_with_parent exits (ORPHAN_EXIT) when getppid() is not the expected parent."""
    assert _run(_expect_a_stranger_as_parent) == ORPHAN_EXIT
    assert _run(_expect_the_real_parent) == 0


def test_a_crash_in_c_kills_the_process_despite_a_python_handler() -> None:
    """After crash_on_fatal_signals a SIGSEGV kills the process instead of looping on it."""
    assert _run(_segfault_under_a_python_handler) == -signal.SIGSEGV


def _node_processes_left(before: set[int]) -> dict[int, str]:
    _reap_zombies()
    return {
        pid: cmd
        for pid, (_, state, cmd) in descendants().items()
        if pid not in before and state != "Z"
    }


def test_killing_a_queue_supervisor_then_its_node_leaves_no_process(redis_server) -> None:
    """A node SIGKILLed 5-50 ms after one of its QueueSupervisors leaves no orphan (20 rounds)."""
    rng = random.Random()
    _reap_zombies()
    before = set(descendants())
    orphans: list[str] = []
    for round_ in range(ROUNDS):
        node = NodeProcess(
            "--redis-url", redis_server.url, "--queue", "default=8", "--queue", "low=4"
        ).start()
        wait_for(lambda node=node: len(node.actor_pids("WorkerActor")) == 12)
        [supervisor, *_] = node.actor_pids("QueueSupervisor")
        os.kill(supervisor, signal.SIGKILL)
        time.sleep(rng.uniform(0.005, 0.05))
        node.kill_all()
        deadline = time.monotonic() + 5
        while (left := _node_processes_left(before)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid, cmd in left.items():
            orphans.append(f"round {round_}: pid {pid} {cmd}")
            os.kill(pid, signal.SIGKILL)
    if orphans:
        pytest.fail("processes outlived their node:\n" + "\n".join(orphans))
