"""Settings, queue specs, Redis URL checks and the worker registry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import tests.jobs
from verk_actors import Worker
from verk_actors.config.redis_url import check_url, redact_url
from verk_actors.config.settings import DEFAULT_CONCURRENCY, DEFAULT_REDIS_URL, QueueSpec, Settings
from verk_actors.errors import AsyncWorkerError, ConfigurationError, UnknownWorkerError
from verk_actors.jobs.registry import WorkerRegistry

# --- Settings --------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    """Settings() has the documented defaults (Sidekiq's where Sidekiq has one)."""
    s = Settings()
    assert s.redis_url == DEFAULT_REDIS_URL == "redis://127.0.0.1:6379/0"
    assert s.queues == (QueueSpec("default", 25),)
    assert DEFAULT_CONCURRENCY == 25
    assert s.node_id is None
    assert s.imports == ()
    assert s.poll_interval == 1.0
    assert s.max_retries == 25
    assert s.dead_max_jobs == 10_000
    assert s.dead_timeout == 180 * 86_400
    assert s.shutdown_timeout == 25.0
    assert s.job_timeout is None
    assert s.heartbeat_interval == 5.0
    assert s.lease_ttl > s.heartbeat_interval  # a lease outlives one missed beat
    assert s.backtrace_lines == 20
    assert s.max_batch == 500
    assert s.allow_in_process is False


def test_settings_are_frozen() -> None:
    """Settings cannot be changed in place; with_changes makes a changed copy."""
    s = Settings()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        s.max_retries = 3  # type: ignore[misc]
    assert s.with_changes(max_retries=3).max_retries == 3
    assert s.max_retries == 25


def test_settings_repr_hides_password() -> None:
    """The repr of Settings shows the Redis URL without its password."""
    text = repr(Settings(redis_url="redis://:hunter2@example.com:6379/0"))
    assert "hunter2" not in text
    assert "example.com" in text


def test_from_env_reads_verk_variables() -> None:
    """from_env reads every VERK_* variable, including a VERK_QUEUES list."""
    env = {
        "VERK_REDIS_URL": "redis://r:1/2",
        "VERK_NODE_ID": "n1",
        "VERK_POLL_INTERVAL": "0.5",
        "VERK_MAX_RETRIES": "3",
        "VERK_DEAD_MAX_JOBS": "50",
        "VERK_DEAD_TIMEOUT": "3600",
        "VERK_SHUTDOWN_TIMEOUT": "7",
        "VERK_JOB_TIMEOUT": "30",
        "VERK_HEARTBEAT_INTERVAL": "2",
        "VERK_QUEUES": "a=2, b ,",
        "VERK_IMPORTS": "myapp.jobs, other.jobs",
        "UNRELATED": "x",
    }
    s = Settings.from_env(env)
    assert s.redis_url == "redis://r:1/2"
    assert s.node_id == "n1"
    assert s.poll_interval == 0.5
    assert s.max_retries == 3
    assert s.dead_max_jobs == 50
    assert s.dead_timeout == 3600.0
    assert s.shutdown_timeout == 7.0
    assert s.job_timeout == 30.0
    assert s.heartbeat_interval == 2.0
    assert s.queues == (QueueSpec("a", 2), QueueSpec("b", DEFAULT_CONCURRENCY))
    assert s.imports == ("myapp.jobs", "other.jobs")


def test_from_env_reads_os_environ_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a mapping, from_env reads os.environ at call time; overrides win, None ignored."""
    monkeypatch.setenv("VERK_MAX_RETRIES", "4")
    monkeypatch.setenv("VERK_NODE_ID", "from-env")
    s = Settings.from_env(node_id="override", job_timeout=None)
    assert s.max_retries == 4
    assert s.node_id == "override"
    assert s.job_timeout is None


def test_from_env_empty_is_defaults() -> None:
    """No VERK_* variables (or empty ones) give the defaults."""
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"VERK_MAX_RETRIES": "", "VERK_QUEUES": ""}) == Settings()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("VERK_POLL_INTERVAL", "fast"),
        ("VERK_POLL_INTERVAL", "-1"),
        ("VERK_POLL_INTERVAL", "nan"),
        ("VERK_MAX_RETRIES", "2.5"),
        ("VERK_DEAD_MAX_JOBS", "many"),
        ("VERK_SHUTDOWN_TIMEOUT", "0"),
        ("VERK_JOB_TIMEOUT", "-5"),
        ("VERK_HEARTBEAT_INTERVAL", "inf"),
        ("VERK_QUEUES", "a=x"),
        ("VERK_QUEUES", "a=0"),
        ("VERK_QUEUES", "a,b,a"),
        ("VERK_QUEUES", "has space=2"),
    ],
)
def test_from_env_bad_values_name_the_variable(var: str, value: str) -> None:
    """A bad VERK_* value raises ConfigurationError naming the variable."""
    with pytest.raises(ConfigurationError, match=var):
        Settings.from_env({var: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("poll_interval", 0),
        ("shutdown_timeout", -1.0),
        ("heartbeat_interval", float("nan")),
        ("job_timeout", 0.0),
    ],
)
def test_settings_refuse_non_positive_times(field: str, value: float) -> None:
    """Times that must be positive refuse zero, negatives and NaN, naming the field."""
    with pytest.raises(ConfigurationError, match=field):
        Settings(**{field: value})


# --- QueueSpec -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("default", QueueSpec("default", DEFAULT_CONCURRENCY)),
        ("mail=3", QueueSpec("mail", 3)),
        (" mail = 7", QueueSpec("mail", 7)),
    ],
)
def test_queue_spec_parse(text: str, spec: QueueSpec) -> None:
    """NAME and NAME=CONCURRENCY parse, with spaces around the parts ignored."""
    assert QueueSpec.parse(text) == spec


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("mail=x", "not a whole number"),
        ("mail=1.5", "not a whole number"),
        ("mail=", "not a whole number"),
        ("mail=0", "at least 1"),
        ("mail=-2", "at least 1"),
        ("=3", "queue name"),
        ("", "queue name"),
        ("two words=3", "not usable"),
        ("x" * 201, "not usable"),
    ],
)
def test_queue_spec_parse_errors(text: str, match: str) -> None:
    """Bad queue specs raise ConfigurationError saying what is wrong."""
    with pytest.raises(ConfigurationError, match=match):
        QueueSpec.parse(text)


def test_duplicate_queues_refused() -> None:
    """A queue listed twice in Settings raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="'mail' is listed twice"):
        Settings(queues=(QueueSpec("mail", 1), QueueSpec("other", 1), QueueSpec("mail", 2)))


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:s3cret@host:6379/0", "redis://user:***@host:6379/0"),
        (
            "rediss://user:s3cret@host:6380/1?ssl_cert_reqs=none",
            "rediss://user:***@host:6380/1?ssl_cert_reqs=none",
        ),
        ("rediss://:s3cret@host", "rediss://:***@host"),
        ("redis://:s3cret@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("redis://host:6379/0?db=1&password=s3cret", "redis://host:6379/0?db=1&password=***"),
        ("unix://:s3cret@/tmp/redis.sock?db=0", "unix://:***@/tmp/redis.sock?db=0"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("redis://:s3cret#x@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        ("redis://:s3cret/x@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        ("redis://u:s3cret?x@h:1/0?db=1", "redis://u:***@h:1/0?db=1"),
        ("redis://:s3c@ret@h:1/0", "redis://:***@h:1/0"),
        ("redis://h:1/0?client_name=a@b", "redis://h:1/0?client_name=a@b"),
        ("redis://h/0?password=s3cret#frag", "redis://h/0?password=***#frag"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    """redact_url replaces passwords (with or without username, TLS, in the query) by ***."""
    assert redact_url(url) == redacted
    assert "s3cret" not in redact_url(url)


@pytest.mark.parametrize("url", ["redis://h:6379/0", "rediss://h", "unix:///tmp/redis.sock"])
def test_check_url_accepts_redis_urls(url: str) -> None:
    """redis://, rediss:// and unix:// URLs pass check_url unchanged."""
    assert check_url(url) == url


@pytest.mark.parametrize("url", ["http://:s3cret@h:6379/0", "localhost:6379", "", "h:6379"])
def test_check_url_rejects_other_schemes(url: str) -> None:
    """Other URLs raise ConfigurationError that shows the expected form but not the password."""
    with pytest.raises(ConfigurationError, match="redis://") as info:
        check_url(url)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("url", ["redis://:s3cret#x@h:1/0", "redis://u:s3/cret@h:1/0"])
def test_check_url_asks_to_escape_a_password_that_breaks_the_url(url: str) -> None:
    """A password with an unescaped '#', '/' or '?' is refused with how to escape it, and
    without the password."""
    with pytest.raises(ConfigurationError, match="percent-encode") as info:
        check_url(url)
    assert "s3" not in str(info.value)


# --- WorkerRegistry --------------------------------------------------------------------------


class Aliased(Worker):
    """A worker known to Ruby clients under another name."""

    sidekiq_class = "Billing::ChargeWorker"

    def perform(self, *args: Any) -> None:
        return None


def test_from_modules_registers_module_workers() -> None:
    """from_modules registers each Worker subclass of a module under class name and path."""
    registry = WorkerRegistry.from_modules(["tests.jobs"])
    for name in ("Record", "Noop", "Fail", "Sleep", "Crash", "Hang", "Slow"):
        cls = getattr(tests.jobs, name)
        assert registry.lookup(name) is cls
        assert registry.lookup(f"tests.jobs.{name}") is cls
    assert "Worker" not in registry
    assert "client" not in registry
    for name in registry.names():
        cls = registry.lookup(name)
        assert issubclass(cls, Worker)
        assert cls.__module__ == "tests.jobs"
        assert name in (cls.__name__, f"tests.jobs.{cls.__qualname__}", cls.sidekiq_class)


def test_sidekiq_class_alias() -> None:
    """A worker's sidekiq_class is one more name it is found by."""
    registry = WorkerRegistry([Aliased])
    assert registry.lookup("Billing::ChargeWorker") is Aliased
    assert registry.lookup("Aliased") is Aliased
    assert registry.lookup(f"{__name__}.Aliased") is Aliased


def test_retry_options_name_each_worker_option() -> None:
    """retry_options gives each name's worker retry option, leaving out values that are not one."""

    class Odd(Worker):
        retry = "often"  # type: ignore[assignment]

        def perform(self, *args: Any) -> None:
            return None

    options = dict(WorkerRegistry([Aliased, tests.jobs.FailTwice, Odd]).retry_options())
    assert options["FailTwice"] == options["tests.jobs.FailTwice"] == 2
    assert options["Billing::ChargeWorker"] is options["Aliased"] is True
    assert "Odd" not in options


def test_async_perform_refused_at_registration() -> None:
    """A worker with async def perform is refused with AsyncWorkerError saying what to do."""

    class AsyncMailer(Worker):
        async def perform(self, *args: Any) -> None:  # type: ignore[override]
            return None

    with pytest.raises(AsyncWorkerError, match=r"AsyncMailer.perform is async.*asyncio.run"):
        WorkerRegistry([AsyncMailer])
    with pytest.raises(AsyncWorkerError, match="AsyncRecord"):
        WorkerRegistry.from_modules(["tests.async_jobs"])
    assert issubclass(AsyncWorkerError, ConfigurationError)


def test_two_workers_with_one_name_refused() -> None:
    """Registering two classes under one name raises ConfigurationError naming both."""

    class Noop(Worker):
        def perform(self, *args: Any) -> None:
            return None

    registry = WorkerRegistry.from_modules(["tests.jobs"])
    with pytest.raises(ConfigurationError, match="two workers answer to 'Noop'"):
        registry.register(Noop)


def test_register_refuses_non_workers() -> None:
    """Only classes with a perform method can be registered."""
    with pytest.raises(ConfigurationError):
        WorkerRegistry([print])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        WorkerRegistry([dict])


@pytest.mark.parametrize(
    "name", ["os.system", "builtins.eval", "subprocess.Popen", "this.s", "eval", "", "Record "]
)
def test_lookup_never_imports(name: str) -> None:
    """Names that are not registered raise UnknownWorkerError, and nothing is imported."""
    registry = WorkerRegistry.from_modules(["tests.jobs"])
    loaded = set(sys.modules)
    with pytest.raises(UnknownWorkerError, match="no registered worker"):
        registry.lookup(name)
    assert set(sys.modules) == loaded


@pytest.mark.parametrize("name", [None, 5, ["Record"]])
def test_lookup_of_non_strings(name: Any) -> None:
    """A job class that is not a string raises UnknownWorkerError, not a TypeError."""
    with pytest.raises(UnknownWorkerError):
        WorkerRegistry.from_modules(["tests.jobs"]).lookup(name)


def test_missing_module_is_a_configuration_error() -> None:
    """Importing a module that does not exist raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="no_such_module_for_verk"):
        WorkerRegistry.from_modules(["tests.jobs", "no_such_module_for_verk.jobs"])


def test_module_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module that raises on import gives ConfigurationError naming it and the error."""
    (tmp_path / "verk_broken_jobs_mod.py").write_text("raise RuntimeError('half-written')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"verk_broken_jobs_mod.*half-written"):
        WorkerRegistry.from_modules(["verk_broken_jobs_mod"])
    sys.modules.pop("verk_broken_jobs_mod", None)
