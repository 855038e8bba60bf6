"""verk_actors.jobs.job: decoding job texts from Redis, building new jobs, the JSON round trip."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verk_actors.errors import InvalidJobError, MalformedJobError
from verk_actors.jobs.job import KNOWN_FIELDS, MAX_QUEUE_NAME, Job, decode_job, new_job, peek_ids

# --- strategies ------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
json_args = st.lists(json_values, max_size=6)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.integers(0, 4_000_000_000)
queue_names = st.text(
    alphabet=st.characters(blacklist_categories=("Zs", "Cc", "Cs")), min_size=1, max_size=30
)
unknown_fields = st.dictionaries(
    st.text(max_size=12).filter(lambda k: k not in KNOWN_FIELDS), json_values, max_size=4
)


@st.composite
def sidekiq_jobs(draw: st.DrawFn) -> dict[str, Any]:
    """A job dict as Sidekiq (or we) might write it, with unknown extra fields."""
    job: dict[str, Any] = draw(unknown_fields)
    job.update(
        draw(
            st.fixed_dictionaries(
                {"class": st.text(min_size=1), "args": json_args},
                optional={
                    "jid": st.text(alphabet="0123456789abcdef", min_size=24, max_size=24),
                    "queue": queue_names,
                    "retry": st.booleans() | st.integers(-5, 100),
                    "created_at": times,
                    "enqueued_at": times,
                    "max_retry_count": st.integers(0, 100),
                    "retry_count": st.integers(0, 100),
                    "failed_at": times,
                    "retried_at": times,
                    "error_class": st.text(),
                    "error_message": st.text(),
                    "error_backtrace": st.lists(st.text(), max_size=4),
                },
            )
        )
    )
    return job


# --- decode errors -----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["{", "not json", '{"class": "A",}', "", b"\xff\xfe"])
def test_decode_rejects_text_that_is_not_json(text: str | bytes) -> None:
    """A text that is not JSON (or not UTF-8) raises MalformedJobError saying so."""
    with pytest.raises(MalformedJobError, match=r"not valid JSON|not UTF-8"):
        decode_job(text)


@pytest.mark.parametrize("text", ["[1, 2]", '"HardWorker"', "42", "null", "true"])
def test_decode_rejects_json_that_is_not_an_object(text: str) -> None:
    """JSON that is not an object raises MalformedJobError naming what it is."""
    with pytest.raises(MalformedJobError, match="not an object"):
        decode_job(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"args": []}',
        '{"class": "", "args": []}',
        '{"class": null}',
        '{"class": 5}',
        '{"class": ["A"]}',
    ],
)
def test_decode_rejects_missing_or_empty_class(text: str) -> None:
    """A job without a non-empty string class raises MalformedJobError about "class"."""
    with pytest.raises(MalformedJobError, match='"class"'):
        decode_job(text)


@pytest.mark.parametrize("args", ['{"a": 1}', '"{\\"a\\": 1}"', "5", "true"])
def test_decode_rejects_args_that_are_not_an_array(args: str) -> None:
    """Args that are a dict (directly or inside a string) or a scalar raise MalformedJobError."""
    with pytest.raises(MalformedJobError, match="not an array"):
        decode_job(f'{{"class": "A", "args": {args}}}')


def test_decode_rejects_args_string_that_is_not_json() -> None:
    """An args string that does not hold JSON raises MalformedJobError saying so."""
    with pytest.raises(MalformedJobError, match='"args" is a string that is not JSON'):
        decode_job('{"class": "A", "args": "[1, 2"}')


@pytest.mark.parametrize(
    "text",
    [
        '{"class": "A", "args": [NaN]}',
        '{"class": "A", "args": [Infinity]}',
        '{"class": "A", "args": [-Infinity]}',
        '{"class": "A", "args": [1e400]}',
        '{"class": "A", "args": "[NaN]"}',
    ],
)
def test_decode_rejects_numbers_json_cannot_write_back(text: str) -> None:
    """NaN, Infinity and out-of-range floats are refused: a failed copy could not be written."""
    with pytest.raises(MalformedJobError):
        decode_job(text)


def test_decode_rejects_deeply_nested_json_with_malformed_error() -> None:
    """Nesting too deep for the JSON parser is a MalformedJobError, not a RecursionError."""
    depth = 100_000
    with pytest.raises(MalformedJobError, match="not valid JSON"):
        decode_job('{"class": "A", "args": ' + "[" * depth + "]" * depth + "}")


# --- jobs written by others ----------------------------------------------------------------


def test_decode_verk_job_with_args_as_json_string() -> None:
    """Verk 1.4+ writes args as a string holding an array; it decodes to the array."""
    text = (
        '{"queue":"default","class":"HardWorker","args":"[1,\\"two\\",[3]]",'
        '"jid":"abc","enqueued_at":1460000000,"created_at":1460000000,'
        '"retry_count":0,"max_retry_count":5}'
    )
    job = decode_job(text)
    assert job.class_name == "HardWorker"
    assert job.args == [1, "two", [3]]
    assert job.enqueued_at == 1460000000
    assert isinstance(job.enqueued_at, int)
    assert job.max_retry_count == 5
    assert job.retry_count == 0
    assert job.original_json == text
    assert json.loads(job.to_json())["args"] == [1, "two", [3]]


def test_decode_job_with_every_field_null() -> None:
    """A job whose fields (other than class) are all null decodes with empty args and Nones."""
    fields: dict[str, Any] = dict.fromkeys(KNOWN_FIELDS)
    fields["class"] = "HardWorker"
    fields["finished_at"] = None
    job = decode_job(json.dumps(fields))
    assert job == Job(class_name="HardWorker", args=[], extra={"finished_at": None})
    assert json.loads(job.to_json()) == {"class": "HardWorker", "args": [], "finished_at": None}


def test_decode_bytes_keeps_original_text() -> None:
    """A job read as bytes decodes and keeps its text for removal by exact bytes."""
    raw = '{"class":"A","args":["é"],"x":1}'.encode()
    job = decode_job(raw)
    assert job.args == ["é"]
    assert job.original_json is not None
    assert job.original_json.encode() == raw


def test_original_json_is_not_compared() -> None:
    """Two decodes of differently spaced texts of the same job are equal jobs."""
    assert decode_job('{"class":"A","args":[1]}') == decode_job('{ "args": [1], "class": "A" }')


def test_max_retry_count_and_retry_are_read() -> None:
    """Sidekiq's retry (bool or int) and Verk's max_retry_count are both decoded."""
    job = decode_job('{"class":"A","args":[],"retry":3,"max_retry_count":7}')
    assert (job.retry, job.max_retry_count) == (3, 7)
    assert decode_job('{"class":"A","retry":false}').retry is False
    assert decode_job('{"class":"A","retry":"yes"}').retry is None


# --- new_job -------------------------------------------------------------------------------


def test_new_job_builds_sidekiq_fields() -> None:
    """new_job sets class, args, a 24-hex jid, queue, retry and both times."""
    job = new_job("HardWorker", (1, "a"), queue="critical", now=1700000000.5)
    data = json.loads(job.to_json())
    assert data["class"] == "HardWorker"
    assert data["args"] == [1, "a"]
    assert len(data["jid"]) == 24
    assert int(data["jid"], 16) >= 0
    assert data["queue"] == "critical"
    assert data["retry"] is True
    assert data["created_at"] == data["enqueued_at"] == 1700000000.5


@pytest.mark.parametrize("class_name", ["", None, 5, b"A"])
def test_new_job_rejects_bad_class(class_name: Any) -> None:
    """A class name that is not a non-empty string raises InvalidJobError."""
    with pytest.raises(InvalidJobError, match="worker class"):
        new_job(class_name, [], queue="default", now=0.0)


@pytest.mark.parametrize("args", ["abc", b"abc", {"a": 1}, 5, None, {1, 2}])
def test_new_job_rejects_args_that_are_not_a_list(args: Any) -> None:
    """Args that are not a list or tuple (a string, a dict, a set...) raise InvalidJobError."""
    with pytest.raises(InvalidJobError, match="list or tuple"):
        new_job("A", args, queue="default", now=0.0)


@pytest.mark.parametrize(
    "args", [[{1, 2}], [math.nan], [math.inf], [object()], [b"bytes"], [{"k": {1}}]]
)
def test_new_job_rejects_args_that_are_not_json(args: list[Any]) -> None:
    """Args holding a set, NaN, Infinity, bytes or an object raise InvalidJobError."""
    with pytest.raises(InvalidJobError, match="JSON values"):
        new_job("A", args, queue="default", now=0.0)


@pytest.mark.parametrize("retry", ["yes", 1.5, [], {}])
def test_new_job_rejects_bad_retry(retry: Any) -> None:
    """A retry that is not a bool, an int or None raises InvalidJobError."""
    with pytest.raises(InvalidJobError, match="retry"):
        new_job("A", [], queue="default", now=0.0, retry=retry)


@pytest.mark.parametrize(
    "queue", ["", None, 5, "a b", "tab\there", "nul\x00", "line\n", "x" * (MAX_QUEUE_NAME + 1)]
)
def test_new_job_rejects_bad_queue_names(queue: Any) -> None:
    """Empty, non-string, spaced, unprintable or too long queue names raise InvalidJobError."""
    with pytest.raises(InvalidJobError, match="queue name"):
        new_job("A", [], queue=queue, now=0.0)


def test_new_job_accepts_longest_queue_name() -> None:
    """A queue name of exactly the maximum length is accepted."""
    assert new_job("A", [], queue="q" * MAX_QUEUE_NAME, now=0.0).queue == "q" * MAX_QUEUE_NAME


def test_new_job_rejects_extra_fields_that_override_known_ones() -> None:
    """Extra fields may not replace class, args, jid or other known fields."""
    with pytest.raises(InvalidJobError, match="class"):
        new_job("A", [], queue="default", now=0.0, extra={"class": "os.system"})


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(sidekiq_jobs(), st.booleans())
def test_sidekiq_jobs_round_trip(original: dict[str, Any], compact: bool) -> None:
    """A Sidekiq-shaped job dict, unknown fields included, survives decode and to_json unchanged."""
    text = json.dumps(original, separators=(",", ":") if compact else None, ensure_ascii=compact)
    job = decode_job(text)
    assert json.loads(job.to_json()) == original
    assert job.original_json == text


@settings(max_examples=60, deadline=None)
@given(sidekiq_jobs())
def test_verk_string_args_decode_like_array_args(original: dict[str, Any]) -> None:
    """A job with args as a JSON string decodes to the same job as with args as an array."""
    as_string = dict(original, args=json.dumps(original["args"]))
    from_string = decode_job(json.dumps(as_string))
    from_array = decode_job(json.dumps(original))
    assert from_string.args == original["args"]
    assert from_string == from_array


@settings(max_examples=60, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "class_name": st.text(min_size=1),
            "args": json_args,
            "queue": queue_names.filter(
                lambda q: q.isprintable() and not any(c.isspace() for c in q)
            ),
            "retry": st.none() | st.booleans() | st.integers(-3, 50),
            "extra": unknown_fields,
            "now": st.floats(min_value=0, max_value=4e9),
        }
    )
)
def test_new_jobs_round_trip(fields: dict[str, Any]) -> None:
    """A job built by new_job decodes from its own JSON to an equal job."""
    job = new_job(**fields)
    assert decode_job(job.to_json()) == job


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        (b'{"class": "A", "args": {"x": 1}, "jid": "j1"}', ("j1", "A")),
        (b'{"args": [], "jid": "j2"}', ("j2", None)),
        (b'{"class": "B", "args": ["\xff"], "jid": "j3"}', ("j3", "B")),
        (b'{"class": 5, "jid": 7}', (None, None)),
        (b"[1, 2]", (None, None)),
        (b"\xfe\xff not json", (None, None)),
    ],
)
def test_peek_ids_reads_what_it_can_of_a_malformed_job(text: bytes, ids: tuple) -> None:
    """peek_ids gives jid and class of a job that cannot run, where they are readable strings."""
    assert peek_ids(text) == ids
