"""The checks a node makes when it starts, beyond what ``Settings`` checks when made.

``Settings`` and ``QueueSpec`` check every value as they are made, at every door.
Whether the worker modules import can only be known in the process that will run
them, so ``VerkRoot`` calls ``check_node_settings`` when it is configured: an embedded
node refuses a module that does not import (``RequestFailed`` naming the module and
why) instead of answering ``VerkStarted`` and leaving its jobs waiting forever.

An embedded node admits ``async def perform`` workers even when none of its queues
runs in async mode (``AddQueue`` may add one later); it logs a warning naming them.
``verk-actors start``, whose queues are those it was given, refuses them instead
(``cli/start.py``).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import attrs

from verk_actors.config.queue_modes import runs_async
from verk_actors.config.settings import Settings
from verk_actors.errors import ConfigurationError
from verk_actors.jobs.hooks import Hooks
from verk_actors.jobs.middleware import import_middleware
from verk_actors.jobs.registry import WorkerRegistry

log = logging.getLogger(__name__)

ASYNC_WAITING = (
    "no queue of this node runs in async mode, so async def perform workers %s run only "
    "once one is added (AddQueue(name, concurrency, mode='async')); on a process or "
    "threads queue their jobs fail with AsyncWorkerError"
)


def check_node_settings(settings: Any) -> WorkerRegistry:
    """Check ``settings`` once more and import its worker modules; their registry.

    ConfigurationError says which value or module is wrong, and why. Importing here is
    what every worker does first anyway; a node run by ``verk-actors start`` has
    imported them already (its processes fork from it).
    """
    if not isinstance(settings, Settings):
        raise ConfigurationError(
            f"a node is configured with a verk_actors Settings, got {type(settings).__name__}"
        )
    attrs.evolve(settings)  # every check again: it may have been unpickled, or forced
    registry = WorkerRegistry.from_modules(settings.imports, allow_async=True)
    waiting = registry.async_classes()
    if waiting and not runs_async(settings.queues):
        log.warning(ASYNC_WAITING, ", ".join(f"{c.__module__}.{c.__qualname__}" for c in waiting))
    Hooks(settings.error_handlers, settings.death_handlers)  # each handler imports
    import_middleware((*settings.client_middleware, *settings.server_middleware))
    check_metrics(settings)
    return registry


METRICS_MISSING = (
    "metrics_port is set but prometheus-client is not installed: pip install "
    "'verk_actors[metrics]', or leave metrics_port (--metrics-port) out"
)


def check_metrics(settings: Settings) -> None:
    """ConfigurationError when metrics are asked for without ``prometheus_client``."""
    if settings.metrics_port is None:
        return
    try:
        importlib.import_module("prometheus_client")
    except ImportError:
        raise ConfigurationError(METRICS_MISSING) from None
