"""Nobody but the node talks to its actors: loopback only, one listener per process, and
frames without the node's MAC dropped before they are unpickled."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.attack import (
    ACK,
    REFUSED,
    CreatesFile,
    deliver,
    forged,
    frame,
    listeners_of,
)
from tests.conftest import ask_for, wait_for
from tests.nodeproc import ROOT, NodeProcess
from tests.servers import RedisServer, descendants, free_port
from verk_actors.actors import _thespian as thespian_fixes
from verk_actors.actors._keyring import node_key
from verk_actors.actors._node_key import key_path, read_key
from verk_actors.actors.messages import Enqueue, GetStatus, StopVerk, VerkStatus
from verk_actors.errors import ActorSystemError

FORGED_QUEUE = "forged"


def node_ports(pids: list[int]) -> dict[str, int]:
    """The listening port of each of these processes, by its process title."""
    table = descendants()
    ports = {}
    for pid, held in listeners_of(pids).items():
        title = table.get(pid, (0, "", ""))[2].split(" ")[0]
        for _, port, _ in held:
            ports[f"{title}:{pid}"] = port
    return ports


def assert_loopback_and_unshared(pids: list[int]) -> None:
    held = listeners_of(pids)
    every = [(pid, *sock) for pid, socks in held.items() for sock in socks]
    print("listeners:", every)
    assert len(every) >= 9, every  # admin, logger, root, managers, supervisor, workers
    assert all(address == "127.0.0.1" for _, address, _, _ in every), every
    inodes = [inode for *_, inode in every]
    assert len(inodes) == len(set(inodes)), "a listening socket is held by two processes"
    assert all(len(socks) <= 1 for socks in held.values()), held


def attack(ports: dict[str, int], tmp_path: Path) -> dict[str, list[bytes]]:
    """Every unauthenticated frame to every port; return what each port answered."""
    answers: dict[str, list[bytes]] = {}
    for name, port in ports.items():
        target = tmp_path / f"pwned-{port}"
        payloads = [
            pickle.dumps(CreatesFile(target)),
            forged(Enqueue("Noop", (), queue=FORGED_QUEUE)),
            forged(StopVerk()),
        ]
        answers[name] = [
            deliver(port, frame(payload, mac)) for payload in payloads for mac in ("none", "wrong")
        ]
    return answers


def assert_nothing_ran(answers: dict[str, list[bytes]], tmp_path: Path, r: redis.Redis) -> None:
    refused = {name: [a == REFUSED for a in got] for name, got in answers.items()}
    assert all(all(v) for v in refused.values()), refused
    assert list(tmp_path.glob("pwned-*")) == []
    assert r.llen(f"queue:{FORGED_QUEUE}") == 0


def test_the_file_payload_runs_when_unpickled(tmp_path: Path) -> None:
    """The attack payload is real: unpickling it creates its file (so the tests below can fail)."""
    target = tmp_path / "proof"
    pickle.loads(pickle.dumps(CreatesFile(target)))
    assert target.exists()


ACTORS_OF_A_NODE = 14
"""Admin, logger, VerkRoot, 3 managers, a queue's supervisor, 2 managers and 5 workers."""


def in_process_node() -> list[int]:
    """The actor processes below the test process."""
    table = descendants()
    return [p for p, (_, state, cmd) in table.items() if state != "Z" and "ActorAddr" in cmd]


def started_node_pids(processes: Callable[[], list[int]], listeners: int) -> list[int]:
    """``processes()`` once ``listeners`` of them listen (a node is up once all are)."""

    def all_listening() -> list[int]:
        pids = processes()
        held = listeners_of(pids)
        return pids if sum(bool(h) for h in held.values()) >= listeners else []

    pids: list[int] = wait_for(all_listening)
    return pids


def test_a_node_listens_on_loopback_only_one_socket_per_process(start_verk, asys) -> None:
    """Every process of a node (admin, logger, each actor) listens on 127.0.0.1 only, and
    holds no listening socket of another process (none inherited by fork)."""
    start_verk()
    assert_loopback_and_unshared(started_node_pids(in_process_node, ACTORS_OF_A_NODE))


def test_frames_without_the_key_run_nothing_on_an_embedded_node(
    start_verk, asys, r, tmp_path: Path
) -> None:
    """To the admin and every actor port of a node started by the embedding API: a pickle
    that creates a file, a forged Enqueue and a forged StopVerk, each without a MAC and
    with a wrong one, are all refused unread; the same Enqueue sealed with the node's key
    is taken, and the node keeps working."""
    node = start_verk()
    ports = node_ports(started_node_pids(in_process_node, ACTORS_OF_A_NODE))
    assert any(name.startswith("MultiProcAdmin") for name in ports), ports
    answers = attack(ports, tmp_path)
    assert_nothing_ran(answers, tmp_path, r)
    status = ask_for(asys, node.root, GetStatus(), VerkStatus)
    assert status.running
    root_port = next(p for name, p in ports.items() if name.startswith("VerkRoot"))
    enqueue = forged(Enqueue("Noop", (), queue=FORGED_QUEUE))
    sealed = frame(enqueue, "key", node_key(None))
    assert deliver(root_port, sealed) == ACK
    wait_for(lambda: r.llen(f"queue:{FORGED_QUEUE}") == 1)


@pytest.fixture
def cli_node(redis_server: RedisServer, tmp_path: Path) -> Any:
    node = NodeProcess("--redis-url", redis_server.url, "--queue", "default=2").start()
    yield node
    if node.process is not None and node.process.poll() is None:
        node.terminate()


def test_frames_without_the_key_run_nothing_on_verk_actors_start(
    cli_node: NodeProcess, r: redis.Redis, tmp_path: Path
) -> None:
    """The same attack on every port of a node run by ``verk-actors start``: nothing runs,
    one rate-limited warning is logged, the key file is private, and a frame sealed with
    the key from that file is taken."""
    # The launcher, and a node with two workers: 11 actors.
    pids = started_node_pids(cli_node.processes, 12)
    assert_loopback_and_unshared(pids)
    ports = node_ports(pids)
    assert any(name.startswith("MultiProcAdmin") for name in ports), ports
    answers = attack(ports, tmp_path)
    assert_nothing_ran(answers, tmp_path, r)
    cli_node.wait_for_line("without a valid MAC")
    warnings = [line for line in cli_node.lines if "without a valid MAC" in line]
    warned = [line.split(" pid ")[1].split()[0] for line in warnings]
    assert len(warned) == len(set(warned)), warnings  # one per process, not one per frame
    path = key_path(cli_node.admin_port)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    root_port = next(p for name, p in ports.items() if name.startswith("VerkRoot"))
    enqueue = forged(Enqueue("Noop", (), queue=FORGED_QUEUE))
    sealed = frame(enqueue, "key", read_key(cli_node.admin_port))
    assert deliver(root_port, sealed) == ACK
    wait_for(lambda: r.llen(f"queue:{FORGED_QUEUE}") == 1)
    r.rpush("queue:default", '{"class":"Noop","args":[],"jid":"after-attack","queue":"default"}')
    wait_for(lambda: r.get("stat:processed") == b"1")
    assert cli_node.process is not None and cli_node.process.poll() is None


def test_the_tree_command_reads_the_key_and_fails_clearly_without_it(
    cli_node: NodeProcess, redis_server: RedisServer, tmp_path: Path
) -> None:
    """``verk-actors tree`` joins the node with the key from its file; with no key file
    (another runtime directory) it exits 1 saying the key is missing, and joins nothing."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "verk_actors", "tree", "--redis-url", redis_server.url]
    ok = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "WorkersManager" in ok.stdout
    elsewhere = tmp_path / "runtime"
    elsewhere.mkdir(mode=0o700)
    keyless = subprocess.run(
        command,
        check=False,
        env={**env, "XDG_RUNTIME_DIR": str(elsewhere)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert keyless.returncode == 1, keyless.stderr
    assert "no key for the node on admin port" in keyless.stderr


def test_a_second_node_on_the_first_nodes_admin_port_is_refused(
    cli_node: NodeProcess, redis_server: RedisServer, r: redis.Redis
) -> None:
    """A second ``start`` given the first node's --admin-port exits 2 at once, saying why,
    and the first node keeps running and taking jobs."""
    second = NodeProcess("--redis-url", redis_server.url, "--admin-port", str(cli_node.admin_port))
    second._before = set(descendants())
    done = subprocess.run(
        [sys.executable, *second.args],
        check=False,
        env=second.env,
        cwd=second.cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"admin port {cli_node.admin_port} is in use" in done.stderr
    time.sleep(1)
    assert cli_node.process is not None and cli_node.process.poll() is None
    r.rpush("queue:default", '{"class":"Noop","args":[],"jid":"still-working","queue":"default"}')
    wait_for(lambda: r.get("stat:processed") == b"1")


JOIN_WITHOUT_THE_KEY = """
import sys
from thespian.actors import ActorSystem
try:
    system = ActorSystem("multiprocTCPBase", {"Admin Port": int(sys.argv[1])}, transientUnique=True)
    system.createActor("tests.jobs.Noop")
except Exception as exc:
    print("refused:", type(exc).__name__)
    sys.exit(3)
print("joined")
"""


def test_a_plain_thespian_process_cannot_join_the_nodes_admin(
    cli_node: NodeProcess, r: redis.Redis
) -> None:
    """A process running Thespian without the node's key (as an attacker would) is refused
    when it joins the node's admin port, and the node keeps taking jobs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    joined = subprocess.run(
        [sys.executable, "-c", JOIN_WITHOUT_THE_KEY, str(cli_node.admin_port)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert joined.returncode == 3, (joined.stdout, joined.stderr)
    assert "refused: InvalidActorAddress" in joined.stdout
    r.rpush("queue:default", '{"class":"Noop","args":[],"jid":"after-join","queue":"default"}')
    wait_for(lambda: r.get("stat:processed") == b"1")


UNPROTECTED_SYSTEM = """
import sys
from thespian.actors import ActorSystem
from verk_actors.actors.messages import ConfigureVerk, RequestFailed
from verk_actors.actors.root import VerkRoot
from verk_actors.config.settings import Settings
system = ActorSystem("multiprocTCPBase", {"Admin Port": int(sys.argv[1])}, transientUnique=True)
try:
    root = system.createActor(VerkRoot)
    reply = system.ask(root, ConfigureVerk(Settings(redis_url=sys.argv[2])), 30)
    print(reply.message if isinstance(reply, RequestFailed) else f"accepted: {reply!r}")
finally:
    system.shutdown()
"""


def test_verk_root_refuses_a_system_started_without_the_changes(redis_server: RedisServer) -> None:
    """VerkRoot on a multiprocTCPBase started without ``verk_actors.prepare_thespian()``
    (open ports, unauthenticated frames) refuses ConfigureVerk, saying how to start a
    protected one."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", UNPROTECTED_SYSTEM, str(free_port()), redis_server.url],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "verk_actors.prepare_thespian()" in done.stdout, done.stdout


def test_an_unknown_thespian_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``apply`` refuses a Thespian other than the one its changes were written for, naming
    the version to install."""
    monkeypatch.setattr(thespian_fixes.importlib.metadata, "version", lambda _: "4.0.2")
    with pytest.raises(ActorSystemError, match=r"install thespian==4\.0\.1"):
        thespian_fixes.apply()
