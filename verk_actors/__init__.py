"""verk_actors: Sidekiq-compatible background jobs on Redis, run by a Thespian actor tree.

::

    from verk_actors import Worker, enqueue

    class HardWorker(Worker):
        def perform(self, name, count):
            ...

    enqueue(HardWorker, "bob", 5, url="redis://localhost:6379/0")
"""

from __future__ import annotations

import logging

from verk_actors.client import Client, enqueue, enqueue_at, enqueue_in, enqueue_many
from verk_actors.config_file import load_config, resolve_settings
from verk_actors.control import is_paused, pause_queue, paused_queues, resume_queue
from verk_actors.errors import (
    ActorSystemError,
    AsyncWorkerError,
    ConfigurationError,
    InvalidJobError,
    JobError,
    JobTimeoutError,
    MalformedJobError,
    NotFoundError,
    RedisUnavailableError,
    UnknownWorkerError,
    VerkError,
    WorkerDiedError,
)
from verk_actors.job import Job
from verk_actors.job_sets import JobSet, RetryAllResult, SetEntry
from verk_actors.nodes import NodeInfo, list_nodes
from verk_actors.queues import Queue, queue_names
from verk_actors.registry import WorkerRegistry
from verk_actors.settings import QueueSpec, Settings
from verk_actors.stats import history, queue_stats, snapshot, totals
from verk_actors.stored_job import StoredJob
from verk_actors.worker import Worker

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ActorSystemError",
    "AsyncWorkerError",
    "Client",
    "ConfigurationError",
    "InvalidJobError",
    "Job",
    "JobError",
    "JobSet",
    "JobTimeoutError",
    "MalformedJobError",
    "NodeInfo",
    "NotFoundError",
    "Queue",
    "QueueSpec",
    "RedisUnavailableError",
    "RetryAllResult",
    "SetEntry",
    "Settings",
    "StoredJob",
    "UnknownWorkerError",
    "VerkError",
    "Worker",
    "WorkerDiedError",
    "WorkerRegistry",
    "enqueue",
    "enqueue_at",
    "enqueue_in",
    "enqueue_many",
    "history",
    "is_paused",
    "list_nodes",
    "load_config",
    "pause_queue",
    "paused_queues",
    "queue_names",
    "queue_stats",
    "resolve_settings",
    "resume_queue",
    "snapshot",
    "totals",
]
