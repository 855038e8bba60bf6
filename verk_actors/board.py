"""The progress board: a few bytes of shared memory between a worker and its manager.

A worker writes on its board which job of its batch it is running, until when it may
run, and how each job ended, before it reports anything by message. When a worker
process dies (SIGKILL, OOM, a crash in C code) its last messages may be lost with
it; the WorkersManager reads the board instead and knows exactly which jobs ran,
which one was running, and which never started. Writing costs well under a
microsecond, so the board is the cheap alternative to a message per job.

Layout: batch id (int64), running index (int32, -1 = none), padding, deadline
(float64, ``time.monotonic()``, 0 = none), then one status byte per job of the batch,
then the texts of the jobs a worker on standby took from Redis itself and may not
have reported yet (the manager has no other copy of them until the worker reports):
the index of the first (int32), how many (int32), the bytes they fill (int32), then
each as a length (int32) and its bytes. The file is sparse: the text area costs
memory only for the pages the texts touch.
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
TEXTS = struct.Struct("<iii")
"""Index of the first held text, texts held, bytes they fill."""
TEXTS_AT = HEADER.size + MAX_JOBS
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
