"""Actors for the transport tests: a relay that fires payloads at an echo at once."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import attrs
from thespian.actors import ActorTypeDispatcher


@attrs.frozen
class Payload:
    """One numbered payload; the echo answers with an ``Echoed``."""

    index: int
    data: bytes


@attrs.frozen
class Echoed:
    """What the echo got: the payload's number, length and SHA-256."""

    index: int
    length: int
    digest: str


@attrs.frozen
class Fire:
    """Send all these payloads to ``echo`` without waiting; reply ``Echoes`` once all
    are answered."""

    echo: Any
    sizes: tuple[int, ...]


@attrs.frozen
class Echoes:
    """The echo's answers, in the order they came."""

    answers: tuple[Echoed, ...]


@attrs.frozen
class Sockets:
    """Ask the echo how many sockets its process holds. Reply: ``SocketCount``."""


@attrs.frozen
class SocketCount:
    count: int


def payload(index: int, size: int) -> bytes:
    """A payload that is not all one byte, so a shifted or cut read changes its hash."""
    return bytes((index + i) % 251 for i in range(size))


class Echo(ActorTypeDispatcher):  # type: ignore[misc]
    def receiveMsg_Payload(self, message: Payload, sender: Any) -> None:
        digest = hashlib.sha256(message.data).hexdigest()
        self.send(sender, Echoed(message.index, len(message.data), digest))

    def receiveMsg_Sockets(self, message: Sockets, sender: Any) -> None:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            except OSError:  # the directory listing's own fd, gone by now
                continue
        self.send(sender, SocketCount(count))


class Relay(ActorTypeDispatcher):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Echoed] = []
        self.expected = 0
        self.reply_to: Any = None

    def receiveMsg_Fire(self, message: Fire, sender: Any) -> None:
        self.answers, self.expected, self.reply_to = [], len(message.sizes), sender
        for index, size in enumerate(message.sizes):
            self.send(message.echo, Payload(index, payload(index, size)))

    def receiveMsg_Echoed(self, message: Echoed, sender: Any) -> None:
        self.answers.append(message)
        if len(self.answers) == self.expected:
            self.send(self.reply_to, Echoes(tuple(self.answers)))
