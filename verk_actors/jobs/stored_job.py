"""A job text as read from a queue or a sorted set, for people to look at.

Listing must never stop at a bad member: a text that is not a usable job is kept raw,
with the reason, instead of raising. The exact stored text is kept so that the job can
be removed by it (``verk_actors/store/CONTRACT.md``).
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from verk_actors.errors import MalformedJobError
from verk_actors.jobs.job import Job, decode_job, peek_ids


def as_text(raw: str | bytes) -> str:
    """The stored text as a string; bytes that are not UTF-8 are shown replaced."""
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw


@attrs.frozen
class StoredJob:
    """One job text read from Redis: ``job`` is None, and ``error`` says why, if malformed."""

    raw: bytes
    job: Job | None
    error: str | None = None
    malformed_jid: str | None = None

    @classmethod
    def read(cls, raw: str | bytes) -> StoredJob:
        """Decode ``raw``, keeping it whatever it holds."""
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        try:
            return cls(raw=data, job=decode_job(data))
        except MalformedJobError as exc:
            return cls(raw=data, job=None, error=str(exc), malformed_jid=peek_ids(data)[0] or None)

    @property
    def jid(self) -> str | None:
        """The jid, if the text has one (a malformed JSON object may still have it)."""
        return self.job.jid if self.job is not None else self.malformed_jid

    @property
    def text(self) -> str:
        """The stored text, for display."""
        return as_text(self.raw)

    def fields(self) -> dict[str, Any] | None:
        """The job's JSON object as stored (every field, in its order), or None if malformed."""
        if self.job is None:
            return None
        data: dict[str, Any] = json.loads(self.raw)
        return data

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: the job's fields, or the raw text and the error."""
        if self.job is None:
            return {"jid": self.jid, "job": None, "raw": self.text, "error": self.error}
        return {"jid": self.jid, "job": self.fields(), "raw": None, "error": None}


def jid_needle(jid: str) -> str | None:
    """A substring every stored text of ``jid`` contains, or None if writers may escape it.

    Printable ASCII other than ``"``, ``\\`` and ``/`` is written verbatim by every JSON
    encoder; anything else may come out escaped, so it cannot be matched as bytes.
    """
    if jid and all(" " <= ch <= "~" and ch not in '"\\/' for ch in jid):
        return jid
    return None


def matches_jid(raw: str | bytes, jid: str) -> StoredJob | None:
    """The stored job if ``raw`` is a job whose jid is exactly ``jid``."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    needle = jid_needle(jid)
    if needle is not None and needle.encode("ascii") not in data:
        return None
    stored = StoredJob.read(data)
    return stored if stored.jid == jid else None
