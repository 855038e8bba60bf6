"""The data of the Limits page: every rate and concurrency limiter and its holders.

Read through the operations API (``store/admin/limits``), as ``verk-actors limits``
does. Names and holders come from job code and Redis: escaped by the template.
"""

from __future__ import annotations

from typing import Any

from verk_actors.store.admin.limits import limiter_statuses
from verk_actors.store.connection import Connection


def limits(client: Connection) -> dict[str, Any]:
    """Every limiter used in the last 7 days, by name, with its holders now."""
    return {"limits": [status.to_dict() for status in limiter_statuses(client)]}
