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

from verk_actors.config.file import load_config, resolve_settings
from verk_actors.config.settings import QueueSpec, Settings
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
from verk_actors.jobs.job import Job
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.jobs.stored_job import StoredJob
from verk_actors.jobs.worker import Worker
from verk_actors.store.admin.job_sets import JobSet, RetryAllResult, SetEntry
from verk_actors.store.admin.nodes import NodeInfo, list_nodes
from verk_actors.store.admin.pause import is_paused, pause_queue, paused_queues, resume_queue
from verk_actors.store.admin.queues import Queue, queue_names
from verk_actors.store.admin.stats import history, queue_stats, snapshot, totals
from verk_actors.store.client import Client, enqueue, enqueue_at, enqueue_in, enqueue_many

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
