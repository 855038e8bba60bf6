"""Every error verk_actors raises or reports, under one root.

::

    VerkError
    ├── ConfigurationError        bad settings, queue specs, Redis URLs, imports
    │   └── AsyncWorkerError      an async perform where no queue in async mode awaits it
    ├── RedisUnavailableError     Redis could not be reached or answered an error
    ├── ActorSystemError          the actor system cannot run verk_actors as asked
    │   └── UnauthenticatedFrameError  a frame without the node's MAC, dropped unread
    ├── NotFoundError             no job with that jid in a set or queue, no such queue
    └── JobError                  something about one job
        ├── InvalidJobError       refused at enqueue: bad args, queue, class or time
        ├── MalformedJobError     a job text read from Redis that is not a usable job
        ├── UnknownWorkerError    the job names a class that is not a registered worker
        ├── JobTimeoutError       the job ran past its time limit
        ├── WorkerDiedError       the worker process died while running the job
        └── OverLimitError        a rate or concurrency limiter is full: the job waits

Each message says what was wrong and what to do about it.
"""

from __future__ import annotations


class VerkError(Exception):
    """The root of every verk_actors error."""


class ConfigurationError(VerkError):
    """A setting, queue spec, URL or import list cannot be used."""


class AsyncWorkerError(ConfigurationError):
    """A worker's ``perform`` is a coroutine function (``async def``), or returned an
    awaitable, where nothing awaits it: only a queue in async mode does."""


class RedisUnavailableError(VerkError):
    """Redis could not be reached, or refused a command."""


class ActorSystemError(VerkError):
    """The Thespian actor system cannot run verk_actors the way it was asked to."""


class UnauthenticatedFrameError(ActorSystemError):
    """A frame reached a node's port without a valid MAC; it was dropped before unpickling."""


class NotFoundError(VerkError):
    """What was asked for (a job by jid, a queue) is not in Redis, or was just taken."""


class JobError(VerkError):
    """Something is wrong with one job."""


class InvalidJobError(JobError):
    """A job was refused at enqueue time; nothing was written to Redis."""


class MalformedJobError(JobError):
    """A job text read from Redis is not valid JSON, not an object, or has no class."""


class UnknownWorkerError(JobError):
    """A job names a class that is not a registered worker."""


class JobTimeoutError(JobError):
    """A job ran past its time limit and was interrupted."""


class WorkerDiedError(JobError):
    """The worker process died (killed, crashed, out of memory) while running a job."""


class OverLimitError(JobError):
    """A job could not take a rate or concurrency limiter (``Concurrent``, ``Window``):
    it is put back into ``schedule`` to try again later, without using a retry.

    ``name`` is the limiter's name, ``wait`` the seconds until it may have room (0:
    unknown)."""

    def __init__(self, name: str, wait: float = 0.0) -> None:
        super().__init__(
            f"limiter {name!r} is full; the job is scheduled to try again later "
            "(this uses no retry)"
        )
        self.name = name
        self.wait = wait

    def __reduce__(self) -> tuple[type[OverLimitError], tuple[str, float]]:
        return (OverLimitError, (self.name, self.wait))
