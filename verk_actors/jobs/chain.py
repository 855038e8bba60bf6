"""Running an ordered chain of middleware around a call (see ``jobs.middleware``).

Apart from ``middleware`` so that running a job (``jobs.running``) needs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Next = Callable[[], Any]
Middleware = Callable[[Any, dict[str, Any], str, Next], Any]
"""``call(worker, job, queue, next)``."""


def invoke(
    chain: Sequence[Middleware], worker: Any, job: dict[str, Any], queue: str, last: Next
) -> Any:
    """Run ``chain`` around ``last``: the first middleware is called first, and each
    ``next`` calls the one after it; the last ``next`` calls ``last``."""
    end = len(chain)

    def step(index: int) -> Any:
        if index == end:
            return last()
        return chain[index](worker, job, queue, lambda: step(index + 1))

    return step(0)
