"""The progress board: a few bytes of shared memory between a worker and its manager.

A worker writes on its board which job of its batch it is running, since when and
until when it may run, and how each job ended, before it reports anything by
message. When a worker process dies (SIGKILL, OOM, a crash in C code) its last
messages may be lost with it; the WorkersManager reads the board instead and knows
exactly which jobs ran, which one was running, and which never started. Writing
costs well under a microsecond, so the board is the cheap alternative to a message
per job.

The board is also how the manager takes back the jobs of a batch that wait behind a
long job (a worker inside a job hears no message until the job ends). The manager
marks the jobs it takes back, one byte per job; the worker marks a job running, then
reads its mark, and gives the job back instead of running it if it is marked. Each
side writes, then reads what the other wrote; the manager puts a ``membarrier(2)``
between its writes and its reads, which makes every worker process pass a full
memory barrier, so of a worker starting job k and the manager taking it back at
least one sees the other: the manager keeps only jobs it sees not started (or given
back), and a job it sees started is the worker's: run, or given back unrun if both
claimed it (its batch's report then sends it back to the queue). No job runs twice;
none is lost. Single bytes, because a byte is written whole: ``struct`` writes a
little-endian int a byte at a time, and a worker reading one half-written saw a
number that was never written. The worker's side costs a read of one byte per job.

Layout: the worker's header (batch id int64, running index int32 (-1 = none), flags
int32, deadline float64 (``time.monotonic()``, 0 = none), start of the running job
float64 (monotonic)); one status byte per job of the batch; one take-back byte per
job (written by the manager); then the texts of the jobs a worker on standby took
from Redis itself and may not have reported yet (the manager has no other copy of
them until the worker reports): the index of the first (int32), how many (int32), the
bytes they fill (int32), then each as a length (int32) and its bytes. The file is
sparse: the text area costs memory only for the pages the texts touch.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import platform
import struct
import sys
import tempfile
import uuid
from pathlib import Path
from typing import NamedTuple

HEADER = struct.Struct("<qiidd")
"""Batch, running index, flags, deadline, start of the running job."""
MAX_JOBS = 1024
STATUSES_AT = HEADER.size
TAKEN_AT = STATUSES_AT + MAX_JOBS
"""One byte per job, 1 = taken back by the manager (the worker clears them)."""
TEXTS = struct.Struct("<iii")
"""Index of the first held text, texts held, bytes they fill."""
TEXTS_AT = TAKEN_AT + MAX_JOBS
TEXT_LENGTH = struct.Struct("<i")
RECORDS_AT = TEXTS_AT + TEXTS.size
MAX_TEXT = 1 << 20
"""Bytes of the longest job text a board holds (a longer job is not run on standby)."""
TEXT_SPACE = TEXT_LENGTH.size + MAX_TEXT
"""Bytes for held texts: one of ``MAX_TEXT``, or several shorter ones."""
SIZE = RECORDS_AT + TEXT_SPACE

NOT_STARTED = 0
RUNNING = 1
SUCCEEDED = 2
FAILED = 3
GIVEN_BACK = 4
"""The worker found the job taken back as it was about to start it: it never ran."""

CAN_TAKE_BACK = 1
"""Header flag: the worker takes part in the memory barriers a take-back needs."""

MEMBARRIER_CMD_QUERY = 0
MEMBARRIER_CMD_GLOBAL_EXPEDITED = 2
MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED = 4
MEMBARRIER_SYSCALL = {"x86_64": 324, "aarch64": 283, "riscv64": 283, "ppc64le": 365, "s390x": 356}
"""``membarrier``'s system call number on each Linux architecture."""


class Running(NamedTuple):
    """What the worker's header says: the job of ``batch`` it runs now (``job`` is its
    index, -1 = none), its deadline and since when it runs (monotonic seconds, 0 = none)."""

    batch: int
    job: int
    deadline: float
    started: float


@functools.cache
def _membarrier_call() -> tuple[ctypes.CDLL, int] | None:
    """libc and membarrier's number, if this system has an expedited global barrier."""
    number = MEMBARRIER_SYSCALL.get(platform.machine())
    if number is None or sys.platform != "linux":  # the numbers are Linux's
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        supported = libc.syscall(number, MEMBARRIER_CMD_QUERY, 0, 0)
    except (OSError, AttributeError):
        return None
    if supported < 0 or not supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED:
        return None
    return libc, number


def _membarrier(command: int) -> bool:
    call = _membarrier_call()
    return call is not None and int(call[0].syscall(call[1], command, 0, 0)) == 0


def board_dir() -> Path:
    """Shared memory if the system has it, else the temp directory."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


PREFIX = "verk-board-"
"""Board files are ``verk-board-<pid of the manager>-<random>``."""


def sweep_orphans(directory: Path | None = None) -> int:
    """Remove the board files of managers that no longer run; return how many.

    A manager unlinks each board once its worker has it open, and at exit; a manager
    killed (SIGKILL, OOM) between the two leaves the file behind, in shared memory.
    Only this user's files are touched.
    """
    removed = 0
    uid = os.getuid()
    for path in (directory or board_dir()).glob(PREFIX + "*"):
        pid_text = path.name[len(PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        try:
            if path.stat().st_uid != uid:
                continue
            path.unlink()
        except OSError:
            continue  # gone meanwhile, or not ours to remove
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


class Board:
    """One worker's board, mapped in both the worker's and the manager's process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._flags = 0
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)

    @classmethod
    def create(cls, directory: Path | None = None) -> Board:
        """A new, zeroed board file (unlink it once the worker has opened it)."""
        path = (directory or board_dir()) / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, SIZE)
        finally:
            os.close(fd)
        return cls(path)

    def unlink(self) -> None:
        """Remove the file; both mappings stay valid."""
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Unmap the board."""
        self.unlink()
        self._map.close()

    # Written by the worker.

    def allow_take_back(self) -> bool:
        """Let the manager take back jobs this worker holds and has not started: this
        process registers for the expedited memory barriers a take-back needs (Linux
        4.16 and later). False where the system has none: jobs are never taken back."""
        if not _membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED):
            return False
        self._flags = CAN_TAKE_BACK
        batch, index, _, deadline, started = HEADER.unpack_from(self._map, 0)
        HEADER.pack_into(self._map, 0, batch, index, self._flags, deadline, started)
        return True

    def begin_batch(self, batch: int, size: int) -> None:
        """A new batch of ``size`` jobs is about to run."""
        self._map[TAKEN_AT : TAKEN_AT + size] = bytes(size)
        self._map[STATUSES_AT : STATUSES_AT + size] = bytes(size)
        HEADER.pack_into(self._map, 0, batch, -1, self._flags, 0.0, 0.0)

    def job_started(self, batch: int, index: int, deadline: float, started: float) -> bool:
        """Job ``index`` starts at ``started`` and may run until ``deadline`` (both
        monotonic; 0 = no limit). False if the manager took it back: then call
        ``job_given_back`` and run neither it nor the rest of the batch."""
        self._map[STATUSES_AT + index] = RUNNING
        HEADER.pack_into(self._map, 0, batch, index, self._flags, deadline, started)
        # Read only after the writes above: see the module's docstring.
        return not self._map[TAKEN_AT + index]

    def job_given_back(self, batch: int, index: int) -> None:
        """Job ``index`` was taken back as it was about to start: it did not run."""
        self._map[STATUSES_AT + index] = GIVEN_BACK
        HEADER.pack_into(self._map, 0, batch, -1, self._flags, 0.0, 0.0)

    def job_ended(self, batch: int, index: int, ok: bool) -> None:
        """Job ``index`` finished, successfully or not."""
        self._map[STATUSES_AT + index] = SUCCEEDED if ok else FAILED
        HEADER.pack_into(self._map, 0, batch, -1, self._flags, 0.0, 0.0)

    def hold_text(self, index: int, text: bytes) -> bool:
        """Keep the text of job ``index``, which a standby worker just took, after those
        held already (indexes follow each other); False if there is no room left
        (``keep_texts_from`` makes some) or the text is longer than ``MAX_TEXT``."""
        first, count, used = TEXTS.unpack_from(self._map, TEXTS_AT)
        if count and index != first + count:
            raise ValueError(
                f"job {index} does not follow the held jobs {first}..{first + count - 1}"
            )
        if used + TEXT_LENGTH.size + len(text) > TEXT_SPACE:
            return False
        at = RECORDS_AT + used
        TEXT_LENGTH.pack_into(self._map, at, len(text))
        self._map[at + TEXT_LENGTH.size : at + TEXT_LENGTH.size + len(text)] = text
        # The count last: a worker killed before it leaves the texts held before.
        TEXTS.pack_into(
            self._map,
            TEXTS_AT,
            index if not count else first,
            count + 1,
            used + TEXT_LENGTH.size + len(text),
        )
        return True

    def keep_texts_from(self, index: int) -> None:
        """Forget the held texts of the jobs before ``index`` (their report is out)."""
        first, count, used = TEXTS.unpack_from(self._map, TEXTS_AT)
        drop = min(max(index - first, 0), count)
        if not drop:
            return
        at = RECORDS_AT
        for _ in range(drop):
            (length,) = TEXT_LENGTH.unpack_from(self._map, at)
            at += TEXT_LENGTH.size + length
        rest = RECORDS_AT + used - at
        if rest:
            # Forgetting is not atomic: a worker killed here leaves the kept texts
            # behind a count of zero, so it empties the list first.
            TEXTS.pack_into(self._map, TEXTS_AT, 0, 0, 0)
            self._map.move(RECORDS_AT, at, rest)
        TEXTS.pack_into(self._map, TEXTS_AT, first + drop, count - drop, rest)

    def forget_texts(self) -> None:
        """Hold no text (a new standby begins)."""
        TEXTS.pack_into(self._map, TEXTS_AT, 0, 0, 0)

    # Read by the manager.

    def held_texts(self) -> list[tuple[int, bytes]]:
        """The texts held, oldest first, each with the index of its job."""
        first, count, used = TEXTS.unpack_from(self._map, TEXTS_AT)
        texts: list[tuple[int, bytes]] = []
        at, end = RECORDS_AT, RECORDS_AT + min(max(used, 0), TEXT_SPACE)
        for n in range(count):
            (length,) = TEXT_LENGTH.unpack_from(self._map, at)
            if length < 0 or at + TEXT_LENGTH.size + length > end:
                break  # a record cut short (never expected): keep those before it
            texts.append(
                (
                    first + n,
                    bytes(self._map[at + TEXT_LENGTH.size : at + TEXT_LENGTH.size + length]),
                )
            )
            at += TEXT_LENGTH.size + length
        return texts

    def running(self) -> Running:
        """The job running now, as the worker's header says."""
        batch, index, _, deadline, started = self._header()
        return Running(batch, index, deadline, started)

    def _header(self) -> tuple[int, int, int, float, float]:
        while True:
            first = bytes(self._map[: HEADER.size])
            if first == bytes(self._map[: HEADER.size]):
                batch, index, flags, deadline, started = HEADER.unpack(first)
                return batch, index, flags, deadline, started

    def can_take_back(self) -> bool:
        """Whether the worker lets jobs be taken back (``allow_take_back``)."""
        return bool(self._header()[2] & CAN_TAKE_BACK)

    def statuses(self, batch: int, size: int) -> list[int]:
        """How each job of ``batch`` ended (all NOT_STARTED if the batch never began)."""
        if self.running().batch != batch:
            return [NOT_STARTED] * size
        return list(self._map[STATUSES_AT : STATUSES_AT + size])

    def take_back(self, batch: int, first: int, size: int) -> list[int]:
        """Take back the jobs of ``batch`` (of ``size`` jobs) from index ``first`` on that
        the worker has not started: it will not start them. Returns their indexes; a
        job it was starting meanwhile stays with it (it runs it, or gives it back, and
        its batch's report sends it back to the queue).

        Once per batch (a second call takes nothing): the worker clears the marks
        when it begins its next batch.
        """
        if not self.can_take_back() or self.running().batch != batch or first >= size:
            return []
        if any(self._map[TAKEN_AT + first : TAKEN_AT + size]):
            return []  # taken back already: these jobs may be running elsewhere
        self._map[TAKEN_AT + first : TAKEN_AT + size] = b"\x01" * (size - first)
        if not _membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED):
            # Not expected once the worker registered. Keep nothing: the worker gives
            # those jobs back unrun, and its batch's end sends them back to the queue.
            return []
        statuses = self.statuses(batch, size)
        return [i for i in range(first, size) if statuses[i] in (NOT_STARTED, GIVEN_BACK)]
