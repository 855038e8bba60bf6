"""OTP-style supervision for Thespian: restart strategies with a restart intensity.

Thespian restarts nothing by itself: a parent only hears ``ChildActorExited``. A
``Supervisor`` keeps its children in start order and, when one exits without being
asked to, applies its strategy:

``one_for_one``   restart that child;
``one_for_all``   stop the others, then restart all of them in start order;
``rest_for_one``  stop the children started after it, then restart it and them.

A restarted child is created anew and sent its init message again (built at that
moment, so it carries its siblings' current addresses). More than ``max_restarts``
restarts within ``restart_window`` seconds means the fault is not transient: the
supervisor stops its children and itself, and its own parent applies its strategy in
turn (escalation). Children that do not exit ``stop_timeout`` seconds after being
asked to are killed (SIGKILL).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import signal
import time
from collections import deque
from typing import Any, ClassVar

import attrs
from thespian.actors import ActorExitRequest, ChildActorExited

from verk_actors.actors.base import VerkActor
from verk_actors.actors.messages import (
    ActorRestarted,
    ChildFailed,
    ChildReady,
    DescribeTree,
    StopTimeout,
    TreeNode,
    TreeTimeout,
)

log = logging.getLogger(__name__)


class Strategy(enum.Enum):
    """Which children restart when one of them exits unexpectedly."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


@attrs.define
class RestartIntensity:
    """At most ``max_restarts`` restarts within ``within`` seconds."""

    max_restarts: int
    within: float
    times: deque[float] = attrs.field(factory=deque)

    def allow(self, now: float) -> bool:
        """Count a restart at ``now``; False when it would exceed the intensity."""
        while self.times and self.times[0] <= now - self.within:
            self.times.popleft()
        if len(self.times) >= self.max_restarts:
            return False
        self.times.append(now)
        return True


RUNNING = "running"
STOPPING = "stopping"
STOPPED = "stopped"


@attrs.define
class Child:
    """One supervised child."""

    name: str
    actor_class: type
    address: Any = None
    pid: int | None = None
    state: str = STOPPED
    restarts: int = 0
    temporary: bool = False
    """Removed instead of restarted when it exits (a queue being removed)."""


class Supervisor(VerkActor):
    """Base of every supervisor; subclasses set the strategy and build init messages.

    A subclass's ``strategy``, ``max_restarts`` and ``restart_window`` are where its
    supervision is defined: ``tree.design_tree`` (the diagrams) reads them too.
    """

    strategy: ClassVar[Strategy] = Strategy.ONE_FOR_ONE
    max_restarts: ClassVar[int] = 3
    restart_window: ClassVar[float] = 5.0
    stop_timeout: ClassVar[float] = 10.0

    @classmethod
    def restart_limit(cls) -> str:
        """The restart intensity in words, as docs and diagrams say it: ``3 restarts in 5 s``."""
        return f"{cls.max_restarts} restarts in {cls.restart_window:g} s"

    def __init__(self, capabilities: dict[str, Any] | None = None) -> None:
        super().__init__(capabilities)
        self.children: list[Child] = []
        self.intensity = RestartIntensity(self.max_restarts, self.restart_window)
        self.pending_restart: list[str] = []
        self.giving_up = False
        self._stop_token = 0
        self._trees: dict[int, tuple[DescribeTree, Any, dict[str, TreeNode | None]]] = {}
        self._tree_seq = 0

    # --- for subclasses --------------------------------------------------------------

    def init_message(self, child: Child) -> object:
        """The message that (re)initialises ``child``."""
        raise NotImplementedError

    def child_restarted(self, child: Child) -> None:
        """Called after ``child`` was started again."""

    def child_removed(self, child: Child) -> None:
        """Called when a child asked to stop for good has exited."""

    def describe(self) -> str:
        """How this supervisor names itself in logs."""
        return type(self).__name__

    def metrics_address(self) -> Any:
        """Where restarts are counted: the node's MetricsActor (None: nowhere)."""
        return None

    def metrics_queue(self) -> str:
        """The ``queue`` label of this supervisor's restarts ("" outside a queue)."""
        return ""

    # --- children ----------------------------------------------------------------------

    def start_child(self, name: str, actor_class: type) -> Child:
        """Create a child (or replace a stopped one of that name) and initialise it."""
        child = self.child(name)
        if child is None:
            child = Child(name, actor_class)
            self.children.append(child)
        self._launch(child)
        return child

    def child(self, name: str) -> Child | None:
        """The child called ``name``."""
        return next((c for c in self.children if c.name == name), None)

    def stop_child(self, name: str) -> None:
        """Stop a child for good (it is removed, not restarted, when it exits)."""
        child = self.child(name)
        if child is None:
            return
        child.temporary = True
        if child.state == RUNNING:
            self._ask_to_stop([child])
        elif child.state == STOPPED:
            self.children.remove(child)
            self.child_removed(child)

    def _launch(self, child: Child) -> None:
        child.address = self.createActor(child.actor_class)
        child.pid = None
        child.state = RUNNING
        self.send(child.address, self.init_message(child))

    def _by_address(self, address: Any) -> Child | None:
        return next((c for c in self.children if c.address == address), None)

    def receiveMsg_ChildReady(self, message: ChildReady, sender: Any) -> None:
        child = self._by_address(sender)
        if child is not None:
            child.pid = message.pid

    def receiveMsg_ChildFailed(self, message: ChildFailed, sender: Any) -> None:
        child = self._by_address(sender)
        log.error(
            "%s: child %s could not start: %s: %s",
            self.describe(),
            child.name if child else sender,
            message.error_class,
            message.message,
        )

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Any) -> None:
        child = self._by_address(message.childAddress)
        if child is None:
            return
        expected = child.state == STOPPING
        child.state = STOPPED
        child.address = None
        if child.temporary:
            self.children.remove(child)
            if child.name in self.pending_restart:
                self.pending_restart.remove(child.name)
            self.child_removed(child)
            self._continue_restart()
            return
        if expected or self.giving_up:
            self._continue_restart()
            return
        self._restart_after_exit(child)

    def _restart_after_exit(self, child: Child) -> None:
        total = child.restarts + 1
        if not self.intensity.allow(time.monotonic()):
            log.error(
                "%s: child %s exited; that is more than %d restarts in %g s, giving up "
                "(escalating to the parent)",
                self.describe(),
                child.name,
                self.intensity.max_restarts,
                self.intensity.within,
            )
            self.give_up()
            return
        index = self.children.index(child)
        if self.strategy is Strategy.ONE_FOR_ONE:
            affected = [child]
        elif self.strategy is Strategy.ONE_FOR_ALL:
            affected = list(self.children)
        else:
            affected = self.children[index:]
        log.warning(
            "%s: child %s exited unexpectedly; restarting %s (%s, restart %d)",
            self.describe(),
            child.name,
            ", ".join(c.name for c in affected),
            self.strategy.value,
            total,
        )
        for each in affected:
            if each.name not in self.pending_restart:
                self.pending_restart.append(each.name)
        self._ask_to_stop([c for c in affected if c.state == RUNNING])
        self._continue_restart()

    def _ask_to_stop(self, children: list[Child]) -> None:
        if not children:
            return
        for each in children:
            each.state = STOPPING
            self.send(each.address, ActorExitRequest())
        self._stop_token += 1
        self.after(self.stop_timeout, StopTimeout(self._stop_token))

    def receiveMsg_StopTimeout(self, message: StopTimeout, sender: Any) -> None:
        if message.token != self._stop_token:
            return
        for each in self.children:
            if each.state == STOPPING and each.pid:
                log.warning(
                    "%s: child %s did not stop within %g s; killing pid %d",
                    self.describe(),
                    each.name,
                    self.stop_timeout,
                    each.pid,
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(each.pid, signal.SIGKILL)

    def _continue_restart(self) -> None:
        if not self.pending_restart or self.giving_up:
            return
        waiting = [c for c in self.children if c.name in self.pending_restart]
        if any(c.state != STOPPED for c in waiting):
            return
        self.pending_restart = []
        for each in waiting:  # in start order
            each.restarts += 1
            self._launch(each)
            self.child_restarted(each)
            metrics = self.metrics_address()
            if metrics is not None:
                self.send(metrics, ActorRestarted(each.actor_class.__name__, self.metrics_queue()))

    # --- describing the live tree --------------------------------------------------------

    def receiveMsg_DescribeTree(self, message: DescribeTree, sender: Any) -> None:
        self._tree_seq += 1
        request = self._tree_seq
        running = [c for c in self.children if c.address is not None and c.state == RUNNING]
        self._trees[request] = (message, sender, {c.name: None for c in running})
        for each in running:
            self.send(each.address, DescribeTree(request, each.name, message.timeout * 0.7))
        if running:
            self.after(message.timeout, TreeTimeout(request))
        else:
            self._tree_done(request)

    def receiveMsg_TreeNode(self, message: TreeNode, sender: Any) -> None:
        entry = self._trees.get(message.request)
        if entry is None or message.name not in entry[2]:
            return
        entry[2][message.name] = message
        if all(node is not None for node in entry[2].values()):
            self._tree_done(message.request)

    def receiveMsg_TreeTimeout(self, message: TreeTimeout, sender: Any) -> None:
        if message.request in self._trees:
            self._tree_done(message.request)

    def _tree_done(self, request: int) -> None:
        asked, reply_to, answers = self._trees.pop(request)
        children = []
        for child in self.children:
            node = answers.get(child.name)
            if node is None:
                state = "not answering" if child.name in answers else child.state
                node = TreeNode(0, child.name, child.actor_class.__name__, child.pid, state=state)
            children.append(attrs.evolve(node, request=0, restarts=child.restarts))
        mine = self.tree_node(asked)
        self.send(
            reply_to,
            attrs.evolve(mine, strategy=self.strategy.value, children=tuple(children)),
        )

    def stopping(self) -> None:
        # Told to exit: Thespian stops the children too; their exits are expected.
        self.giving_up = True

    def give_up(self) -> None:
        """Stop everything and exit; the parent sees this supervisor exit."""
        self.giving_up = True
        self.send(self.myAddress, ActorExitRequest())

    def restarts(self) -> int:
        """Restarts of all children so far."""
        return sum(c.restarts for c in self.children)
