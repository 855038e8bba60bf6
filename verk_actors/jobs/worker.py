"""The base class of job code: subclass ``Worker`` and write ``perform``.

::

    class HardWorker(Worker):
        queue = "default"
        def perform(self, name: str, count: int) -> None:
            ...

A worker is registered under its class name (``"HardWorker"``, as Sidekiq names
classes) and its dotted path (``"myapp.jobs.HardWorker"``); ``sidekiq_class`` adds the
name a Ruby client uses when it differs (``"Billing::ChargeWorker"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from verk_actors.jobs.job import Job
from verk_actors.jobs.limits import Concurrent, Window


class Worker:
    """Base class for job code. One instance runs one job."""

    queue: ClassVar[str] = "default"
    """Queue that ``enqueue`` puts this worker's jobs on unless told otherwise."""

    retry: ClassVar[bool | int] = True
    """Sidekiq's ``retry``: True (the node's limit, 25 by default), False, or a number."""

    timeout: ClassVar[float | None] = None
    """Seconds one job may run; None uses the node's ``job_timeout`` (no limit by default)."""

    sidekiq_class: ClassVar[str | None] = None
    """Extra name this worker answers to, e.g. a namespaced Ruby class name."""

    cron: ClassVar[str | None] = None
    """A cron expression: every node that imports this class enqueues one job of it at
    each tick, once across the cluster (``"*/5 * * * *"``; six fields: seconds first)."""

    cron_tz: ClassVar[str] = "UTC"
    """The time zone ``cron`` is read in (an IANA name, e.g. ``"Europe/Berlin"``)."""

    cron_args: ClassVar[tuple[Any, ...]] = ()
    """The arguments of the jobs ``cron`` enqueues."""

    unique_for: ClassVar[float | None] = None
    """Seconds: while a job of this class, queue and args (or ``unique_key``) holds the
    lock, enqueueing another writes nothing and returns None. The lock expires after
    this long whatever happens; it is freed earlier as ``unique_until`` says."""

    unique_until: ClassVar[str] = "success"
    """``"success"``: the lock is freed when the job succeeds or goes to dead (not when
    it goes to retry); ``"start"``: when a node takes the job to run it."""

    limits: ClassVar[tuple[Concurrent | Window, ...]] = ()
    """Limiters each job of this worker takes before ``perform`` runs, e.g.
    ``(Concurrent("api", 3), Window("api-rate", 10, per=1))``: a job that finds one
    full is put back into ``schedule`` and tried again later, using no retry."""

    job: Job
    """The job being run, set before ``perform`` is called."""

    def perform(self, *args: Any) -> None:
        """Run the job with its arguments. Raise to fail it (it is then retried)."""
        raise NotImplementedError(f"{type(self).__name__} must define perform(self, *args)")

    @classmethod
    def unique_key(cls, *args: Any) -> Any:
        """What a unique job's lock is keyed on besides class and queue (JSON values);
        None, the default, keys it on all the args."""
        return None

    def retry_in(self, retry_count: int, error: BaseException) -> float | None:
        """Seconds before retry number ``retry_count`` after ``error``; None = the default."""
        return None

    def retries_exhausted(self, job: Job, error: BaseException) -> None:
        """Called once when a job of this worker goes to dead after ``error`` (Sidekiq's
        ``sidekiq_retries_exhausted``); ``job`` is the dead job, with its error fields.
        It runs in the worker process, within a few seconds' limit; what it raises is
        logged and changes nothing."""
        return


def worker_names(cls: type) -> tuple[str, ...]:
    """Every name ``cls`` is registered under: class name, dotted path, ``sidekiq_class``."""
    names = [cls.__name__, f"{cls.__module__}.{cls.__qualname__}"]
    extra = getattr(cls, "sidekiq_class", None)
    if isinstance(extra, str) and extra:
        names.append(extra)
    return tuple(dict.fromkeys(names))


def worker_name(worker: type | str) -> str:
    """The ``class`` field to enqueue ``worker`` under."""
    if isinstance(worker, str):
        return worker
    extra = getattr(worker, "sidekiq_class", None)
    return extra if isinstance(extra, str) and extra else worker.__name__
