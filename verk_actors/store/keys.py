"""Every Redis key name verk_actors uses, in one place.

What each key holds, and how the layout matches Sidekiq's and Verk's, is described in
``verk_actors/store/CONTRACT.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

QUEUES = "queues"
SCHEDULE = "schedule"
RETRY = "retry"
DEAD = "dead"
NODES = "verk_nodes"
STAT_PROCESSED = "stat:processed"
STAT_FAILED = "stat:failed"


def queue_key(queue: str) -> str:
    """The list of pending jobs of ``queue``."""
    return f"queue:{queue}"


def inprogress_key(queue: str, node_id: str) -> str:
    """The list of jobs of ``queue`` taken by ``node_id`` and not yet acknowledged."""
    return f"inprogress:{queue}:{node_id}"


INPROGRESS_PATTERN = "inprogress:*"
"""``SCAN`` pattern matching every in-progress list."""


def inprogress_owner(key: str, queues: Iterable[str]) -> tuple[str, str] | None:
    """``(queue, node id)`` of an ``inprogress_key``, given the known queue names.

    None when no known queue fits, or more than one (queue names and node ids may
    hold ``:``, so ``inprogress:a:b:c`` could be queue ``a`` or queue ``a:b``).
    """
    prefix = "inprogress:"
    if not key.startswith(prefix):
        return None
    rest = key[len(prefix) :]
    fits = [
        (queue, rest[len(queue) + 1 :])
        for queue in queues
        if len(rest) > len(queue) + 1 and rest.startswith(queue) and rest[len(queue)] == ":"
    ]
    return fits[0] if len(fits) == 1 else None


def node_lease_key(node_id: str) -> str:
    """The heartbeat lease of a node: present while the node is alive."""
    return f"verk:node:{node_id}"


def node_queues_key(node_id: str) -> str:
    """The set of queues whose in-progress lists ``node_id`` may hold."""
    return f"verk:node:{node_id}:queues"


def processed_day_key(day: str) -> str:
    """Per-day (UTC, ``yyyy-mm-dd``) count of executions."""
    return f"{STAT_PROCESSED}:{day}"


def failed_day_key(day: str) -> str:
    """Per-day (UTC, ``yyyy-mm-dd``) count of failed executions."""
    return f"{STAT_FAILED}:{day}"


def processed_queue_key(queue: str) -> str:
    """Per-queue count of executions."""
    return f"{STAT_PROCESSED}:{queue}"


def failed_queue_key(queue: str) -> str:
    """Per-queue count of failed executions."""
    return f"{STAT_FAILED}:{queue}"


PAUSED = "verk:paused"
"""Set of queue names paused cluster-wide; every node stops taking their jobs."""

PROCESSES = "processes"
"""Sidekiq's set of live process identities (its web UI's Busy page)."""


def process_identity(host: str, pid: int, node_id: str) -> str:
    """A node's Sidekiq process identity (also the key of its process hash)."""
    return f"{host}:{pid}:{node_id}"


def process_workers_key(identity: str) -> str:
    """Sidekiq's hash of what a process is running now (thread id -> JSON)."""
    return f"{identity}:workers"


def process_signals_key(identity: str) -> str:
    """Sidekiq's list of signals for a process: Sidekiq's Web (and ``verk-actors``)
    ``LPUSH`` ``TSTP`` (quiet) or ``TERM`` (stop); the process pops one a heartbeat."""
    return f"{identity}-signals"


SIGNALS_TTL = 60
"""Seconds a signals list lives after a push (Sidekiq's own value)."""


def node_info_key(node_id: str) -> str:
    """Hash describing a live node (host, pid, started_at, queues, admin port...)."""
    return f"verk:node:{node_id}:info"


def node_running_key(node_id: str) -> str:
    """Hash of the jobs a node's workers run now (``<queue>-<worker>`` -> Sidekiq work JSON)."""
    return f"verk:node:{node_id}:running"


CRON_ENTRIES = "verk:cron"
"""Set of the names of the cron entries nodes have run (``verk-actors cron list``)."""


def cron_entry_key(name: str) -> str:
    """Hash of a cron entry: its spec, when a node last had it, its last tick and job."""
    return f"verk:cron:{name}"


def cron_tick_key(name: str, tick: int) -> str:
    """A cron entry's claim on one tick (unix seconds): present once its job is enqueued."""
    return f"verk:cron:{name}:{tick}"


def unique_lock_key(digest: str) -> str:
    """A unique job's lock: holds the jid of the job that took it, until it is freed."""
    return f"verk:unique:{digest}"


BATCHES = "verk:batches"
"""Sorted set of batch ids by creation time (unix seconds): ``verk-actors batches``."""


def batch_key(bid: str) -> str:
    """Hash of a batch: description, total, counts, callbacks and when they fired."""
    return f"verk:batch:{bid}"


def batch_pending_key(bid: str) -> str:
    """Set of the jids of a batch's jobs that have not succeeded yet."""
    return f"verk:batch:{bid}:pending"


def batch_failed_key(bid: str) -> str:
    """Set of the pending jids of a batch whose last try failed."""
    return f"verk:batch:{bid}:failed"


LIMITS = "verk:limits"
"""Set of the names of the rate and concurrency limiters jobs have taken."""


def limit_key(name: str) -> str:
    """Hash of a limiter: ``kind``, ``limit``, ``lease`` or ``per``, ``used_at``."""
    return f"verk:limit:{name}"


def limit_slots_key(name: str) -> str:
    """A Concurrent limiter's held slots: holder -> end of its lease (unix seconds)."""
    return f"verk:limit:{name}:concurrent"


def limit_window_key(name: str) -> str:
    """A Window limiter's takes in its last window: take -> when (unix seconds)."""
    return f"verk:limit:{name}:window"
