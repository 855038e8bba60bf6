"""verk_actors.jobs.retry: retry limits, Sidekiq's backoff, failure records, burying bad texts."""

from __future__ import annotations

import json
import random

import pytest

from verk_actors.jobs.job import Job, decode_job
from verk_actors.jobs.retry import (
    DEFAULT_MAX_RETRIES,
    MALFORMED_CLASS,
    Fate,
    backoff_delay,
    build_failure,
    bury_malformed,
    retry_limit,
)

NOW = 1_700_000_000.0


def job(**fields: object) -> Job:
    """A decoded job with ``fields`` on top of a class and args."""
    return decode_job(json.dumps({"class": "HardWorker", "args": [1], **fields}))


def fail(j: Job, **kwargs: object) -> tuple[Fate, float, dict[str, object]]:
    """build_failure with fixed error fields: (fate, score, decoded JSON)."""
    options: dict[str, object] = {
        "error_class": "ValueError",
        "error_message": "boom",
        "backtrace": ["frame 1", "frame 2"],
        "now": NOW,
        "rng": random.Random(7),
    }
    options.update(kwargs)
    record = build_failure(j, **options)  # type: ignore[arg-type]
    return record.fate, record.score, json.loads(record.text)


# --- retry_limit --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "limit"),
    [
        ({"retry": True}, DEFAULT_MAX_RETRIES),
        ({"retry": False}, 0),
        ({"retry": 3}, 3),
        ({"retry": 0}, 0),
        ({"retry": -2}, 0),
        ({"max_retry_count": 7}, 7),
        ({"retry": True, "max_retry_count": 7}, 7),
        ({"retry": 3, "max_retry_count": 7}, 3),
        ({"retry": 9, "max_retry_count": 4}, 4),
        ({"retry": False, "max_retry_count": 7}, 0),
        ({}, DEFAULT_MAX_RETRIES),
        ({"retry": None, "max_retry_count": None}, DEFAULT_MAX_RETRIES),
    ],
)
def test_retry_limit(fields: dict[str, object], limit: int) -> None:
    """retry and max_retry_count are both read, the stricter wins, neither gives the default."""
    assert retry_limit(job(**fields)) == limit


def test_retry_limit_default_is_configurable() -> None:
    """retry true and a job with no limit use the given default."""
    assert retry_limit(job(retry=True), default=4) == 4
    assert retry_limit(job(), default=4) == 4


@pytest.mark.parametrize(
    ("fields", "worker_retry", "limit"),
    [
        ({}, 2, 2),
        ({}, False, 0),
        ({}, True, DEFAULT_MAX_RETRIES),
        ({"retry": None}, 2, 2),
        ({"retry": True}, 2, DEFAULT_MAX_RETRIES),
        ({"retry": 5}, 2, 5),
        ({"retry": False}, 2, 0),
        ({"max_retry_count": 1}, 2, 1),
        ({"max_retry_count": 7}, 2, 2),
        ({}, "seven", DEFAULT_MAX_RETRIES),
    ],
)
def test_retry_limit_takes_the_worker_option_when_the_job_has_no_retry(
    fields: dict[str, object], worker_retry: object, limit: int
) -> None:
    """A job without retry takes its worker's retry option; an explicit retry wins over it."""
    assert retry_limit(job(**fields), worker_retry=worker_retry) == limit


def test_build_failure_uses_the_worker_option() -> None:
    """build_failure sends a job without retry to dead once its worker's limit is used up."""
    assert fail(job(retry_count=2), worker_retry=2)[0] == Fate.DEAD
    assert fail(job(retry_count=1), worker_retry=2)[0] == Fate.RETRY
    assert "retry" not in fail(job(retry_count=1), worker_retry=2)[2]


def test_build_failure_writes_the_queue_a_queueless_job_ran_on() -> None:
    """A job without queue fails with the queue it ran on written in; a job's own queue stays."""
    assert fail(job(), queue="low")[2]["queue"] == "low"
    assert fail(job(queue="mail"), queue="low")[2]["queue"] == "mail"


# --- backoff_delay ------------------------------------------------------------------------


@pytest.mark.parametrize("count", range(1, 26))
def test_backoff_delay_bounds(count: int) -> None:
    """The delay of try c is c**4 + 15 + k*(c+1) with k in 1..30, and both ends are reached."""
    rng = random.Random(count)
    base = count**4 + 15
    delays = {backoff_delay(count, rng) for _ in range(2000)}
    assert min(delays) == base + 1 * (count + 1)
    assert max(delays) == base + 30 * (count + 1)
    assert all((d - base) % (count + 1) == 0 for d in delays)


def test_backoff_delay_is_deterministic_with_a_seeded_rng() -> None:
    """Two generators with one seed give the same delays."""
    a, b = random.Random(42), random.Random(42)
    counts = range(1, 26)
    assert [backoff_delay(c, a) for c in counts] == [backoff_delay(c, b) for c in counts]


# --- build_failure ------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [{}, {"retry_count": 0}, {"retry_count": None}])
def test_first_failure(fields: dict[str, object]) -> None:
    """A first failure sets retry_count 1, failed_at, the error fields, no retried_at."""
    fate, score, data = fail(job(**fields))
    assert fate == Fate.RETRY
    assert data["retry_count"] == 1
    assert data["failed_at"] == NOW
    assert "retried_at" not in data
    assert data["error_class"] == "ValueError"
    assert data["error_message"] == "boom"
    assert data["error_backtrace"] == ["frame 1", "frame 2"]
    assert NOW + 1**4 + 15 + 2 <= score <= NOW + 1**4 + 15 + 60


def test_later_failure_keeps_failed_at_and_sets_retried_at() -> None:
    """A later failure keeps the first failed_at and sets retried_at to now."""
    fate, score, data = fail(job(retry_count=3, failed_at=1000.0, retried_at=2000.0))
    assert fate == Fate.RETRY
    assert data["retry_count"] == 4
    assert data["failed_at"] == 1000.0
    assert data["retried_at"] == NOW
    rng = random.Random(7)
    assert score == NOW + backoff_delay(4, rng)


def test_failure_goes_dead_when_count_exceeds_limit() -> None:
    """The failure after the last allowed retry goes to dead, scored now."""
    fate, _, data = fail(job(retry=2, retry_count=1, failed_at=1.0))
    assert fate == Fate.RETRY
    assert data["retry_count"] == 2
    fate, score, data = fail(job(retry=2, retry_count=2, failed_at=1.0))
    assert fate == Fate.DEAD
    assert score == NOW
    assert data["retry_count"] == 3


def test_retry_false_goes_dead_at_once() -> None:
    """A job with retry false goes to dead on its first failure."""
    fate, score, _ = fail(job(retry=False))
    assert (fate, score) == (Fate.DEAD, NOW)


def test_default_max_retries_applies() -> None:
    """default_max_retries bounds a job with retry true."""
    assert fail(job(retry=True, retry_count=2), default_max_retries=2)[0] == Fate.DEAD
    assert fail(job(retry=True, retry_count=1), default_max_retries=2)[0] == Fate.RETRY


def test_delay_override() -> None:
    """A worker's delay override replaces the backoff; negative ones mean now."""
    assert fail(job(), delay_override=5.0)[1] == NOW + 5.0
    assert fail(job(), delay_override=-3.0)[1] == NOW


def test_unknown_fields_are_kept() -> None:
    """Fields we do not know (tags, bid...) survive a failure with their values."""
    _, _, data = fail(job(tags=["a", "b"], bid="batch-1", custom={"x": [1, None]}))
    assert data["tags"] == ["a", "b"]
    assert data["bid"] == "batch-1"
    assert data["custom"] == {"x": [1, None]}
    assert data["args"] == [1]
    assert data["class"] == "HardWorker"


# --- bury_malformed -----------------------------------------------------------------------


def test_bury_malformed_keeps_a_non_utf8_text_byte_for_byte() -> None:
    """A job text that is not UTF-8 goes to dead exactly as it was, never decoded."""
    for text in (b'{"class": "A", "args": ["\xff"]}', b"\xfe\xff garbage"):
        record = bury_malformed(text, reason="not UTF-8", queue="default", now=NOW)
        assert (record.fate, record.score, record.text) == (Fate.DEAD, NOW, text)


def test_bury_json_object_keeps_fields() -> None:
    """A JSON object without a usable class keeps all its fields and gains error fields."""
    text = '{"args":[1,[]],"tags":["t"],"jid":"j1","big":123456789012345678901234567890}'
    record = bury_malformed(text, reason="no class", queue="default", now=NOW)
    assert (record.fate, record.score) == (Fate.DEAD, NOW)
    data = json.loads(record.text)
    assert data["args"] == [1, []]
    assert data["tags"] == ["t"]
    assert data["jid"] == "j1"
    assert data["big"] == 123456789012345678901234567890
    assert data["queue"] == "default"
    assert data["error_class"] == "MalformedJobError"
    assert data["error_message"] == "no class"
    assert data["failed_at"] == NOW
    assert data["retry"] is False


def test_bury_json_object_keeps_its_own_queue() -> None:
    """A buried object that names a queue keeps that queue."""
    record = bury_malformed('{"queue":"mine"}', reason="r", queue="other", now=NOW)
    assert json.loads(record.text)["queue"] == "mine"


@pytest.mark.parametrize(
    "text",
    ["not json {", "[1, 2]", '"a string"', "", '{"class":"A","args":[NaN]}', "é\u2028\x00"],
)
def test_bury_non_object_text_verbatim(text: str) -> None:
    """Anything but a (finite) JSON object is kept verbatim as the single arg of a MalformedJob."""
    record = bury_malformed(text, reason="bad text", queue="q1", now=NOW)
    assert record.fate == Fate.DEAD
    data = json.loads(record.text)
    assert data["class"] == MALFORMED_CLASS
    assert data["args"] == [text]
    assert data["queue"] == "q1"
    assert data["error_message"] == "bad text"
    assert data["error_class"] == "MalformedJobError"
    assert len(data["jid"]) == 24
    assert decode_job(record.text).args == [text]


def test_bury_bytes() -> None:
    """UTF-8 bytes are buried like text, wrapped in valid JSON."""
    record = bury_malformed("caf\u00e9 garbage".encode(), reason="r", queue="q", now=NOW)
    assert json.loads(record.text)["args"] == ["caf\u00e9 garbage"]
