"""The keys a process seals and checks Thespian frames with, and the MAC itself.

Every frame between a node's processes carries an HMAC-SHA256 of its payload made
with the node's key (``_thespian.authenticate_frames`` puts this in Thespian's
transport). A process holds its own key, made at first use and inherited by every
process forked from it, and the keys of the nodes it attached to (read from their
key files, ``_node_key``). Pure of Thespian.
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from verk_actors.actors._node_key import new_key

log = logging.getLogger(__name__)

MAC_BYTES = 32
REJECTION_WARNING_EVERY = 60.0
"""Seconds between two warnings about dropped frames (the first is logged at once)."""

_port_keys: dict[int | None, bytes] = {}
"""Keys by admin port; under None, this process's own key."""


def node_key(admin_port: int | None) -> bytes:
    """The key frames to the actor system on ``admin_port`` are sealed with.

    That is the key ``trust_key`` registered for the port (a node this process
    attached to), else this process's own key, made at first use and inherited by
    every process forked from it: the admin and actors of the systems it starts.
    """
    if admin_port in _port_keys:
        return _port_keys[admin_port]
    if None not in _port_keys:
        _port_keys[None] = new_key()
    return _port_keys[None]


def trust_key(admin_port: int, key: bytes) -> None:
    """Talk to the actor system on ``admin_port`` with ``key`` (read from its key file)."""
    _port_keys[admin_port] = key


def seal(key: bytes, payload: bytes) -> bytes:
    """``payload`` with its MAC in front."""
    return hmac.digest(key, payload, "sha256") + payload


def authenticated_body(frame: bytes) -> memoryview | None:
    """The payload of ``frame`` if a key this process holds sealed it, else None (and
    the drop is counted, and warned about at most once a minute)."""
    view = memoryview(frame)
    mac, body = view[:MAC_BYTES], view[MAC_BYTES:]
    node_key(None)
    for key in set(_port_keys.values()):
        if hmac.compare_digest(hmac.digest(key, body, "sha256"), mac):
            return body
    _rejected.note(len(frame))
    return None


class _Rejections:
    """Counts dropped frames and warns about them at most once a minute."""

    def __init__(self) -> None:
        self.count = 0
        self.warned_at: float | None = None

    def note(self, size: int) -> None:
        self.count += 1
        now = time.monotonic()
        if self.warned_at is not None and now - self.warned_at < REJECTION_WARNING_EVERY:
            return
        log.warning(
            "pid %d dropped %d frame(s) without a valid MAC (last: %d bytes), unread: some "
            "process that does not hold this node's key is writing to its ports",
            os.getpid(),
            self.count,
            size,
        )
        self.count = 0
        self.warned_at = now


_rejected = _Rejections()
