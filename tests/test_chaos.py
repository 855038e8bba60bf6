"""Chaos: real faults inflicted on real nodes, real Redis, multiprocTCPBase.

Part of the default run (about two and a half minutes); run alone with
``pytest -m chaos -s`` (``-s`` shows what each test inflicted and counted). Faults come
from a seeded ``random.Random``: the seed is printed, and ``VERK_CHAOS_SEED=<seed>``
replays a run.

1. a 5,000-job run whose node is SIGKILLed (every process) and restarted with the
   same node id, several times: every job runs, nothing is left but done;
2. random worker processes SIGKILLed mid-run: their running jobs go to retry as
   WorkerDiedError, everything else runs; the retries then run too;
3. Redis stopped for several seconds mid-run and restarted: nothing lost, no actor
   restarted, jobs whose own Redis calls failed are retried;
4. two nodes, one SIGKILLed: the other requeues its jobs within two heartbeats;
5. Redis refusing commands (12 s of ``OOM`` under maxmemory, a 9 s Lua script of
   another client answering ``BUSY``) on two busy nodes, and ``OOM`` on idle ones:
   nothing lost or run twice, no live node declared dead, no queue left wedged.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import signal
import threading
import time

import pytest
import redis

from tests.conftest import node_settings, wait_for
from tests.nodeproc import NodeProcess
from tests.servers import RedisServer, descendants, out_of_memory
from verk_actors import Client, QueueSpec
from verk_actors.actors.messages import GetStatus, VerkStatus
from verk_actors.actors.system import start_node
from verk_actors.store import keys

HEARTBEAT = 1.0
ENV = {"VERK_HEARTBEAT_INTERVAL": str(HEARTBEAT)}


@pytest.fixture
def rng(request) -> random.Random:
    """A seeded random source; the seed is printed (VERK_CHAOS_SEED replays it)."""
    seed = int(os.environ.get("VERK_CHAOS_SEED") or time.time_ns() % 2**32)
    print(f"\n[{request.node.name}] seed {seed}")
    return random.Random(seed)


@pytest.fixture
def nodes(node_processes: list[NodeProcess]) -> list[NodeProcess]:
    """Node processes a test starts; any still running at the end is killed."""
    return node_processes


def _ended(r, key: str = "log") -> collections.Counter:
    return collections.Counter(x[4:] for x in r.lrange(key, 0, -1) if x.startswith(b"end:"))


def _leftovers(r, node_ids: list[str]) -> dict[str, int]:
    """Jobs anywhere but done: queue, in-progress lists, retry, dead, schedule."""
    counts = {"queue": r.llen("queue:default")}
    for node_id in node_ids:
        counts[f"inprogress:{node_id}"] = r.llen(f"inprogress:default:{node_id}")
    counts.update(retry=r.zcard("retry"), dead=r.zcard("dead"), schedule=r.zcard("schedule"))
    return counts


def _make_retries_due(r) -> list[dict]:
    """Move every retry to now (instead of 16-76 s away); return the jobs moved."""
    moved = []
    for text in r.zrange("retry", 0, -1):
        r.zadd("retry", {text: 0}, xx=True)
        moved.append(json.loads(text))
    return moved


@pytest.mark.chaos
def test_node_sigkilled_and_restarted_during_5000_jobs(redis_server, r, rng, nodes) -> None:
    """A 5,000-job run survives 4 SIGKILLs of its whole node at random moments."""
    url = redis_server.url
    total, kills = 5000, 4
    args = ("--redis-url", url, "--node-id", "chaos", "--queue", "default=10")

    def start() -> NodeProcess:
        node = NodeProcess(*args, "--shutdown-timeout", "5", env=ENV)
        nodes.append(node)
        return node.start()

    node = start()
    with Client(url=url) as client:
        # 10 s of work for 10 workers: the four kills (each up to 1.2 s after the
        # restarted node takes jobs) all land mid-run, however fast the node drains.
        client.enqueue_many("Sleep", ([url, "log", i, 0.02] for i in range(total)))
    began = time.monotonic()
    inflicted = []
    for n in range(kills):
        # A random moment once this incarnation is taking jobs.
        wait_for(lambda: r.llen("inprogress:default:chaos") > 0, timeout=30, every=0.005)
        time.sleep(rng.uniform(0.05, 1.2))
        done, in_progress = len(_ended(r)), r.llen("inprogress:default:chaos")
        killed = node.kill_all()
        inflicted.append(
            f"kill {n + 1} at {time.monotonic() - began:.1f} s: {killed} processes, "
            f"{done} jobs done, {in_progress} in progress"
        )
        node = start()
    wait_for(lambda: len(_ended(r)) >= total, timeout=120)
    wait_for(lambda: not r.exists("inprogress:default:chaos"), timeout=20)
    ends = _ended(r)
    duplicates = {int(k): v for k, v in ends.items() if v > 1}
    left = _leftovers(r, ["chaos"])
    restarts = nodes[1:]
    took_over = sum("took over the lease of an earlier process" in n.output for n in restarts)
    waited = sum("holds this node id's lease; waiting" in n.output for n in restarts)
    print("inflicted:\n  " + "\n  ".join(inflicted))
    print(
        f"restarts with the same node id: {took_over} took the dead one's live lease over "
        f"at once, {len(restarts) - took_over - waited} found it expired, {waited} waited"
    )
    print(
        f"counted: {len(ends)} of {total} jobs ran, {sum(ends.values())} runs, "
        f"{sum(ends.values()) - len(ends)} duplicate runs of {len(duplicates)} jobs; "
        f"left: {left}; whole run {time.monotonic() - began:.1f} s"
    )
    assert sorted(int(k) for k in ends) == list(range(total))
    assert not any(left.values()), left
    assert waited == 0, "a restart on the same host need not wait for the dead one's lease"
    assert node.terminate() == 0


@pytest.mark.chaos
def test_random_worker_processes_sigkilled_mid_run(start_verk, redis_server, r, rng) -> None:
    """Workers SIGKILLed at random: their jobs go to retry (WorkerDiedError), the rest run."""
    url = redis_server.url
    total = 400
    node = start_verk(queues=(QueueSpec("default", 5),))
    with Client(url=url) as client:
        jids = client.enqueue_many("Sleep", ([url, "log", i, 0.05] for i in range(total)))
    token_of = {jid: i for i, jid in enumerate(jids)}
    killed = []
    wait_for(lambda: len(_ended(r)) > 20)
    while len(killed) < 8 and len(_ended(r)) < total - 50:
        time.sleep(rng.uniform(0.15, 0.5))
        workers = sorted(
            pid
            for pid, (_, state, cmd) in descendants().items()
            if cmd.startswith("WorkerActor") and state != "Z"
        )
        victim = rng.choice(workers)
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    def settled() -> bool:
        retried = {token_of[json.loads(t)["jid"]] for t in r.zrange("retry", 0, -1)}
        return (
            not r.exists(f"inprogress:default:{node.node_id}")
            and r.llen("queue:default") == 0
            and {int(k) for k in _ended(r)} | retried == set(range(total))
        )

    wait_for(settled, timeout=60)
    retry = [json.loads(t) for t in r.zrange("retry", 0, -1)]
    ends_before = _ended(r)
    print(
        f"inflicted: SIGKILL of {len(killed)} worker processes {killed}\n"
        f"counted: {len(ends_before)} jobs ended, {len(retry)} in retry "
        f"({collections.Counter(j['error_class'] for j in retry)}), dead {r.zcard('dead')}"
    )
    assert 0 < len(retry) <= len(killed)
    assert all(j["error_class"] == "WorkerDiedError" for j in retry)
    assert all("died" in j["error_message"] for j in retry)
    assert r.zcard("dead") == 0

    _make_retries_due(r)
    wait_for(lambda: len(_ended(r)) == total and r.zcard("retry") == 0, timeout=30)
    wait_for(lambda: not r.exists(f"inprogress:default:{node.node_id}"), timeout=10)
    ends = _ended(r)
    print(
        f"after the retries ran: {len(ends)} of {total} jobs ended, "
        f"{sum(ends.values()) - len(ends)} duplicate runs; left {_leftovers(r, [node.node_id])}"
    )
    assert not any(_leftovers(r, [node.node_id]).values())
    status = node.asys.ask(node.root, GetStatus(), 10)
    assert isinstance(status, VerkStatus) and status.running
    node.stop()


@pytest.mark.chaos
def test_redis_stopped_for_seconds_mid_run(asys, rng) -> None:
    """Redis down for 4-8 s mid-run and restarted: nothing lost, no actor restarted."""
    server = RedisServer(persist=True).start()
    r = server.client()
    try:
        total = 1000
        url = server.url
        root, started = start_node(asys, node_settings(url, queues=(QueueSpec("default", 5),)))
        with Client(url=url) as client:
            client.enqueue_many("Sleep", ([url, "log", i, 0.01] for i in range(total)))
        stop_after = rng.randint(150, 500)
        outage = rng.uniform(4.0, 8.0)
        wait_for(lambda: len(_ended(r)) >= stop_after, timeout=60)
        done_at_stop = len(_ended(r))
        server.stop()
        time.sleep(outage)
        server.start()
        r = server.client()
        r.script_flush()  # a restarted server knows no scripts: NOSCRIPT must be handled
        retried: dict[str, str] = {}

        def all_ended() -> bool:
            # Jobs whose own Redis calls failed went to retry: make them due now.
            for job in _make_retries_due(r):
                retried[job["jid"]] = job["error_class"]
            return len(_ended(r)) >= total

        wait_for(all_ended, timeout=90)
        node = started.node_id
        wait_for(lambda: not r.exists(f"inprogress:default:{node}"), timeout=20)
        wait_for(lambda: r.zcard("retry") == 0, timeout=20)
        status = asys.ask(root, GetStatus(), 10)
        ends = _ended(r)
        left = _leftovers(r, [node])
        print(
            f"inflicted: Redis stopped after {done_at_stop} jobs, for {outage:.1f} s, "
            f"restarted with an empty script cache\n"
            f"counted: {len(ends)} of {total} jobs ended, "
            f"{sum(ends.values()) - len(ends)} duplicate runs; {len(retried)} jobs retried "
            f"({collections.Counter(retried.values())}); left {left}; "
            f"restarts {[(q.name, q.restarts) for q in status.queues]}"
        )
        assert sorted(int(k) for k in ends) == list(range(total))
        assert not any(left.values()), left
        assert isinstance(status, VerkStatus) and status.running
        assert all(q.restarts == 0 for q in status.queues), "no actor left dead or restarted"
        redis_errors = {"ConnectionError", "TimeoutError", "BusyLoadingError"}
        assert set(retried.values()) <= redis_errors, "only jobs whose Redis calls failed"
        assert r.exists(keys.node_lease_key(node))
    finally:
        r.close()
        server.cleanup()


@pytest.mark.chaos
def test_two_nodes_one_killed_the_other_recovers_within_two_heartbeats(
    redis_server, r, rng, nodes
) -> None:
    """Of two busy nodes one is SIGKILLed; the other requeues its jobs within two heartbeats."""
    url = redis_server.url
    total = 2000
    for node_id in ("a", "b"):
        node = NodeProcess(
            "--redis-url", url, "--node-id", node_id, "--queue", "default=4", env=ENV
        )
        nodes.append(node.start())
    a, b = nodes
    with Client(url=url) as client:  # about 5 s of work for the two nodes
        client.enqueue_many("Sleep", ([url, "log", i, 0.02] for i in range(total)))
    time.sleep(rng.uniform(0.3, 1.5))
    wait_for(lambda: r.llen("inprogress:default:a") > 0, timeout=10, every=0.001)
    killed_at = time.monotonic()
    killed = a.kill_all()
    in_progress = r.llen("inprogress:default:a")
    done = len(_ended(r))
    wait_for(lambda: r.llen("inprogress:default:a") == 0, timeout=10, every=0.005)
    recovered = time.monotonic() - killed_at
    wait_for(lambda: len(_ended(r)) >= total, timeout=90)
    wait_for(lambda: not r.exists("inprogress:default:b"), timeout=20)
    ends = _ended(r)
    left = _leftovers(r, ["a", "b"])
    print(
        f"inflicted: SIGKILL of node a ({killed} processes) with {in_progress} jobs in "
        f"progress, {done} of {total} done\n"
        f"counted: a's jobs requeued by b {recovered:.2f} s after the kill (limit "
        f"{2 * HEARTBEAT:g} s); {len(ends)} of {total} jobs ended, "
        f"{sum(ends.values()) - len(ends)} duplicate runs; left {left}"
    )
    assert in_progress > 0
    assert recovered <= 2 * HEARTBEAT
    assert sorted(int(k) for k in ends) == list(range(total))
    assert not any(left.values()), left
    wait_for(lambda: not r.sismember(keys.NODES, "a"))
    assert b.terminate() == 0


# --- Redis error replies -------------------------------------------------------------------

BUSY_SCRIPT = (
    "local function now() local t = redis.call('TIME') return t[1] + t[2] / 1e6 end "
    "local e = now() + tonumber(ARGV[1]) while now() < e do end return 1"
)
DEAD_LINE = re.compile(r"node (\S+): node (\S+) is dead \(no lease\)")


def _busy_script(url: str, seconds: int) -> threading.Thread:
    """Another client runs a Lua script for ``seconds``: Redis answers ``BUSY`` meanwhile."""

    def run() -> None:
        client = redis.Redis.from_url(url, socket_timeout=seconds + 30)
        try:
            client.eval(BUSY_SCRIPT, 0, seconds)
        finally:
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _two_nodes(url: str, nodes: list[NodeProcess]) -> tuple[NodeProcess, NodeProcess]:
    for node_id in ("a", "b"):
        node = NodeProcess(
            "--redis-url", url, "--node-id", node_id, "--queue", "default=4", env=ENV
        )
        nodes.append(node.start())
    return nodes[0], nodes[1]


def _declared_dead(*nodes: NodeProcess) -> list[str]:
    return [m[0] for node in nodes for m in DEAD_LINE.finditer(node.output)]


def _beating(r, node_ids: tuple[str, ...]) -> bool:
    """Every node holds its lease and has described itself within two heartbeats."""
    now = time.time()
    for node_id in node_ids:
        beat = r.hget(keys.node_info_key(node_id), "beat")
        if not r.exists(keys.node_lease_key(node_id)) or beat is None:
            return False
        if now - float(beat) > 2 * HEARTBEAT or not r.sismember(keys.NODES, node_id):
            return False
    return True


def _run_through_redis_refusals(url: str, r, nodes: list[NodeProcess], inflict, what: str) -> None:
    """Two busy nodes; ``inflict()`` makes Redis refuse commands for a while. Afterwards
    every job has ended exactly once, nothing is left, no node declared the other dead,
    and both still beat."""
    a, b = _two_nodes(url, nodes)
    total = 1500
    with Client(url=url) as client:  # about 4 s of work for the two nodes
        client.enqueue_many("Sleep", ([url, "log", i, 0.02] for i in range(total)))
    wait_for(lambda: len(_ended(r)) >= 200, timeout=30)
    done_before = len(_ended(r))
    began = time.monotonic()
    inflict()
    lasted = time.monotonic() - began
    retried: dict[str, str] = {}

    def all_ended() -> bool:
        for job in _make_retries_due(r):  # jobs whose own Redis writes were refused
            retried[job["jid"]] = job["error_class"]
        return len(_ended(r)) >= total

    wait_for(all_ended, timeout=120)
    wait_for(lambda: not r.exists("inprogress:default:a", "inprogress:default:b"), timeout=20)
    wait_for(lambda: r.zcard("retry") == 0, timeout=20)
    wait_for(lambda: not _declared_dead(a, b) and _beating(r, ("a", "b")), timeout=10)
    ends = _ended(r)
    left = _leftovers(r, ["a", "b"])
    print(
        f"inflicted: {what} for {lasted:.1f} s after {done_before} of {total} jobs\n"
        f"counted: {len(ends)} jobs ended, {sum(ends.values()) - len(ends)} duplicate runs; "
        f"{len(retried)} retried ({collections.Counter(retried.values())}); left {left}; "
        f"declared dead: {_declared_dead(a, b)}"
    )
    assert not _declared_dead(a, b), "a live node was declared dead"
    assert sorted(int(k) for k in ends) == list(range(total))
    assert set(ends.values()) == {1}, "a job ran twice"
    assert not any(left.values()), left
    assert a.terminate() == 0
    assert b.terminate() == 0


@pytest.mark.chaos
def test_redis_out_of_memory_for_12_s_mid_run(redis_server, r, nodes) -> None:
    """12 s of OOM replies mid-run: no job lost or run twice, no node declared dead."""

    def inflict() -> None:
        with out_of_memory(r):
            time.sleep(12)

    _run_through_redis_refusals(redis_server.url, r, nodes, inflict, "maxmemory OOM")


@pytest.mark.chaos
def test_lua_script_busy_for_9_s_mid_run(redis_server, r, nodes) -> None:
    """A 9 s Lua script of another client (BUSY replies) mid-run: nothing lost or run twice."""

    def inflict() -> None:
        _busy_script(redis_server.url, 9).join(30)

    what = "a Lua script of another client"
    _run_through_redis_refusals(redis_server.url, r, nodes, inflict, what)


@pytest.mark.chaos
def test_redis_out_of_memory_for_12_s_while_idle(redis_server, r, nodes) -> None:
    """12 s of OOM replies on idle nodes: both keep their leases, and jobs enqueued after
    Redis recovers run at once (no queue stays wedged on standby)."""
    url = redis_server.url
    a, b = _two_nodes(url, nodes)
    time.sleep(1.5)  # idle: a worker of each node waits on the queue (standby)
    with out_of_memory(r):
        time.sleep(12)
    wait_for(lambda: _beating(r, ("a", "b")), timeout=10)
    began = time.monotonic()
    with Client(url=url) as client:
        client.enqueue_many("Record", ([url, "ran", i] for i in range(200)))
    wait_for(lambda: r.llen("ran") >= 200, timeout=15)
    took = time.monotonic() - began
    print(
        f"inflicted: maxmemory OOM for 12 s on idle nodes\ncounted: 200 jobs enqueued "
        f"after it ran in {took:.2f} s; declared dead: {_declared_dead(a, b)}"
    )
    assert not _declared_dead(a, b), "a live node was declared dead"
    assert sorted(int(x) for x in r.lrange("ran", 0, -1)) == list(range(200))
    assert a.terminate() == 0
    assert b.terminate() == 0
