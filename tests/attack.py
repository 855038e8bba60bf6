"""What an attacker on this host can send to a node's ports, and what the node holds open.

Frames are built as Thespian's TCP transport frames them (``b"<length>>" + payload``),
with no MAC, a wrong MAC or the right one, so a test can show that a frame is dropped
for want of the key and not for a mistake in its making.
"""

from __future__ import annotations

import os
import pickle
import secrets
import socket
import time
from pathlib import Path
from typing import Any

from thespian.actors import ActorAddress
from thespian.system.transport.IPBase import TCPv4ActorAddress
from thespian.system.transport.streamBuffer import ackDataErrPacket, ackPacket, toSendBuffer

from verk_actors.actors._keyring import seal

ACK = toSendBuffer(ackPacket)
REFUSED = toSendBuffer(ackDataErrPacket)


class CreatesFile:
    """Unpickling this creates ``path``: the proof that a payload ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def forged(message: Any) -> bytes:
    """A pickled Thespian envelope of ``message`` from a made-up sender."""
    sender = ActorAddress(TCPv4ActorAddress("127.0.0.1", 9, external=True))
    return pickle.dumps((sender, message))


def frame(payload: bytes, mac: str = "none", key: bytes = b"") -> bytes:
    """``payload`` framed as Thespian does: with no MAC, a random one, or sealed by ``key``."""
    if mac == "wrong":
        payload = secrets.token_bytes(32) + payload
    elif mac == "key":
        payload = seal(key, payload)
    return f"{len(payload)}>".encode() + payload


def deliver(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` to ``port`` on loopback and return what comes back before it closes."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and received not in (ACK, REFUSED):
            try:
                chunk = sock.recv(4096)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
    return received


def listening_sockets() -> dict[str, tuple[str, int]]:
    """Listening TCP sockets of this host: inode -> (address, port)."""
    found = {}
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":
                continue
            address, port = fields[1].split(":")
            if width == 8:
                address = socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1])
            found[fields[9]] = (address, int(port, 16))
    return found


def listeners_of(pids: list[int]) -> dict[int, list[tuple[str, int, str]]]:
    """pid -> the listening sockets it holds, as (address, port, inode)."""
    sockets = listening_sockets()
    held: dict[int, list[tuple[str, int, str]]] = {}
    for pid in pids:
        held[pid] = []
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = link[8:-1] if link.startswith("socket:[") else ""
            if inode in sockets:
                held[pid].append((*sockets[inode], inode))
    return held
