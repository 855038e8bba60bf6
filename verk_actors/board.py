"""The progress board: a few bytes of shared memory between a worker and its manager.

A worker writes on its board which job of its batch it is running, until when it may
run, and how each job ended, before it reports anything by message. When a worker
process dies (SIGKILL, OOM, a crash in C code) its last messages may be lost with
it; the WorkersManager reads the board instead and knows exactly which jobs ran,
which one was running, and which never started. Writing costs well under a
microsecond, so the board is the cheap alternative to a message per job.

Layout: batch id (int64), running index (int32, -1 = none), padding, deadline
(float64, ``time.monotonic()``, 0 = none), then one status byte per job of the batch,
then the length (int32) and text of the last job a worker on standby took from Redis
itself (the manager has no other copy of it until the worker reports). The file is
sparse: the text area costs memory only for the pages a text touches.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
import uuid
from pathlib import Path

HEADER = struct.Struct("<qiid")
MAX_JOBS = 1024
TEXT_LENGTH = struct.Struct("<i")
TEXT_AT = HEADER.size + MAX_JOBS
MAX_TEXT = 1 << 20
"""Bytes of the longest job text a board holds (a longer job is not run on standby)."""
SIZE = TEXT_AT + TEXT_LENGTH.size + MAX_TEXT

NOT_STARTED = 0
RUNNING = 1
SUCCEEDED = 2
FAILED = 3


def board_dir() -> Path:
    """Shared memory if the system has it, else the temp directory."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


class Board:
    """One worker's board, mapped in both the worker's and the manager's process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)

    @classmethod
    def create(cls, directory: Path | None = None) -> Board:
        """A new, zeroed board file (unlink it once the worker has opened it)."""
        path = (directory or board_dir()) / f"verk-board-{os.getpid()}-{uuid.uuid4().hex}"
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

    def begin_batch(self, batch: int, size: int) -> None:
        """A new batch of ``size`` jobs is about to run."""
        self._map[HEADER.size : HEADER.size + size] = bytes(size)
        HEADER.pack_into(self._map, 0, batch, -1, 0, 0.0)

    def job_started(self, batch: int, index: int, deadline: float) -> None:
        """Job ``index`` starts and may run until ``deadline`` (monotonic; 0 = no limit)."""
        self._map[HEADER.size + index] = RUNNING
        HEADER.pack_into(self._map, 0, batch, index, 0, deadline)

    def job_ended(self, batch: int, index: int, ok: bool) -> None:
        """Job ``index`` finished, successfully or not."""
        self._map[HEADER.size + index] = SUCCEEDED if ok else FAILED
        HEADER.pack_into(self._map, 0, batch, -1, 0, 0.0)

    def hold_text(self, text: bytes) -> bool:
        """Keep the text of the job a standby worker just took; False if it is too long."""
        if len(text) > MAX_TEXT:
            return False
        start = TEXT_AT + TEXT_LENGTH.size
        self._map[start : start + len(text)] = text
        TEXT_LENGTH.pack_into(self._map, TEXT_AT, len(text))
        return True

    # Read by the manager.

    def held_text(self) -> bytes | None:
        """The text ``hold_text`` kept last (None if none)."""
        (length,) = TEXT_LENGTH.unpack_from(self._map, TEXT_AT)
        if length <= 0:
            return None
        start = TEXT_AT + TEXT_LENGTH.size
        return bytes(self._map[start : start + length])

    def running(self) -> tuple[int, int, float]:
        """``(batch, index, deadline)`` of the job running now (index -1 = none)."""
        while True:
            first = bytes(self._map[: HEADER.size])
            if first == bytes(self._map[: HEADER.size]):
                batch, index, _, deadline = HEADER.unpack(first)
                return batch, index, deadline

    def statuses(self, batch: int, size: int) -> list[int]:
        """How each job of ``batch`` ended (all NOT_STARTED if the batch never began)."""
        current, _, _ = self.running()
        if current != batch:
            return [NOT_STARTED] * size
        return list(self._map[HEADER.size : HEADER.size + size])
