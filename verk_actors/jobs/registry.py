"""The registry of workers a node may run: a job's ``class`` resolves only through it.

A job's class name is never imported or looked up anywhere else, so whoever can
write to Redis cannot make a node run ``os.system`` or ``builtins.eval``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable

from verk_actors.errors import AsyncWorkerError, ConfigurationError, UnknownWorkerError
from verk_actors.jobs.limits import declared_limits
from verk_actors.jobs.worker import Worker, worker_names


def async_perform_refusal(cls: type) -> str:
    """Why a worker whose ``perform`` is async cannot run, and what to do instead."""
    return (
        f"{cls.__module__}.{cls.__qualname__}.perform is async, and only a queue in async "
        "mode runs async jobs (elsewhere nothing would await the coroutine, so the job "
        "would never run): give its queue async mode (--queue NAME=CONCURRENCY:async), "
        "or make perform a plain def and run the coroutine inside it with asyncio.run(...)"
    )


def is_async_worker(cls: type) -> bool:
    """Whether ``cls.perform`` is ``async def``."""
    perform = getattr(cls, "perform", None)
    return perform is not None and inspect.iscoroutinefunction(inspect.unwrap(perform))


class WorkerRegistry:
    """Worker classes by every name they answer to."""

    def __init__(self, workers: Iterable[type] = (), *, allow_async: bool = False) -> None:
        self._by_name: dict[str, type] = {}
        self.allow_async = allow_async
        """Whether ``async def perform`` workers may register (a queue runs in async mode)."""
        for cls in workers:
            self.register(cls)

    def register(self, cls: type) -> type:
        """Register ``cls`` (a class with a ``perform`` method) under its names."""
        perform = getattr(cls, "perform", None)
        if not inspect.isclass(cls) or not callable(perform):
            raise ConfigurationError(f"{cls!r} is not a class with a perform() method")
        if inspect.isasyncgenfunction(inspect.unwrap(perform)) or (
            is_async_worker(cls) and not self.allow_async
        ):
            raise AsyncWorkerError(async_perform_refusal(cls))
        declared_limits(cls)  # a bad limits attribute is refused at import, not per job
        for name in worker_names(cls):
            known = self._by_name.get(name)
            if known is not None and known is not cls:
                raise ConfigurationError(
                    f"two workers answer to {name!r}: {known.__module__}.{known.__qualname__} "
                    f"and {cls.__module__}.{cls.__qualname__}; rename one or set sidekiq_class"
                )
            self._by_name[name] = cls
        return cls

    def lookup(self, name: str) -> type:
        """The worker class for a job's ``class``, or UnknownWorkerError."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise UnknownWorkerError(
                f"no registered worker is named {name!r}; start the node with "
                "--import MODULE for the module that defines it"
            ) from None

    def retry_options(self) -> tuple[tuple[str, bool | int], ...]:
        """Each name's worker ``retry`` option (True, False or a number), where it is one."""
        return tuple(
            (name, retry)
            for name, cls in sorted(self._by_name.items())
            if isinstance(retry := getattr(cls, "retry", None), bool | int)
        )

    def classes(self) -> list[type]:
        """Each registered class once, in the order they were registered."""
        return list(dict.fromkeys(self._by_name.values()))

    def async_classes(self) -> list[type]:
        """Each registered class whose ``perform`` is ``async def`` (only an async queue
        runs them), in the order they were registered."""
        return [cls for cls in self.classes() if is_async_worker(cls)]

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @classmethod
    def from_modules(cls, modules: Iterable[str], *, allow_async: bool = False) -> WorkerRegistry:
        """Import each module and register the Worker subclasses it defines."""
        registry = cls(allow_async=allow_async)
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise ConfigurationError(
                    f"cannot import worker module {module_name!r}: {type(exc).__name__}: {exc}; "
                    "check the name, and that it is found from the current directory or a "
                    "directory given with --path (VERK_PATH, PYTHONPATH)"
                ) from exc
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if (
                    issubclass(obj, Worker)
                    and obj is not Worker
                    and obj.__module__ == module.__name__
                ):
                    registry.register(obj)
        return registry
