"""verk_actors.jobs.running: running one prepared job and describing how it ended."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from verk_actors import Worker
from verk_actors.config.settings import Settings
from verk_actors.errors import JobTimeoutError
from verk_actors.jobs.registry import WorkerRegistry
from verk_actors.jobs.retry import MALFORMED_CLASS, Fate
from verk_actors.jobs.running import (
    HARD_KILL_GRACE,
    JobOutcome,
    PreparedJob,
    died_failure,
    run_prepared,
    time_limit,
)

CALLS: list[tuple[str, Any]] = []


class Succeed(Worker):
    """Records its args and the jid of the job it was given."""

    def perform(self, *args: Any) -> None:
        CALLS.append(("Succeed", (self.job.jid, args)))


class Boom(Worker):
    """Raises ValueError with its argument in the message."""

    def perform(self, token: Any) -> None:
        raise ValueError(f"boom {token}")


class Silent(Worker):
    """Raises an exception without a message."""

    def perform(self) -> None:
        raise KeyError


class Exits(Worker):
    """Calls sys.exit inside the job."""

    def perform(self) -> None:
        raise SystemExit(3)


class Sleepy(Worker):
    """Sleeps past its 0.2 s time limit."""

    timeout = 0.2

    def perform(self, seconds: float) -> None:
        time.sleep(seconds)


class Patient(Worker):
    """Has a long time limit of its own."""

    timeout = 30.0

    def perform(self, seconds: float) -> None:
        time.sleep(seconds)


class Unlimited(Worker):
    """Has no time limit of its own."""

    def perform(self, seconds: float) -> None:
        time.sleep(seconds)


class CustomRetry(Worker):
    """Asks for a 42 s delay before its next try, recording what it was asked."""

    def perform(self) -> None:
        raise RuntimeError("again")

    def retry_in(self, retry_count: int, error: BaseException) -> float | None:
        CALLS.append(("retry_in", (retry_count, type(error).__name__)))
        return 42


class BrokenRetryHook(Worker):
    """A retry_in hook that itself raises."""

    def perform(self) -> None:
        raise RuntimeError("again")

    def retry_in(self, retry_count: int, error: BaseException) -> float | None:
        raise ZeroDivisionError


REGISTRY = WorkerRegistry(
    [Succeed, Boom, Silent, Exits, Sleepy, Patient, Unlimited, CustomRetry, BrokenRetryHook]
)
SETTINGS = Settings()


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    """Each test starts with no recorded calls."""
    CALLS.clear()


def text(cls: str, *args: Any, **fields: Any) -> bytes:
    """A job text for ``cls``."""
    job = {"class": cls, "args": list(args), "jid": "j1", "queue": "q", **fields}
    return json.dumps(job).encode()


def run(raw: bytes, settings: Settings = SETTINGS, ref: int = 5) -> JobOutcome:
    """Prepare and run ``raw`` on queue q."""
    return run_prepared(PreparedJob(raw, REGISTRY, settings, "q"), ref, settings)


def test_success() -> None:
    """A job that returns gives an ok outcome with no failure, after running with its args."""
    outcome = run(text("Succeed", 1, "two"), ref=9)
    assert outcome.ok
    assert outcome.failure is None
    assert (outcome.ref, outcome.jid, outcome.class_name) == (9, "j1", "Succeed")
    assert outcome.duration >= 0
    assert CALLS == [("Succeed", ("j1", (1, "two")))]


def test_success_by_dotted_name() -> None:
    """A job naming its worker by dotted path runs that worker."""
    assert run(text(f"{__name__}.Succeed")).ok
    assert len(CALLS) == 1


def test_exception_becomes_retry_failure() -> None:
    """An exception gives a retry record with error fields and backtrace lines."""
    before = time.time()
    outcome = run(text("Boom", 42, tags=["keep"]))
    assert not outcome.ok
    assert outcome.failure is not None
    assert (outcome.error_class, outcome.error_message) == ("ValueError", "boom 42")
    assert outcome.failure.fate == Fate.RETRY
    assert before + 1 + 15 + 2 <= outcome.failure.score <= time.time() + 1 + 15 + 60
    data = json.loads(outcome.failure.text)
    assert data["error_class"] == "ValueError"
    assert data["error_message"] == "boom 42"
    assert data["retry_count"] == 1
    assert data["tags"] == ["keep"]
    assert data["args"] == [42]
    backtrace = data["error_backtrace"]
    assert isinstance(backtrace, list)
    assert all(isinstance(line, str) for line in backtrace)
    assert any("in perform" in line and "boom" in line for line in backtrace)


@pytest.mark.parametrize("lines", [0, 1, 2])
def test_backtrace_is_bounded(lines: int) -> None:
    """error_backtrace keeps at most backtrace_lines frames, the innermost one last."""
    outcome = run(text("Boom", 1), settings=Settings(backtrace_lines=lines))
    assert outcome.failure is not None
    backtrace = json.loads(outcome.failure.text)["error_backtrace"]
    assert len(backtrace) == lines
    if lines:
        assert "in perform" in backtrace[-1]


def test_exception_without_message() -> None:
    """An exception with no message is described by its class name."""
    outcome = run(text("Silent"))
    assert (outcome.error_class, outcome.error_message) == ("KeyError", "KeyError")


def test_system_exit_is_a_failure() -> None:
    """A job calling sys.exit fails instead of ending the worker process."""
    outcome = run(text("Exits"))
    assert outcome.error_class == "SystemExit"
    assert outcome.failure is not None
    assert outcome.failure.fate == Fate.RETRY


def test_last_retry_goes_dead() -> None:
    """A failure past the job's retry limit goes to dead."""
    outcome = run(text("Boom", 1, retry=2, retry_count=2, failed_at=1.0))
    assert outcome.failure is not None
    assert outcome.failure.fate == Fate.DEAD


@pytest.mark.parametrize("raw", [b"not json", b'{"args": [1]}', b"[1,2]", b"\xff\xfe"])
def test_malformed_text_goes_dead(raw: bytes) -> None:
    """A text that is not a job is refused without running and goes to dead."""
    prepared = PreparedJob(raw, REGISTRY, SETTINGS, "q")
    assert prepared.refusal is not None
    outcome = run_prepared(prepared, 1, SETTINGS)
    assert outcome.failure is not None
    assert outcome.failure.fate == Fate.DEAD
    assert outcome.error_class == "MalformedJobError"
    assert (outcome.jid, outcome.class_name) == (None, None)
    if raw == b"\xff\xfe":
        assert outcome.failure.text == raw, "not UTF-8: kept byte for byte"
        return
    data = json.loads(outcome.failure.text)
    assert data["error_class"] == "MalformedJobError"
    assert data["queue"] == "q"
    if raw.startswith(b"{"):
        assert data["args"] == [1]
    else:
        assert data["class"] == MALFORMED_CLASS


def test_malformed_job_outcome_names_its_readable_jid_and_class() -> None:
    """A malformed job whose jid and class can be read is reported under them."""
    raw = json.dumps({"class": "Boom", "args": {"a": 1}, "jid": "bad1"}).encode()
    outcome = run_prepared(PreparedJob(raw, REGISTRY, SETTINGS, "q"), 1, SETTINGS)
    assert (outcome.error_class, outcome.jid, outcome.class_name) == (
        "MalformedJobError",
        "bad1",
        "Boom",
    )


@pytest.mark.parametrize("cls", ["os.system", "builtins.eval", "subprocess.Popen", "Nope"])
def test_unknown_class_goes_to_retry(cls: str) -> None:
    """A class that is not registered is not run; the job goes to retry with UnknownWorkerError."""
    outcome = run(text(cls, "echo pwned"))
    assert outcome.failure is not None
    assert outcome.failure.fate == Fate.RETRY
    assert outcome.error_class == "UnknownWorkerError"
    assert (outcome.jid, outcome.class_name) == ("j1", cls)
    data = json.loads(outcome.failure.text)
    assert data["error_class"] == "UnknownWorkerError"
    assert cls in data["error_message"]
    assert data["retry_count"] == 1


def test_worker_timeout_raises_job_timeout_error() -> None:
    """A job sleeping past its worker's 0.2 s timeout fails with JobTimeoutError."""
    prepared = PreparedJob(text("Sleepy", 3), REGISTRY, SETTINGS, "q")
    assert prepared.limit == 0.2
    started = time.monotonic()
    outcome = run_prepared(prepared, 1, SETTINGS)
    assert time.monotonic() - started < 1.5
    assert outcome.error_class == "JobTimeoutError"
    assert outcome.failure is not None
    assert outcome.failure.fate == Fate.RETRY
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_job_timeout_field_overrides_worker_timeout() -> None:
    """A job's own "timeout" field overrides its worker's time limit."""
    prepared = PreparedJob(text("Patient", 3, timeout=0.2), REGISTRY, SETTINGS, "q")
    assert prepared.limit == 0.2
    assert prepared.deadline(100.0) == 100.0 + 0.2 + HARD_KILL_GRACE
    started = time.monotonic()
    outcome = run_prepared(prepared, 1, SETTINGS)
    assert time.monotonic() - started < 1.5
    assert outcome.error_class == "JobTimeoutError"


def test_time_limit_sources() -> None:
    """The limit is the job's, else the worker's, else the node's job_timeout, else none."""
    assert PreparedJob(text("Unlimited", 0), REGISTRY, SETTINGS, "q").limit is None
    assert PreparedJob(text("Unlimited", 0), REGISTRY, SETTINGS, "q").deadline(5.0) == 0.0
    node = Settings(job_timeout=7.0)
    assert PreparedJob(text("Unlimited", 0), REGISTRY, node, "q").limit == 7.0
    assert PreparedJob(text("Patient", 0), REGISTRY, node, "q").limit == 30.0
    for bad in (0, -1, "5", True):
        assert PreparedJob(text("Patient", 0, timeout=bad), REGISTRY, node, "q").limit == 30.0


def test_quick_job_is_not_timed_out() -> None:
    """A job that ends within its limit succeeds and leaves no timer armed."""
    outcome = run(text("Sleepy", 0.01))
    assert outcome.ok
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_time_limit_restores_handler() -> None:
    """time_limit raises JobTimeoutError when time is up and restores the SIGALRM handler."""
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(JobTimeoutError, match=r"timed out after 0\.1 s"), time_limit(0.1):
        time.sleep(2)
    assert signal.getsignal(signal.SIGALRM) == before
    with time_limit(None):
        pass


def test_retry_in_override_sets_the_score() -> None:
    """A worker's retry_in(count, error) gives the delay of the retry."""
    before = time.time()
    outcome = run(text("CustomRetry", retry_count=2, failed_at=1.0))
    assert outcome.failure is not None
    assert outcome.failure.fate == Fate.RETRY
    assert before + 42 <= outcome.failure.score <= time.time() + 42
    assert CALLS == [("retry_in", (3, "RuntimeError"))]


def test_broken_retry_in_falls_back_to_backoff() -> None:
    """A retry_in hook that raises is ignored and Sidekiq's backoff applies."""
    before = time.time()
    outcome = run(text("BrokenRetryHook"))
    assert outcome.failure is not None
    assert before + 18 <= outcome.failure.score <= time.time() + 76


def test_died_failure() -> None:
    """A job whose worker died goes to retry with the given error; a malformed one to dead."""
    record = died_failure(
        text("Boom", 1),
        reason="killed",
        error_class="WorkerDiedError",
        queue="q",
        settings=SETTINGS,
    )
    assert record.fate == Fate.RETRY
    data = json.loads(record.text)
    assert (data["error_class"], data["error_message"]) == ("WorkerDiedError", "killed")
    limited = died_failure(
        text("Boom", 1),
        reason="killed",
        error_class="WorkerDiedError",
        queue="q",
        settings=SETTINGS,
        worker_retries={"Boom": False},
    )
    assert limited.fate == Fate.DEAD, "a job without retry takes its worker's option"
    dead = died_failure(
        b"garbage", reason="killed", error_class="WorkerDiedError", queue="q", settings=SETTINGS
    )
    assert dead.fate == Fate.DEAD
    assert json.loads(dead.text)["args"] == ["garbage"]
