"""Demo workers that ``verk-actors start --demo`` runs, so a new node has work to show."""

from __future__ import annotations

import logging
import math
import time

from verk_actors.jobs.worker import Worker

log = logging.getLogger("verk_actors.jobs.demo")


class DemoWorker(Worker):
    """Finds the primes below ``limit`` and logs how many there are."""

    def perform(self, n: int, limit: int) -> None:
        sieve = bytearray([1]) * limit
        sieve[:2] = b"\x00\x00"
        for i in range(2, math.isqrt(limit) + 1):
            if sieve[i]:
                sieve[i * i :: i] = bytearray(len(range(i * i, limit, i)))
        log.info("demo job %d (jid %s): %d primes below %d", n, self.job.jid, sum(sieve), limit)


class FlakyDemoWorker(Worker):
    """Fails on its first run, to show a job going to retry and running again."""

    retry = 3

    def perform(self, label: str) -> None:
        if not self.job.retry_count:
            raise RuntimeError(f"{label}: failing on purpose the first time")
        log.info("demo job %s succeeded on retry %d", label, self.job.retry_count)

    def retry_in(self, retry_count: int, error: BaseException) -> float | None:
        return 2.0


class ScheduledDemoWorker(Worker):
    """Logs how late it ran compared with when it was scheduled."""

    def perform(self, due: float) -> None:
        log.info("scheduled demo job ran %.2f s after its time", time.time() - due)
