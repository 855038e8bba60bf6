"""``VerkActor``: the thin base of every actor in the tree.

It gives each actor its system capabilities, ties its process to its parent's
(``PR_SET_PDEATHSIG``: a killed supervisor never leaves orphaned children running),
lets a crash in C kill its process (``verk_actors.actors._process``),
turns timer payloads into ordinary typed messages, and logs what it drops.

Timers cannot be lost to an exception: every timer is armed with ``after`` and
arrives through ``receiveMsg_WakeupMessage``; when its handler raises, the error is
logged and the same payload fires again ``timer_retry`` seconds later, unless the
handler had already armed another one like it. A periodic chain (heartbeat, polls,
checks) therefore survives any one failure of its handler, whatever it raised.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from typing import Any

from thespian.actors import (
    ActorExitRequest,
    ActorTypeDispatcher,
    ChildActorExited,
    PoisonMessage,
    WakeupMessage,
)

from verk_actors.actors._process import crash_on_fatal_signals, die_with_parent, forking_parent
from verk_actors.actors.messages import DescribeTree, TreeNode

log = logging.getLogger(__name__)

IN_PROCESS_BASE = "simpleSystem"

TIMER_RETRY = 1.0
"""Seconds after which a timer whose handler raised fires again (by default)."""

TIMER_FAILURE_LOG_EVERY = 60.0
"""Seconds between two tracebacks of the same failing timer (the failures are counted)."""


def _timer_key(payload: object) -> object:
    """What identifies a timer: its payload (frozen messages hash), else its type."""
    try:
        hash(payload)
    except TypeError:
        return type(payload)
    return payload


class VerkActor(ActorTypeDispatcher):  # type: ignore[misc]
    """Shared helpers; handlers are ``receiveMsg_<MessageClass>``."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.capabilities: dict[str, Any] = dict(capabilities or {})
        self._armed: dict[object, int] = {}
        """Timers armed and not yet delivered, by payload."""
        self._timer_failures: dict[type, tuple[float, int]] = {}
        if not self.in_process:
            # Again here for systems started without thespian_fixes.apply(), which
            # asks it earlier (see verk_actors.actors._process).
            die_with_parent(forking_parent())
            crash_on_fatal_signals()

    @property
    def in_process(self) -> bool:
        """True on Thespian's in-process base (no processes, no pickling, no watches)."""
        return self.capabilities.get("Thespian ActorSystem Name") == IN_PROCESS_BASE

    @property
    def can_watch(self) -> bool:
        """True when this base delivers ``ThespianWatch`` events (multiprocTCPBase)."""
        return bool(self.capabilities.get("Thespian Watch Supported"))

    def after(self, seconds: float, payload: object) -> None:
        """Deliver ``payload`` to this actor as a message after ``seconds`` (at least 1 ms).

        Never zero: an expired timer is handled before Thespian reads its sockets, and
        an actor that keeps re-arming one stops hearing anything else.
        """
        key = _timer_key(payload)
        self._armed[key] = self._armed.get(key, 0) + 1
        self.wakeupAfter(timedelta(seconds=max(seconds, 0.001)), payload)

    def timer_retry(self, payload: object) -> float:
        """Seconds after which ``payload``'s timer fires again when its handler raised."""
        return TIMER_RETRY

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: Any) -> Any:
        payload = message.payload
        if payload is None:
            return None
        key = _timer_key(payload)
        left = self._armed.pop(key, 0) - 1
        if left > 0:
            self._armed[key] = left
        try:
            return self.receiveMessage(payload, self.myAddress)
        except Exception:
            # Not re-raised: Thespian would run the handler once more at once, then
            # drop the timer for good, and with it every later tick of its chain.
            self._timer_failed(payload, key)
            return None

    def _timer_failed(self, payload: object, key: object) -> None:
        again = self.timer_retry(payload)
        kind = type(payload)
        now = time.monotonic()
        logged_at, failures = self._timer_failures.get(kind, (-TIMER_FAILURE_LOG_EVERY, 0))
        failures += 1
        if now - logged_at >= TIMER_FAILURE_LOG_EVERY:
            log.exception(
                "%s (pid %d): handling its %s timer failed (%d times since the last "
                "report); it fires again in %g s",
                type(self).__name__,
                os.getpid(),
                kind.__name__,
                failures,
                again,
            )
            logged_at, failures = now, 0
        self._timer_failures[kind] = (logged_at, failures)
        if not self._armed.get(key):
            self.after(again, payload)

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender: Any) -> None:
        self.stopping()

    def stopping(self) -> None:
        """Called when this actor is told to exit; release what it holds."""

    def receiveMsg_DescribeTree(self, message: DescribeTree, sender: Any) -> None:
        self.send(sender, self.tree_node(message))

    def tree_node(self, message: DescribeTree) -> TreeNode:
        """This actor in the live tree (supervisors add their children)."""
        return TreeNode(
            message.request,
            message.name or type(self).__name__,
            type(self).__name__,
            os.getpid(),
            detail=self.tree_detail(),
        )

    def tree_detail(self) -> str:
        """A few words on this actor's state for ``verk-actors tree``."""
        return ""

    def receiveMsg_PoisonMessage(self, message: PoisonMessage, sender: Any) -> None:
        log.error(
            "%s: a message it sent failed twice at %s and was dropped: %r\n%s",
            type(self).__name__,
            sender,
            message.poisonMessage,
            message.details,
        )

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Any) -> None:
        log.info("%s: child %s exited", type(self).__name__, message.childAddress)

    def receiveUnrecognizedMessage(self, message: Any, sender: Any) -> None:
        log.warning(
            "%s (pid %d) dropped a message it does not handle: %r from %s",
            type(self).__name__,
            os.getpid(),
            message,
            sender,
        )
