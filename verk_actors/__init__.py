"""verk_actors: Sidekiq-compatible background jobs on Redis, run by a Thespian actor tree.

::

    from verk_actors import Worker, enqueue

    class HardWorker(Worker):
        def perform(self, name, count):
            ...

    enqueue(HardWorker, "bob", 5, url="redis://localhost:6379/0")

The actor side (``VerkRoot``, ``start_actor_system``, ``start_node``, ``stop_node``,
``prepare_thespian``) is imported on first use: code that only enqueues does not load
Thespian.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from verk_actors.config.file import load_config, resolve_settings
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import Settings
from verk_actors.errors import (
    ActorSystemError,
    AsyncWorkerError,
    ConfigurationError,
    InvalidJobError,
    JobError,
    JobTimeoutError,
    MalformedJobError,
    NotFoundError,
    OverLimitError,
    RedisUnavailableError,
    UnknownWorkerError,
    VerkError,
    WorkerDiedError,
)
from verk_actors.jobs.hooks import JobContext, add_death_handler, add_error_handler
from verk_actors.jobs.job import Job
from verk_actors.jobs.lifecycle import WorkerProcess, on_worker_start, on_worker_stop
from verk_actors.jobs.limits import Concurrent, Window, limited
from verk_actors.jobs.middleware import add_client_middleware, add_server_middleware
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.jobs.stored_job import StoredJob
from verk_actors.jobs.worker import Worker
from verk_actors.store.admin.job_sets import JobSet, RetryAllResult, SetEntry
from verk_actors.store.admin.nodes import NodeInfo, list_nodes
from verk_actors.store.admin.pause import is_paused, pause_queue, paused_queues, resume_queue
from verk_actors.store.admin.queues import Queue, queue_names
from verk_actors.store.admin.stats import history, queue_stats, snapshot, totals
from verk_actors.store.batches import Batch, BatchCallback, batch_status, list_batches
from verk_actors.store.client import Client, enqueue, enqueue_at, enqueue_in, enqueue_many

if TYPE_CHECKING:
    from verk_actors.actors._thespian import apply as prepare_thespian
    from verk_actors.actors.root import VerkRoot
    from verk_actors.actors.system import start_actor_system, start_node, stop_node

logging.getLogger(__name__).addHandler(logging.NullHandler())

_ACTOR_SIDE = {
    "VerkRoot": ("verk_actors.actors.root", "VerkRoot"),
    "start_actor_system": ("verk_actors.actors.system", "start_actor_system"),
    "start_node": ("verk_actors.actors.system", "start_node"),
    "stop_node": ("verk_actors.actors.system", "stop_node"),
    "prepare_thespian": ("verk_actors.actors._thespian", "apply"),
}


def __getattr__(name: str) -> Any:
    """The actor side, loaded when first asked for (PEP 562)."""
    if name not in _ACTOR_SIDE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _ACTOR_SIDE[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


__all__ = [
    "ActorSystemError",
    "AsyncWorkerError",
    "Batch",
    "BatchCallback",
    "Client",
    "Concurrent",
    "ConfigurationError",
    "InvalidJobError",
    "Job",
    "JobContext",
    "JobError",
    "JobSet",
    "JobTimeoutError",
    "MalformedJobError",
    "NodeInfo",
    "NotFoundError",
    "OverLimitError",
    "Queue",
    "QueueSpec",
    "RedisUnavailableError",
    "RetryAllResult",
    "SetEntry",
    "Settings",
    "StoredJob",
    "UnknownWorkerError",
    "VerkError",
    "VerkRoot",
    "Window",
    "Worker",
    "WorkerDiedError",
    "WorkerProcess",
    "WorkerRegistry",
    "add_client_middleware",
    "add_death_handler",
    "add_error_handler",
    "add_server_middleware",
    "batch_status",
    "enqueue",
    "enqueue_at",
    "enqueue_in",
    "enqueue_many",
    "history",
    "is_paused",
    "limited",
    "list_batches",
    "list_nodes",
    "load_config",
    "on_worker_start",
    "on_worker_stop",
    "pause_queue",
    "paused_queues",
    "prepare_thespian",
    "queue_names",
    "queue_stats",
    "resolve_settings",
    "resume_queue",
    "snapshot",
    "start_actor_system",
    "start_node",
    "stop_node",
    "totals",
]
