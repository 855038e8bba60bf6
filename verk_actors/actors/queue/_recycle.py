"""Recycling worker processes: a new process after so many jobs or so much memory.

A queue's ``max_jobs`` and ``max_memory`` (else the node's ``max_jobs_per_worker``
and ``max_memory_per_worker``) bound what one worker process does in its life, as
Celery's ``max_tasks_per_child`` and ``max_memory_per_child`` do.

The worker keeps count (``Lifetime``): after each job it counts one and, when the
queue has a memory limit, reads its resident size from ``/proc/self/statm``, kept
open (a ``pread``, about 4 µs a job). That is the memory the process holds now;
``getrusage``'s ``ru_maxrss`` (1 µs) is a high-water mark that never comes down, so
a peak freed long ago would recycle the worker after every job from then on. Once
past a limit the worker starts no other job: it ends its batch (the jobs it did not
start go back to the queue, as the unrun jobs of any batch do) and its last report
says why (``JobsDone.retire``).

The WorkersManager keeps the jobs a worker may still run (``Slot.quota``) so that
it hands out no bigger batch; when the batch is over it asks the worker to exit
(``ActorExitRequest``) and starts a new worker in its slot at once. A worker that
has not stopped ``RETIRE_GRACE`` later is killed (``_settle``), and so is a process
that lives on after its worker stopped (``_exits``). A recycle
is no crash: it counts neither as a restart of the slot nor against the limit on
idle workers dying, and shows as ``verk_workers_recycled_total`` and in the tree.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from verk_actors.actors.messages import InitWorker, InitWorkersManager, JobsDone
from verk_actors.actors.queue._board import Board
from verk_actors.actors.queue._slots import Pool, Slot
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import Settings

log = logging.getLogger(__name__)

MB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def limits(spec: QueueSpec, settings: Settings) -> tuple[int, int]:
    """The jobs a worker of the queue may run and the MB it may hold (0: no limit)."""
    jobs = spec.max_jobs if spec.max_jobs is not None else settings.max_jobs_per_worker
    memory = spec.max_memory if spec.max_memory is not None else settings.max_memory_per_worker
    return jobs or 0, memory or 0


def new_worker(
    pool: Pool, init: InitWorkersManager, index: int, address: Any, board: Board
) -> InitWorker:
    """Add a new worker's slot to ``pool``, with the jobs it may run, and return what
    the worker is told (its recycling limits included)."""
    jobs, memory = limits(init.queue, init.settings)
    pool.add(Slot(index, address, board, quota=jobs or None))
    path = str(board.path)
    return InitWorker(init.settings, init.queue.name, index, path, init.node_id, jobs, memory)


def resident_bytes(statm: int) -> int:
    """The resident memory of the process whose ``/proc/<pid>/statm`` is open as
    ``statm``, in bytes (a ``pread`` of the open file: about 4 µs)."""
    return int(os.pread(statm, 128, 0).split()[1]) * PAGE


class Lifetime:
    """A worker's side: the jobs it has run, and once past a limit, why it should go."""

    def __init__(self, max_jobs: int = 0, max_memory: int = 0) -> None:
        self.max_jobs = max_jobs
        self.max_memory = max_memory
        self.ran = 0
        self.retire = ""
        """Why this worker should be replaced ("" while it may run more jobs)."""
        self.statm: int | None = None
        """This process's ``/proc/self/statm``, opened at the first look (in the worker:
        a descriptor inherited through a fork would read the parent's)."""

    def job_ran(self) -> None:
        """One more job has run: note whether the worker is past a limit."""
        self.ran += 1
        if self.retire:
            return
        if self.max_jobs and self.ran >= self.max_jobs:
            self.retire = f"ran {self.ran} jobs (max_jobs {self.max_jobs})"
        elif self.max_memory:
            if self.statm is None:
                self.statm = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
            resident = resident_bytes(self.statm)
            if resident > self.max_memory * MB:
                self.retire = (
                    f"holds {resident / MB:.0f} MB resident after {self.ran} jobs "
                    f"(max_memory {self.max_memory} MB)"
                )


def noted(slot: Slot, message: JobsDone) -> None:
    """A report of ``slot``'s worker: fewer jobs left to it, and whether it should go."""
    if slot.quota is not None:
        slot.quota = max(1, slot.quota - len(message.succeeded) - len(message.failures))
    if message.retire:
        slot.retiring = message.retire


def retiring(slot: Slot, pool: Pool, queue: str) -> bool:
    """True if ``slot``'s worker, its batch over, is to be asked to exit; its
    replacement is then due at once (``Pool.replace``)."""
    if not slot.retiring:
        return False
    pool.recycle(slot, slot.heard_at)
    log.info(
        "queue %s: worker %d (pid %s) %s; recycling it: a new process takes its place",
        queue,
        slot.index,
        slot.pid,
        slot.retiring,
    )
    return True
