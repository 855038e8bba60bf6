"""The data of the Cron page: every periodic job the nodes run, with its next and last run.

Read through ``store/cron`` as ``verk-actors cron`` does; entries' names, classes and
args come from the nodes' settings: escaped by the template.
"""

from __future__ import annotations

import time
from typing import Any

from verk_actors.store.connection import Connection
from verk_actors.store.cron import cron_statuses


def cron(client: Connection) -> dict[str, Any]:
    """Every cron entry a node has published, by name."""
    now = time.time()
    return {"now": now, "cron": [status.to_dict(now) for status in cron_statuses(client)]}
