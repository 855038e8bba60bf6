"""One check for every door a setting comes through: Settings, VERK_*, TOML, flags,
ConfigureVerk and AddQueue all refuse the same bad values, each naming its door."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from verk_actors.actors.messages import AddQueue, ConfigureVerk, RequestFailed, VerkStarted
from verk_actors.actors.root import VerkRoot
from verk_actors.actors.system import start_node
from verk_actors.cli import EXIT_USAGE, main
from verk_actors.config.file import load_config
from verk_actors.config.queue_spec import QueueSpec
from verk_actors.config.settings import Settings
from verk_actors.errors import ConfigurationError, VerkError

BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"queues": (("default", 5),)}, "queues must hold QueueSpec values"),
    ({"queues": QueueSpec("default", 5)}, "queues must be a list of QueueSpec"),
    ({"imports": "myapp.jobs"}, "imports must be a list of module names"),
    ({"imports": ("myapp/jobs.py",)}, "is not a module name"),
    ({"node_id": "two words"}, "node_id must be"),
    ({"node_id": ""}, "node_id must be"),
    ({"max_batch": 0}, "max_batch must be a whole number of at least 1"),
    ({"poll_interval": "1"}, "poll_interval must be a number of seconds"),
    ({"redis_url": None}, "redis_url must be a string"),
    ({"allow_in_process": "yes"}, "allow_in_process must be True or False"),
]


@pytest.mark.parametrize("concurrency", [0, -1, 2.5, True, None])
def test_queue_spec_refuses_a_concurrency_below_one(concurrency: Any) -> None:
    """QueueSpec itself refuses a concurrency that is not a whole number of at least 1."""
    with pytest.raises(ConfigurationError, match="queue 'default': concurrency must be"):
        QueueSpec("default", concurrency)


@pytest.mark.parametrize("name", ["", "two words", "x" * 201, None])
def test_queue_spec_refuses_an_unusable_name(name: Any) -> None:
    """QueueSpec refuses a name no queue can have."""
    with pytest.raises(ConfigurationError, match="queue name"):
        QueueSpec(name, 1)


@pytest.mark.parametrize(("values", "message"), BAD_SETTINGS)
def test_settings_refuse_bad_values(values: dict[str, Any], message: str) -> None:
    """Settings(...) refuses each bad value with a message saying what to write."""
    with pytest.raises(ConfigurationError, match=message):
        Settings(**values)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("VERK_QUEUES", "default=0", "concurrency must be"),
        ("VERK_IMPORTS", "myapp/jobs.py", "is not a module name"),
        ("VERK_MAX_BATCH", "0", "max_batch must be"),
        ("VERK_BACKTRACE_LINES", "-1", "backtrace_lines must be"),
        ("VERK_NODE_ID", "two words", "node_id must be"),
    ],
)
def test_env_door_names_the_variable(var: str, value: str, message: str) -> None:
    """A bad VERK_* value is refused naming the variable, for every setting."""
    with pytest.raises(ConfigurationError, match=f"{var}=.*{message}"):
        Settings.from_env({var: value})


def test_every_setting_is_read_from_its_variable() -> None:
    """VERK_MAX_BATCH and VERK_BACKTRACE_LINES are read (they were once silently ignored)."""
    s = Settings.from_env({"VERK_MAX_BATCH": "7", "VERK_BACKTRACE_LINES": "3"})
    assert (s.max_batch, s.backtrace_lines) == (7, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[queues]\ndefault = 0", "concurrency must be"),
        ('imports = ["myapp/jobs.py"]', "is not a module name"),
        ('node_id = ""', "node_id must be"),
        ("max_batch = 0", "max_batch must be"),
    ],
)
def test_toml_door_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    """A bad value in the config file is refused naming the file."""
    path = tmp_path / "verk.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--queue", "default=0"], "--queue default=0: queue 'default': concurrency must be"),
        (["--max-batch", "0"], "--max-batch 0: max_batch must be"),
        (["--poll-interval", "fast"], "--poll-interval fast: 'fast' is not a number"),
        (["--node-id", "two words"], "--node-id two words: node_id must be"),
        (["--import", "myapp/jobs.py"], "is not a module name"),
    ],
)
def test_cli_door_exits_2_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`start` with a bad flag exits 2 before starting anything, naming the flag."""
    code = main(["start", "--redis-url", "redis://127.0.0.1:1/0", *argv])
    assert code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_a_queue_without_concurrency_says_which_it_gets(caplog: pytest.LogCaptureFixture) -> None:
    """`--queue default` (Sidekiq's -q has no concurrency) logs the default it takes."""
    with caplog.at_level(logging.INFO, logger="verk_actors"):
        assert QueueSpec.parse("mail") == QueueSpec("mail", 25)
    assert "queue mail: 25 workers, the default (write mail=N to choose)" in caplog.text


def test_configure_refuses_a_module_that_does_not_import(asys: Any, redis_server: Any) -> None:
    """An embedded node refuses ConfigureVerk naming the module and why, not VerkStarted."""
    settings = Settings(
        redis_url=redis_server.url,
        imports=("tests.jobs", "verk_no_such_pkg.jobs"),
        queues=(QueueSpec("default", 2),),
    )
    with pytest.raises(VerkError) as info:
        start_node(asys, settings)
    text = str(info.value)
    assert "ConfigurationError" in text
    assert "verk_no_such_pkg.jobs" in text
    assert "No module named 'verk_no_such_pkg'" in text
    root = asys.createActor(VerkRoot)
    reply = asys.ask(root, ConfigureVerk(settings), 30)
    assert isinstance(reply, RequestFailed), reply
    assert not isinstance(reply, VerkStarted)
    assert "verk_no_such_pkg.jobs" in reply.message


def test_configure_checks_the_settings_again(asys: Any, redis_server: Any) -> None:
    """A Settings forced past its checks is still refused by VerkRoot."""
    settings = Settings(redis_url=redis_server.url, queues=(QueueSpec("default", 2),))
    object.__setattr__(settings, "max_batch", 0)
    root = asys.createActor(VerkRoot)
    reply = asys.ask(root, ConfigureVerk(settings), 30)
    assert isinstance(reply, RequestFailed), reply
    assert "max_batch must be a whole number of at least 1" in reply.message


def test_add_queue_refuses_a_concurrency_below_one(start_verk: Any) -> None:
    """AddQueue with concurrency 0 is refused with RequestFailed saying why."""
    node = start_verk()
    reply = node.asys.ask(node.root, AddQueue("mail", 0), 10)
    assert isinstance(reply, RequestFailed)
    assert "queue 'mail': concurrency must be a whole number of at least 1" in reply.message
    node.stop()
