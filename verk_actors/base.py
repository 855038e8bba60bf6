"""``VerkActor``: the thin base of every actor in the tree.

It gives each actor its system capabilities, ties its process to its parent's
(``PR_SET_PDEATHSIG``: a killed supervisor never leaves orphaned children running),
lets a crash in C kill its process (``verk_actors.actor_process``),
turns timer payloads into ordinary typed messages, and logs what it drops.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from thespian.actors import (
    ActorExitRequest,
    ActorTypeDispatcher,
    ChildActorExited,
    PoisonMessage,
    WakeupMessage,
)

from verk_actors.actor_process import crash_on_fatal_signals, die_with_parent, forking_parent
from verk_actors.messages import DescribeTree, TreeNode

log = logging.getLogger(__name__)

IN_PROCESS_BASE = "simpleSystem"


class VerkActor(ActorTypeDispatcher):  # type: ignore[misc]
    """Shared helpers; handlers are ``receiveMsg_<MessageClass>``."""

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.capabilities: dict[str, Any] = dict(capabilities or {})
        if not self.in_process:
            # Again here for systems started without thespian_fixes.apply(), which
            # asks it earlier (see verk_actors.actor_process).
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
        self.wakeupAfter(timedelta(seconds=max(seconds, 0.001)), payload)

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: Any) -> Any:
        if message.payload is None:
            return None
        return self.receiveMessage(message.payload, self.myAddress)

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
