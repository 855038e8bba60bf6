"""One policy for Redis failures, shared by every actor that talks to Redis.

A Redis call fails in one of two ways:

- **transient**: Redis is out of reach (connection refused or lost, a timeout), or it
  answers that it cannot serve the command *now*: ``OOM`` (maxmemory reached under
  ``noeviction``), ``BUSY`` (another client's script runs long), ``LOADING`` (a
  restart reads its data), ``READONLY`` (a replica after a failover), ``MISCONF``
  (snapshots fail, writes are refused), ``TRYAGAIN``, ``CLUSTERDOWN``,
  ``MASTERDOWN``, ``NOREPLICAS``. The same command will work once Redis recovers;
  since every client of this Redis is refused alike, other nodes could not renew
  their leases meanwhile either.
- **permanent**: any other error reply (``WRONGTYPE``: a key holds something else;
  ``NOPERM``: the ACL user may not run a command; an error raised by a script). It
  fails the same way until someone fixes the data or the configuration.

``NOSCRIPT`` is neither: redis-py's ``Script`` loads the script again and retries.

Actors catch both (``REDIS_ERRORS``): they keep what they have not written, wait and
try again, and never let the error end a timer chain. An ``Outage`` says so in the
log once when failures start, again with how long they have lasted (every
``REMIND_EARLY`` seconds in the first ``EARLY_PERIOD``, then every ``REMIND_EVERY``),
and once when Redis answers again; a transient error is a warning, a permanent one
an error naming the reply.

Redis going away fails every actor of a node at once, so one voice per node speaks
for a transient outage: the Outage made with ``speaks_for_node=True`` (the
NodeManager's, whose heartbeat reaches Redis every few seconds, so it notices an
outage and its end as soon as anyone). The other actors log theirs at DEBUG. A
permanent error is specific to the command that got it, so each actor logs its own.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import attrs
import redis

REDIS_ERRORS = (redis.RedisError, OSError)
"""Everything a Redis call raises: connection trouble and error replies alike."""

AuthenticationError = redis.AuthenticationError
"""Redis refused the user or password: waiting will not change that."""

TRANSIENT_REPLIES = frozenset(
    (
        "OOM",
        "BUSY",
        "LOADING",
        "READONLY",
        "MISCONF",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "MASTERDOWN",
        "NOREPLICAS",
    )
)
"""Error replies that mean "not now" rather than "never"."""

REMIND_EARLY = 10.0
"""Seconds between two reminders about the same outage in its first ``EARLY_PERIOD``."""
EARLY_PERIOD = 60.0
REMIND_EVERY = 60.0
"""Seconds between two reminders about the same outage after its first minute."""


def remind_after(elapsed: float) -> float:
    """Seconds to wait, after a line about an outage that has lasted ``elapsed`` seconds,
    before the next reminder: every 10 s in its first minute, then every minute."""
    return REMIND_EARLY if elapsed < EARLY_PERIOD else REMIND_EVERY


_CLASS_CODES: tuple[tuple[type[redis.RedisError], str], ...] = (
    (redis.exceptions.OutOfMemoryError, "OOM"),
    (redis.exceptions.ReadOnlyError, "READONLY"),
    (redis.exceptions.TryAgainError, "TRYAGAIN"),
    (redis.exceptions.MasterDownError, "MASTERDOWN"),
    (redis.exceptions.ClusterDownError, "CLUSTERDOWN"),
    (redis.exceptions.NoScriptError, "NOSCRIPT"),
    (redis.exceptions.ExecAbortError, "EXECABORT"),
)
"""Codes redis-py turns into classes (it drops the code from the message of some)."""

_LEADING_CODE = re.compile(r"([A-Z][A-Z0-9_]{1,63})(?:\s|$)")
_NESTED_CODE = re.compile(r"-([A-Z][A-Z0-9_]{1,63})\s")
"""Redis before 7 reports a command's error inside a script as ``ERR Error running
script ... -OOM command not allowed ...``."""


def reply_code(exc: BaseException) -> str | None:
    """The error code of a Redis error reply (``OOM``, ``WRONGTYPE``...), else None."""
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return "LOADING"  # a reply, though redis-py makes it a ConnectionError
    if not isinstance(exc, redis.ResponseError):
        return None
    for cls, name in _CLASS_CODES:
        if isinstance(exc, cls):
            return name
    text = str(exc)
    code = getattr(exc, "status_code", None)  # redis-py 8.1+ keeps the code
    if not (isinstance(code, str) and code):
        match = _LEADING_CODE.match(text)
        code = match[1] if match else "ERR"
    if code == "ERR":
        nested = _NESTED_CODE.search(text)
        if nested and nested[1] in TRANSIENT_REPLIES:
            return nested[1]
    return code


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` means Redis cannot serve anyone right now (see the module doc)."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, OSError)):
        return True
    return reply_code(exc) in TRANSIENT_REPLIES


def describe(exc: BaseException) -> str:
    """``exc`` in a few words for a log line: the reply code or the class, and the text."""
    code = reply_code(exc) or type(exc).__name__
    text = str(exc)
    return text if text.startswith(code) else f"{code}: {text}"


@attrs.define
class Outage:
    """A run of failed Redis calls in one actor, and what the log says about it."""

    log: logging.Logger
    who: str
    """Who fails, for the log: ``"node a: heartbeat"``, ``"scheduler"``..."""
    url: str
    """Where Redis is, passwords redacted."""
    speaks_for_node: bool = False
    """Log transient outages at WARNING (start, reminders) and INFO (end); the Outages
    of the other actors of a node log theirs at DEBUG (see the module doc)."""
    since: float | None = None
    """``time.monotonic()`` of the first failure of this outage; None while Redis answers."""
    failures: int = 0
    said_at: float = 0.0
    said: set[str] = attrs.field(factory=set)
    """What this outage has logged: ``"transient"`` once whatever its cause (a restart
    refuses connections, then answers LOADING), and each permanent reply code once."""
    report: Callable[[int, int], None] | None = None
    """Told ``(1, 0)`` at each failure and ``(0, 1)`` when an outage ends (the node's
    metrics count Redis errors and reconnects this way)."""

    @property
    def active(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, doing: str = "", now: float | None = None) -> None:
        """Count a failure; log it if it opens the outage or is the first permanent error
        of its kind in it, else remind that it goes on (see ``remind_after``)."""
        now = time.monotonic() if now is None else now
        if self.since is None:
            self.since = self.said_at = now
        self.failures += 1
        if self.report is not None:
            self.report(1, 0)
        kind = "transient" if is_transient(exc) else reply_code(exc) or type(exc).__name__
        where = f" while {doing}" if doing else ""
        quiet = not self.speaks_for_node and not self.said - {"transient"}
        if kind not in self.said:
            self.said.add(kind)
            self.said_at = now
            if kind == "transient":
                self.log.log(
                    logging.DEBUG if quiet else logging.WARNING,
                    "%s: Redis at %s unavailable%s (%s); retrying until it answers",
                    self.who,
                    self.url,
                    where,
                    describe(exc),
                )
            else:
                self.log.error(
                    "%s: Redis at %s refused a command%s (%s); nothing is lost, it is "
                    "tried again until the cause is fixed",
                    self.who,
                    self.url,
                    where,
                    describe(exc),
                )
        elif now - self.said_at >= remind_after(self.said_at - self.since):
            self.said_at = now
            self.log.log(
                logging.DEBUG if quiet else logging.WARNING,
                "%s: Redis at %s still failing after %.0f s (%d failed tries; last%s: %s)",
                self.who,
                self.url,
                now - self.since,
                self.failures,
                where,
                describe(exc),
            )

    def ok(self, now: float | None = None) -> None:
        """Redis answered: close the outage (and say so) if one was open."""
        if self.since is None:
            return
        now = time.monotonic() if now is None else now
        quiet = not self.speaks_for_node and not self.said - {"transient"}
        self.log.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s: Redis at %s answers again after %.1f s (%d failed tries)",
            self.who,
            self.url,
            now - self.since,
            self.failures,
        )
        self.since = None
        self.failures = 0
        self.said.clear()
        if self.report is not None:
            self.report(0, 1)
