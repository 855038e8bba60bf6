"""Settings from a TOML file under VERK_* variables under flags (no Redis needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from verk_actors.config.file import env_var, file_fields, load_config, resolve_settings
from verk_actors.config.settings import QueueSpec, Settings
from verk_actors.errors import ConfigurationError


def write(tmp_path: Path, text: str) -> Path:
    """A verk.toml holding ``text``."""
    path = tmp_path / "verk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_settings_field_can_be_set(tmp_path: Path) -> None:
    """A file sets Settings fields by name, queues as a table, numbers as int or float."""
    path = write(
        tmp_path,
        """
redis_url = "redis://example:6380/2"
node_id = "n1"
poll_interval = 2
max_retries = 5
shutdown_timeout = 12.5
job_timeout = 30
heartbeat_interval = 1
imports = ["app.workers", "app.more"]

[queues]
default = 10
mail = 2
""",
    )
    values = load_config(path)
    settings = Settings(**values)
    assert settings.redis_url == "redis://example:6380/2"
    assert settings.node_id == "n1"
    assert settings.poll_interval == 2.0
    assert isinstance(settings.poll_interval, float)
    assert settings.max_retries == 5
    assert settings.job_timeout == 30.0
    assert settings.imports == ("app.workers", "app.more")
    assert settings.queues == (QueueSpec("default", 10), QueueSpec("mail", 2))


def test_queues_as_a_list(tmp_path: Path) -> None:
    """Queues may also be a list of NAME=N (or NAME) strings."""
    values = load_config(write(tmp_path, 'queues = ["default=3", "mail"]'))
    assert values["queues"] == (QueueSpec("default", 3), QueueSpec("mail", 25))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("redis_url = ", "is not valid TOML"),
        ("pol_interval = 1", "unknown key 'pol_interval'; did you mean 'poll_interval'"),
        ("[verk]\nredis_url = 'x'", "unknown key 'verk'"),
        ('poll_interval = "fast"', "key 'poll_interval' must be a number, got str"),
        ("max_retries = 2.5", "key 'max_retries' must be a whole number, got float"),
        ("max_retries = true", "key 'max_retries' must be a whole number, got bool"),
        ("redis_url = 6379", "key 'redis_url' must be a string"),
        ('imports = "app.workers"', "key 'imports' must be a list of strings"),
        ("queues = 5", "key 'queues' is a int"),
        ("[queues]\ndefault = 0", "key 'queues': queue 'default': concurrency"),
        ('queues = ["default=x"]', "not a whole number"),
        ("poll_interval = -1", "poll_interval must be"),
        ("allow_in_process = true", "unknown key 'allow_in_process'"),
    ],
)
def test_bad_files_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    """A bad file is refused with its path and a message naming the key."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    """A config file that does not exist is named, with where it was asked for."""
    with pytest.raises(ConfigurationError, match=r"does not exist; check --config or VERK_CONFIG"):
        load_config(tmp_path / "nope.toml")


def test_flags_over_env_over_file(tmp_path: Path) -> None:
    """Each field comes from the flag if given, else the variable, else the file."""
    path = write(
        tmp_path,
        'redis_url = "redis://file/0"\nnode_id = "file-node"\npoll_interval = 3\n'
        'queues = ["fromfile=1"]\n',
    )
    env = {"VERK_REDIS_URL": "redis://env/0", "VERK_NODE_ID": "env-node"}
    resolved = resolve_settings(
        {"redis_url": "redis://flag/0", "node_id": None}, config=path, environ=env
    )
    s = resolved.settings
    assert (s.redis_url, s.node_id, s.poll_interval) == ("redis://flag/0", "env-node", 3.0)
    assert s.queues == (QueueSpec("fromfile", 1),)
    assert s.max_retries == Settings().max_retries
    assert resolved.source("redis_url") == "flag"
    assert resolved.source("node_id") == "env"
    assert resolved.source("poll_interval") == "file"
    assert resolved.source("max_retries") is None


def test_config_named_by_env(tmp_path: Path) -> None:
    """VERK_CONFIG names the file when --config is not given; --config wins over it."""
    first = write(tmp_path, 'node_id = "from-env-file"')
    second = tmp_path / "other.toml"
    second.write_text('node_id = "from-flag-file"')
    env = {"VERK_CONFIG": str(first)}
    assert resolve_settings(environ=env).settings.node_id == "from-env-file"
    assert resolve_settings(config=second, environ=env).settings.node_id == "from-flag-file"
    assert resolve_settings(environ={}).config_path is None


def test_env_var_names_follow_the_fields() -> None:
    """Every field a file may set has the VERK_<FIELD> variable that Settings.from_env reads."""
    for name in ("redis_url", "queues", "imports", "poll_interval"):
        assert name in file_fields()
    assert env_var("poll_interval") == "VERK_POLL_INTERVAL"
    values = Settings.from_env({env_var("poll_interval"): "4", env_var("queues"): "a=1"})
    assert values.poll_interval == 4.0
    assert values.queues == (QueueSpec("a", 1),)
