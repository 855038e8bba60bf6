"""The README says what the code does: its settings table, TOML example, variables,
Redis version and first two commands are checked against the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from verk_actors.config.file import CONFIG_ENV, file_fields, load_config
from verk_actors.config.reference import markdown_table, options
from verk_actors.config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "verk_actors"

START, END = "<!-- settings-reference:start -->\n", "<!-- settings-reference:end -->"

REDIS_SINCE = {
    # Every command a node sends by name (Lua scripts, raw commands), and the Redis
    # version that has it in the form used. A new command must be added here, with
    # its version, before the test passes: then the README's minimum is checked.
    "BLMOVE": (6, 2, 0),
    "LPOS": (6, 0, 6),
    "CLIENT": (5, 0, 0),  # CLIENT ID, CLIENT UNBLOCK
    "DEL": (1, 0, 0),
    "EXISTS": (1, 0, 0),
    "EXPIRE": (1, 0, 0),
    "GET": (1, 0, 0),
    "HGET": (2, 0, 0),
    "HINCRBY": (2, 0, 0),
    "HSETNX": (2, 0, 0),
    "SCARD": (1, 0, 0),
    "HSET": (4, 0, 0),  # several fields at once
    "INCRBY": (1, 0, 0),
    "LLEN": (1, 0, 0),
    "LPUSH": (1, 0, 0),
    "LRANGE": (1, 0, 0),
    "LREM": (1, 0, 0),
    "LTRIM": (1, 0, 0),
    "PEXPIRE": (2, 6, 0),
    "PTTL": (2, 6, 0),
    "RPUSH": (1, 0, 0),
    "SADD": (1, 0, 0),
    "SET": (2, 6, 12),  # SET key value PX ms
    "SISMEMBER": (1, 0, 0),
    "SREM": (1, 0, 0),
    "TIME": (5, 0, 0),  # in a script that writes after it: effects replication (5.0)
    "ZADD": (1, 2, 0),
    "ZCARD": (1, 2, 0),
    "ZRANGE": (1, 2, 0),
    "ZREM": (1, 2, 0),
    "ZREMRANGEBYRANK": (2, 0, 0),
    "ZREMRANGEBYSCORE": (1, 2, 0),
}


def test_readme_starts_with_the_two_commands() -> None:
    """The README's first commands start a node doing real work, then run the tests."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    assert blocks[0].strip() == (
        "python3 -m venv .venv && .venv/bin/pip install '.[web]' "
        "&& .venv/bin/verk-actors start --demo"
    )
    assert blocks[1].strip() == (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    )
    assert README.index(blocks[1]) < README.index("## Requirements")


def test_readme_settings_table_is_made_from_the_code() -> None:
    """The configuration reference in the README is what the code prints, word for word."""
    assert START in README and END in README
    table = README.split(START, 1)[1].split(END, 1)[0]
    assert table == markdown_table(), (
        "regenerate it: python -m verk_actors.config.reference, and paste it between "
        "the settings-reference markers of README.md"
    )
    for option in options():
        assert f"`{option.flag}`" in table
        assert f"`{option.env}`" in table
        assert f"`{option.toml_key}`" in table


def test_readme_toml_example_sets_every_key(tmp_path: Path) -> None:
    """The README's config file example uses every key a file accepts, and loads."""
    [example] = re.findall(r"```toml\n(.*?)```", README, flags=re.S)
    assert set(tomllib.loads(example)) == set(file_fields())
    path = tmp_path / "verk.toml"
    path.write_text(example, encoding="utf-8")
    assert isinstance(Settings(**load_config(path)), Settings)


def test_every_verk_variable_is_documented() -> None:
    """Every VERK_* variable the package reads or names is in the README."""
    named = {CONFIG_ENV, *(option.env for option in options())}
    for source in PACKAGE.rglob("*.py"):
        named.update(re.findall(r"\bVERK_[A-Z][A-Z_]*[A-Z]\b", source.read_text("utf-8")))
    missing = sorted(var for var in named if f"`{var}" not in README)
    assert not missing, f"document these in README.md: {missing}"


def commands_sent() -> set[str]:
    """Redis commands the package sends by name: in its Lua scripts and raw commands."""
    found: set[str] = set()
    for script in (ROOT / "lua").glob("*.lua"):
        found.update(re.findall(r"redis\.p?call\('([A-Za-z]+)'", script.read_text("utf-8")))
    for source in PACKAGE.rglob("*.py"):
        text = source.read_text("utf-8")
        found.update(re.findall(r'send_command\(\s*(?:#[^\n]*\n\s*)?"([A-Z]+)"', text))
        # Pipelined by hand (pack_commands): a tuple of the command and a key.
        found.update(re.findall(r'\(\s*"([A-Z]+)",\s*keys\.', text))
    return {name.upper() for name in found}


def test_the_redis_version_the_readme_asks_for_has_every_command() -> None:
    """The README's minimum Redis version is the newest that any command used needs."""
    sent = commands_sent()
    assert {"BLMOVE", "LPOS", "CLIENT"} <= sent
    unknown = sorted(sent - set(REDIS_SINCE))
    assert not unknown, f"add these to REDIS_SINCE with the Redis version they need: {unknown}"
    newest = max(REDIS_SINCE[name] for name in sent)
    assert f"**Redis {newest[0]}.{newest[1]} or later**" in README


def test_changelog_is_linked() -> None:
    """A CHANGELOG exists at the top and the README's Upgrading section points to it."""
    assert (ROOT / "CHANGELOG.md").is_file()
    upgrading = README.split("## Upgrading", 1)[1].split("\n## ", 1)[0]
    assert "[CHANGELOG.md](CHANGELOG.md)" in upgrading
