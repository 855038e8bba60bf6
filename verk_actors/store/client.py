"""Enqueueing from plain Python code: ``Client`` and the module-level shortcuts.

::

    from verk_actors import Client
    client = Client(url="redis://localhost:6379/0")
    jid = client.enqueue(HardWorker, "bob", 5)
    client.enqueue_in(60, "HardWorker", "later")      # by name, as Sidekiq does

Jobs are written in Sidekiq's format, so a Sidekiq server can run them too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import redis

from verk_actors.config.redis_url import redact_url
from verk_actors.config.settings import DEFAULT_REDIS_URL
from verk_actors.errors import InvalidJobError, RedisUnavailableError
from verk_actors.jobs.enqueue_options import check_options, check_worker, to_seconds, to_timestamp
from verk_actors.jobs.job import Job, dumps, new_jid, new_job
from verk_actors.jobs.middleware import ClientChain, admit
from verk_actors.jobs.unique import unique_options
from verk_actors.jobs.worker import worker_name
from verk_actors.store import keys
from verk_actors.store.connection import connect
from verk_actors.store.scripts import Scripts
from verk_actors.store.unique_push import UniquePush

log = logging.getLogger(__name__)

QUEUES_REFRESH = 60.0
"""Seconds a client trusts that a queue it has added is still in the ``queues`` set."""

ENQUEUE_MANY_CHUNK = 5000


class _Announced:
    """The servers a Client without a URL has named in the log, so each is named once
    per process (``verk_actors.enqueue`` makes a Client per call)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._urls: set[str] = set()

    def first(self, url: str) -> bool:
        """True the first time ``url`` is seen."""
        with self._lock:
            new = url not in self._urls
            self._urls.add(url)
            return new


_announced = _Announced()


def _announce(url: str, source: str) -> None:
    if _announced.first(url):
        log.info(
            "verk_actors Client: no url given, so jobs go to Redis at %s (%s)",
            redact_url(url),
            source,
        )


class Client:
    """Writes jobs to Redis. Safe to keep and reuse; one per thread or process.

    Without ``redis_client`` or ``url`` it uses ``VERK_REDIS_URL``, else the local
    default, and says which at INFO the first time (once per process and server).
    Every job goes through the client middleware first: ``middleware`` (``module:name``
    specs), then those added by ``add_client_middleware``; one that refuses a job makes
    the verb return None, with ``refused`` True.
    """

    def __init__(
        self,
        redis_client: redis.Redis | None = None,
        *,
        url: str | None = None,
        middleware: Iterable[str] = (),
    ) -> None:
        env_url = os.environ.get("VERK_REDIS_URL")
        self.url = url or env_url or DEFAULT_REDIS_URL
        if url is None and redis_client is None:
            _announce(
                self.url,
                "from VERK_REDIS_URL"
                if env_url
                else "the default; pass url= or set VERK_REDIS_URL to choose",
            )
        self._owns = redis_client is None
        self.redis = (
            redis_client if redis_client is not None else connect(self.url, name="verk:client")
        )
        self._queues_seen: dict[str, float] = {}
        self._scripts: Scripts | None = None
        self.middleware = ClientChain(middleware)
        self.refused = False
        """True when a client middleware refused the last job enqueued (nothing written)."""

    def close(self) -> None:
        """Close the connection if this client opened it."""
        if self._owns:
            self.redis.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- building jobs ---------------------------------------------------------------

    def build(
        self,
        worker: type | str,
        args: Sequence[Any],
        *,
        queue: str | None = None,
        retry: bool | int | None = None,
        jid: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Job:
        """A checked job for ``worker`` (a Worker class or a class name)."""
        check_worker("build", worker)
        default_queue = getattr(worker, "queue", None) if isinstance(worker, type) else None
        default_retry = getattr(worker, "retry", None) if isinstance(worker, type) else None
        return new_job(
            worker_name(worker),
            args,
            queue=queue
            if queue is not None
            else (default_queue if isinstance(default_queue, str) else None) or "default",
            now=time.time(),
            # By name: no retry field, so the worker's option decides where the job runs
            # (as for a Sidekiq job without one); by class: the class's option.
            retry=retry if retry is not None else default_retry,
            jid=jid,
            extra=extra,
        )

    # --- writing them ------------------------------------------------------------------

    def push(self, jobs: Sequence[Job]) -> None:
        """LPUSH jobs to their queues (and SADD the queues) in one round trip."""
        by_queue: dict[str, list[str]] = {}
        for job in jobs:
            assert job.queue is not None
            by_queue.setdefault(job.queue, []).append(job.to_json())
        self.push_texts(by_queue)

    def push_texts(self, by_queue: Mapping[str, Sequence[str]]) -> None:
        """LPUSH job texts to their queues (and SADD the queues) in one round trip."""
        now = time.monotonic()
        announced = [
            q for q in by_queue if now - self._queues_seen.get(q, -QUEUES_REFRESH) >= QUEUES_REFRESH
        ]
        if not announced and len(by_queue) == 1:
            # The common case, one command: no pipeline to build.
            [(queue, texts)] = by_queue.items()
            self._guarded(lambda: self.redis.lpush(keys.queue_key(queue), *texts))
            return
        pipe = self.redis.pipeline(transaction=False)
        for queue in announced:
            pipe.sadd(keys.QUEUES, queue)
        for queue, texts in by_queue.items():
            pipe.lpush(keys.queue_key(queue), *texts)
        self._execute(pipe)
        for queue in announced:
            self._queues_seen[queue] = now

    def schedule(self, job: Job, at: float) -> None:
        """ZADD a job to ``schedule`` to be enqueued at ``at`` (unix seconds)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.SCHEDULE, {job.to_json(): at})
        self._execute(pipe)

    def push_unique(
        self,
        worker: type | str,
        job: Job,
        unique: tuple[float, str],
        at: float | None = None,
    ) -> tuple[bool, str]:
        """Take the unique lock of ``job`` and enqueue it (or schedule it at ``at``), in
        one step: ``(True, its jid)``, or ``(False, the holder's jid)`` when a job like
        it holds the lock (nothing is written). The lock lives ``unique_for`` seconds
        from when the job is due."""
        return self._unique().one(worker, job, unique, at)

    def _unique(self) -> UniquePush:
        if self._scripts is None:
            self._scripts = Scripts(self.redis)
        return UniquePush(self.redis, self._scripts, self._guarded)

    def _execute(self, pipe: redis.client.Pipeline) -> None:
        self._guarded(pipe.execute)

    def _guarded(self, write: Callable[[], object]) -> None:
        try:
            write()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise RedisUnavailableError(
                f"could not write to Redis at {redact_url(self.url)}: {exc}; nothing was "
                "enqueued, try again when Redis is reachable"
            ) from exc
        except redis.ResponseError as exc:
            raise RedisUnavailableError(
                f"Redis at {redact_url(self.url)} refused the write: {exc}"
            ) from exc

    def admit(self, worker: type | str, job: Job) -> Job | None:
        """``job`` as the client middleware leave it; None (and ``refused``) if one
        refused it. Every way of enqueueing calls it before writing a job."""
        admitted = admit(self.middleware, worker, job)
        self.refused = admitted is None
        return admitted

    # --- the public verbs --------------------------------------------------------------

    def enqueue(self, worker: type | str, *args: Any, **options: Any) -> str | None:
        """Enqueue one job to run now; returns its jid (None: a client middleware
        refused it, nothing was written).

        Options: ``queue``, ``retry`` (True, False or a number), ``jid``, ``extra``
        (more job fields, e.g. ``{"timeout": 30}``), ``unique_for`` and
        ``unique_until`` (as the Worker attributes). A unique job (by these options or
        its class's) whose lock is held is not enqueued: the jid returned is that of
        the job holding the lock (``enqueue_result`` says which it was).
        """
        return self._enqueue_at("enqueue", None, worker, args, options)[0]

    def enqueue_result(
        self, worker: type | str, *args: Any, at: datetime | float | None = None, **options: Any
    ) -> tuple[str | None, bool]:
        """``enqueue`` (or ``enqueue_at`` with ``at``) telling a duplicate apart:
        ``(jid, True)`` when the job was written, ``(the lock holder's jid, False)``
        when it was a unique job whose lock another job holds, ``(None, False)`` when a
        client middleware refused it (nothing written in either case)."""
        return self._enqueue_at("enqueue_result", at, worker, args, options)

    def enqueue_at(
        self, when: datetime | float, worker: type | str, *args: Any, **options: Any
    ) -> str | None:
        """Enqueue one job to run at ``when`` (a datetime or unix seconds); a duplicate
        unique job returns the lock holder's jid, a refused one None, as ``enqueue``."""
        return self._enqueue_at("enqueue_at", when, worker, args, options)[0]

    def _enqueue_at(
        self,
        verb: str,
        when: datetime | float | None,
        worker: type | str,
        args: Sequence[Any],
        options: Mapping[str, Any],
    ) -> tuple[str | None, bool]:
        check_options(verb, options)
        check_worker(verb, worker)
        at = to_timestamp(when) if when is not None else None
        rest, unique = unique_options(worker, options)
        job = self.admit(worker, self.build(worker, args, **rest))
        if job is None:
            return None, False
        assert job.jid is not None
        due = at is None or at <= time.time()
        if unique is not None:
            if not due:
                job = attrs.evolve(job, enqueued_at=None)
            written, jid = self.push_unique(worker, job, unique, None if due else at)
            return jid, written
        if due:
            self.push([job])
        else:
            assert at is not None
            self.schedule(attrs.evolve(job, enqueued_at=None), at)
        return job.jid or "", True

    def enqueue_in(
        self, delay: timedelta | float, worker: type | str, *args: Any, **options: Any
    ) -> str | None:
        """Enqueue one job to run after ``delay`` (a timedelta or seconds)."""
        at = time.time() + to_seconds(delay)
        return self._enqueue_at("enqueue_in", at, worker, args, options)[0]

    def enqueue_many(
        self, worker: type | str, args_list: Iterable[Sequence[Any]], **options: Any
    ) -> list[str]:
        """Enqueue many jobs of one worker (one round trip per 1,000); returns their jids.

        Every job is checked before any is written, so an invalid one writes nothing.
        Unique jobs (``unique_for``, given or the class's) each take their lock as
        ``enqueue`` does: a duplicate (of a job in Redis, or of an earlier one in
        ``args_list``) is not written and its place in the list holds the holder's jid.
        """
        check_options("enqueue_many", options)
        check_worker("enqueue_many", worker)
        if "jid" in options:
            raise InvalidJobError("enqueue_many makes one jid per job; do not pass jid")
        rest, unique = unique_options(worker, options)
        if unique is not None:
            built = [
                self.build(worker, _args_of(index, args), **rest)
                for index, args in enumerate(args_list)
            ]
            passed = [self.admit(worker, job) for job in built]  # client middleware
            jobs = [job for job in passed if job is not None]
            return [jid for _, jid in self._unique().many(worker, jobs, unique)]
        # Check the options once on a template job, then write each job's JSON from it:
        # the per-job work is one dumps() and a jid, not a full Job.
        template = self.build(worker, (), **options).to_dict()
        queue = template["queue"]
        chain = self.middleware if self.middleware.entries() else None
        by_queue: dict[str, list[str]] = {queue: []}
        texts = by_queue[queue]
        jids: list[str] = []
        for index, args in enumerate(args_list):
            jid = new_jid()
            template["args"] = list(_args_of(index, args))
            template["jid"] = jid
            item, into = template, texts
            if chain is not None:  # each job through the middleware, which may move it
                admitted = chain.run(worker, dict(template), queue)
                if admitted is None:
                    continue  # refused: not written, no jid
                item, jid = admitted, str(admitted.get("jid") or jid)
                into = by_queue.setdefault(str(admitted.get("queue") or queue), [])
            try:
                into.append(dumps(item))
            except (TypeError, ValueError) as exc:
                raise InvalidJobError(
                    f"job {index}: args must be JSON values (str, int, float, bool, None, "
                    f"list, dict): {exc}"
                ) from exc
            jids.append(jid)
        for name, written in by_queue.items():
            for start in range(0, len(written), ENQUEUE_MANY_CHUNK):
                self.push_texts({name: written[start : start + ENQUEUE_MANY_CHUNK]})
        return jids


def _args_of(index: int, args: Any) -> Sequence[Any]:
    """Job ``index``'s args of an ``enqueue_many`` list, checked to be a list or tuple."""
    if isinstance(args, str | bytes | Mapping) or not isinstance(args, Sequence):
        raise InvalidJobError(
            f"job {index}: args must be a list or tuple, got {type(args).__name__}"
        )
    return args


def _client(redis_client: redis.Redis | None, url: str | None) -> Client:
    return Client(redis_client, url=url)


def enqueue(
    worker: type | str,
    *args: Any,
    redis_client: redis.Redis | None = None,
    url: str | None = None,
    **options: Any,
) -> str | None:
    """Enqueue one job (see ``Client.enqueue``); connects to ``url`` or ``VERK_REDIS_URL``."""
    with _client(redis_client, url) as client:
        return client.enqueue(worker, *args, **options)


def enqueue_at(
    when: datetime | float,
    worker: type | str,
    *args: Any,
    redis_client: redis.Redis | None = None,
    url: str | None = None,
    **options: Any,
) -> str | None:
    """Enqueue one job to run at ``when`` (see ``Client.enqueue_at``)."""
    with _client(redis_client, url) as client:
        return client.enqueue_at(when, worker, *args, **options)


def enqueue_in(
    delay: timedelta | float,
    worker: type | str,
    *args: Any,
    redis_client: redis.Redis | None = None,
    url: str | None = None,
    **options: Any,
) -> str | None:
    """Enqueue one job to run after ``delay`` (see ``Client.enqueue_in``)."""
    with _client(redis_client, url) as client:
        return client.enqueue_in(delay, worker, *args, **options)


def enqueue_many(
    worker: type | str,
    args_list: Iterable[Sequence[Any]],
    *,
    redis_client: redis.Redis | None = None,
    url: str | None = None,
    **options: Any,
) -> list[str]:
    """Enqueue many jobs of one worker (see ``Client.enqueue_many``)."""
    with _client(redis_client, url) as client:
        return client.enqueue_many(worker, args_list, **options)
