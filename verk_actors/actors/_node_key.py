"""A node's secret key, and the private file other tools of its user read it from.

Every frame between a node's processes carries a MAC made with the node's key
(``_thespian.authenticate_frames``, ``_keyring``). The processes of a node inherit the key by
fork; a tool run by the same user on the same host (``verk-actors tree``) reads it
from ``<runtime dir>/admin-<port>.key``, where the runtime directory is
``$XDG_RUNTIME_DIR/verk-actors`` or ``<tmp>/verk-actors-<uid>``: a directory of mode
0700 owned by the user, holding files of mode 0600. A directory or file that another
user owns, or that others may read, is refused, never used.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from verk_actors.errors import ActorSystemError

KEY_BYTES = 32
RUNTIME_ENV = "XDG_RUNTIME_DIR"


def new_key() -> bytes:
    """A fresh random key."""
    return secrets.token_bytes(KEY_BYTES)


def key_dir() -> Path:
    """The private directory holding this user's node keys (created if missing)."""
    runtime = os.environ.get(RUNTIME_ENV)
    if runtime and Path(runtime).is_dir():
        path = Path(runtime) / "verk-actors"
    else:
        path = Path(tempfile.gettempdir()) / f"verk-actors-{os.geteuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ActorSystemError(f"cannot create the node key directory {path}: {exc}") from None
    _check_private(path, stat.S_ISDIR, "directory")
    return path


def key_path(admin_port: int) -> Path:
    """The file holding the key of the node whose admin port is ``admin_port``."""
    return key_dir() / f"admin-{admin_port}.key"


def write_key(admin_port: int, key: bytes) -> Path:
    """Store ``key`` for ``admin_port``, readable by this user only; return the path."""
    path = key_path(admin_port)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, key.hex().encode())
    finally:
        os.close(fd)
    os.replace(partial, path)
    return path


def read_key(admin_port: int) -> bytes:
    """The key of the node on ``admin_port``; ActorSystemError saying why if it cannot be read."""
    path = key_path(admin_port)
    if not path.exists():
        raise ActorSystemError(
            f"no key for the node on admin port {admin_port} ({path} is missing): talking to a "
            "node's actors needs its key, which only the node's own user on its host can read. "
            "Run this command as that user on that host"
        )
    _check_private(path, stat.S_ISREG, "file")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ActorSystemError(f"cannot read the node key {path}: {exc}") from None
    if len(key) != KEY_BYTES:
        raise ActorSystemError(
            f"the node key {path} is damaged ({len(key)} bytes); restart the node"
        )
    return key


def remove_key(admin_port: int, key: bytes) -> None:
    """Delete the key file of ``admin_port`` if it still holds ``key`` (a later node's stays)."""
    try:
        if read_key(admin_port) == key:
            key_path(admin_port).unlink(missing_ok=True)
    except (ActorSystemError, OSError):
        pass


def _check_private(path: Path, is_kind: Callable[[int], bool], kind: str) -> None:
    """Refuse ``path`` unless it is a ``kind`` of this user that nobody else may use."""
    info = path.lstat()
    if not is_kind(info.st_mode):
        raise ActorSystemError(f"{path} is not a {kind} (a link?); remove it and start again")
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise ActorSystemError(
            f"refusing the node key {kind} {path}: it belongs to uid {info.st_uid} with mode "
            f"{stat.S_IMODE(info.st_mode):o}, but must be this user's (uid {os.geteuid()}) and "
            "closed to others (mode 700 for the directory, 600 for a key); remove it"
        )
