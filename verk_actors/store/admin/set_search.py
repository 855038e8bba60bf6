"""Filtered pages of the ``retry``, ``schedule`` and ``dead`` sets, with a bounded cost.

A page without filters is one ``ZRANGE`` with limits. A filtered page (by class, queue,
error class, or text in the stored JSON) reads the set in score order, in chunks, and
looks at no more than ``cap`` members: the answer says how many it searched of how
many there are, so a search over a huge set is cheap and honest about what it missed.
"""

from __future__ import annotations

from typing import Any

import attrs

from verk_actors.errors import ConfigurationError
from verk_actors.store.admin.job_sets import JobSet, SetEntry

SEARCH_CAP = 10_000
"""Most members a filtered page looks at."""

CHUNK = 500


@attrs.frozen
class SetFilter:
    """What a page keeps: every given field must match (``text``: a case-insensitive
    substring of the stored JSON text)."""

    class_name: str | None = None
    queue: str | None = None
    error_class: str | None = None
    text: str | None = None

    @property
    def empty(self) -> bool:
        """Whether nothing is filtered."""
        return not (self.class_name or self.queue or self.error_class or self.text)

    def matches(self, entry: SetEntry) -> bool:
        """Whether ``entry`` passes every given filter."""
        if self.text and self.text.lower().encode("utf-8") not in entry.stored.raw.lower():
            return False
        job = entry.stored.job
        if not (self.class_name or self.queue or self.error_class):
            return True
        if job is None:
            return False
        return (
            (not self.class_name or job.class_name == self.class_name)
            and (not self.queue or job.queue == self.queue)
            and (not self.error_class or job.error_class == self.error_class)
        )


@attrs.frozen
class SetPage:
    """One page of a set: its entries, and what was searched to find them.

    ``matched`` counts the matches among the ``searched`` members (every member when
    unfiltered); ``complete`` is False when the cap stopped the search early.
    """

    entries: tuple[SetEntry, ...]
    total: int
    searched: int
    matched: int
    complete: bool

    def to_dict(self) -> dict[str, Any]:
        """The counts, JSON-ready (entries are shown by the caller)."""
        return {
            "total": self.total,
            "searched": self.searched,
            "matched": self.matched,
            "complete": self.complete,
        }


def search_page(
    job_set: JobSet,
    where: SetFilter,
    *,
    offset: int = 0,
    limit: int = 25,
    newest_first: bool | None = None,
    cap: int | None = None,
) -> SetPage:
    """The entries ``offset`` to ``offset + limit`` of those passing ``where``, by score;
    a filtered page looks at ``cap`` members at most (default ``SEARCH_CAP``)."""
    cap = SEARCH_CAP if cap is None else cap
    if offset < 0 or limit < 0 or cap < 1:
        raise ConfigurationError(
            f"offset and limit must be 0 or more and cap 1 or more, got {offset}, {limit}, {cap}"
        )
    total = job_set.count()
    if where.empty:
        entries = job_set.page(offset, limit, newest_first=newest_first)
        return SetPage(tuple(entries), total, total, total, True)
    desc = (job_set.name == "dead") if newest_first is None else newest_first
    kept: list[SetEntry] = []
    matched = searched = 0
    while searched < min(cap, total):
        size = min(CHUNK, cap - searched)
        chunk = job_set.page(searched, size, newest_first=desc)
        if not chunk:
            break
        searched += len(chunk)
        for entry in chunk:
            if where.matches(entry):
                if offset <= matched < offset + limit:
                    kept.append(entry)
                matched += 1
    return SetPage(tuple(kept), total, searched, matched, searched >= total)
