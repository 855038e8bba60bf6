"""Workers of the limiter tests (imported by the nodes as ``tests.limit_jobs``).

Each records in Redis (the URL is its first argument) what it saw as it ran: the
concurrent ones count themselves in and out and keep the highest count seen.
"""

from __future__ import annotations

import time

from tests.jobs import client
from verk_actors import Concurrent, Window, Worker, limited
from verk_actors.store import keys

RUNNING = "limits-test:running"
MOST = "limits-test:most"
STARTS = "limits-test:starts"
DONE = "limits-test:done"
SEEN = "limits-test:seen"
LATE = "limits-test:late"

COUNT_IN = """
local n = redis.call('INCR', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n
"""


def _started(url: str, jid: str, extra: dict[str, object], retry_count: object) -> None:
    r = client(url)
    seconds, micros = r.time()
    r.rpush(STARTS, f"{jid} {seconds + micros / 1_000_000:.6f}")
    r.rpush(SEEN, f"{jid} {extra.get('limited', 0)} {retry_count}")


class ConcurrentJob(Worker):
    """At most 3 at once across the cluster ("api"): counts itself in and out."""

    limits = (Concurrent("api", 3, lease=60),)

    def perform(self, url: str, seconds: float) -> None:
        r = client(url)
        r.eval(COUNT_IN, 2, RUNNING, MOST)
        _started(url, self.job.jid or "", self.job.extra, self.job.retry_count)
        time.sleep(seconds)
        r.decr(RUNNING)
        r.rpush(DONE, self.job.jid or "")


class InsideJob(Worker):
    """Takes "api" inside perform, with ``limited``, as ConcurrentJob does before it."""

    def perform(self, url: str, seconds: float) -> None:
        with limited(Concurrent("api", 3, lease=60)):
            ConcurrentJob.perform(self, url, seconds)  # type: ignore[arg-type]


class WindowJob(Worker):
    """At most 5 a second across the cluster ("rate"); notes when it took the window
    (its take's time, as the limiter keeps it), not when it got to note it."""

    limits = (Window("rate", 5, per=1.0),)

    def perform(self, url: str) -> None:
        r, jid = client(url), self.job.jid or ""
        takes = r.zrange(keys.limit_window_key("rate"), 0, -1, withscores=True)
        taken = [at for member, at in takes if member.decode().startswith(f"{jid}@")]
        if taken:
            r.rpush(STARTS, f"{jid} {taken[0]:.6f}")
            r.rpush(SEEN, f"{jid} {self.job.extra.get('limited', 0)} {self.job.retry_count}")
        else:  # its take left the window already (it waited over a second to get here)
            r.rpush(LATE, jid)
            _started(url, jid, self.job.extra, self.job.retry_count)
        r.rpush(DONE, jid)


class ShortLeaseJob(Worker):
    """At most 3 at once ("api-kill"), each slot leased 4 s (for a node killed in it)."""

    limits = (Concurrent("api-kill", 3, lease=4),)

    def perform(self, url: str, seconds: float) -> None:
        _started(url, self.job.jid or "", self.job.extra, self.job.retry_count)
        time.sleep(seconds)
        client(url).rpush(DONE, self.job.jid or "")
