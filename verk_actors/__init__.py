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
from verk_actors.errors import (
    ActorSystemError,
    ConfigurationError,
    InvalidJobError,
    JobError,
    JobTimeoutError,
    MalformedJobError,
    RedisUnavailableError,
    UnknownWorkerError,
    VerkError,
    WorkerDiedError,
)
from verk_actors.job import Job
from verk_actors.registry import WorkerRegistry
from verk_actors.settings import QueueSpec, Settings
from verk_actors.worker import Worker

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ActorSystemError",
    "Client",
    "ConfigurationError",
    "InvalidJobError",
    "Job",
    "JobError",
    "JobTimeoutError",
    "MalformedJobError",
    "QueueSpec",
    "RedisUnavailableError",
    "Settings",
    "UnknownWorkerError",
    "VerkError",
    "Worker",
    "WorkerDiedError",
    "WorkerRegistry",
    "enqueue",
    "enqueue_at",
    "enqueue_in",
    "enqueue_many",
]
