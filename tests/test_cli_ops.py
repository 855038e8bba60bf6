"""The Redis-side `verk-actors` subcommands, run through main([...]) against a real Redis."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.ops_data import add_to_set, failed_fields
from tests.servers import RedisServer, free_port
from verk_actors import Client
from verk_actors.cli import EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, build_parser, main
from verk_actors.cli import start as start_cmd
from verk_actors.cli import stats as stats_cmd
from verk_actors.config.redis_url import redact_url
from verk_actors.config.reference import options
from verk_actors.config.settings import field_kind, read_text
from verk_actors.store import keys

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VERK_* variable of the caller's shell leaks into a test."""
    for var in ("VERK_REDIS_URL", "VERK_CONFIG", "VERK_QUEUES", "VERK_NODE_ID", "VERK_IMPORTS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def run(redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `verk-actors ARGS --redis-url <test server>`: (exit code, stdout, stderr)."""

    def call(*argv: str, url: bool = True) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*argv, *(["--redis-url", redis_server.url] if url else [])])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def r_url(r: redis.Redis) -> str:
    """The URL of the test server ``r`` is a client of."""
    kwargs = r.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


def unreachable_url() -> str:
    """A Redis URL nobody answers at, with a password that must never be printed."""
    return f"redis://:s3cret@127.0.0.1:{free_port()}/0"


# --- stats and nodes -----------------------------------------------------------------------


def test_stats_table_and_json(run: Run, r: redis.Redis) -> None:
    """`stats` prints totals, queues and days as a table, and the same numbers as JSON."""
    r.set(keys.STAT_PROCESSED, 1234)
    Client(r).enqueue_many("W", [[1], [2]], queue="mail")
    r.sadd(keys.PAUSED, "mail")
    code, out, err = run("stats", "--days", "3")
    assert (code, err) == (EXIT_OK, "")
    assert "PROCESSED" in out
    assert "1234" in out
    assert any(line.split()[:2] == ["mail", "2"] and "paused" in line for line in out.splitlines())
    assert out.count("\n20") >= 3  # three day rows
    code, out, _ = run("stats", "--json")
    data = json.loads(out)
    assert data["totals"]["processed"] == 1234
    assert data["totals"]["enqueued"] == 2
    assert data["queues"][0]["name"] == "mail"
    assert data["queues"][0]["paused"] is True
    assert len(data["history"]) == 7


def test_stats_watch_refreshes_until_ctrl_c(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """`stats --watch` redraws with an ANSI clear each interval on a terminal, and Ctrl-C
    exits 0."""
    pauses: list[float] = []

    def fake_pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(stats_cmd, "_pause", fake_pause)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = run("stats", "--watch", "0.5")
    assert code == EXIT_OK
    assert out.count(stats_cmd.CLEAR_SCREEN) == 2
    assert pauses == [0.5, 0.5]
    pauses.clear()
    code, out, _ = run("stats", "--watch", "--json")
    assert code == EXIT_OK
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert all("totals" in json.loads(line) for line in lines)
    assert pauses == [stats_cmd.DEFAULT_WATCH] * 2


def test_nodes_table_and_json(run: Run, r: redis.Redis) -> None:
    """`nodes` lists every node with alive/dead and what its info hash says."""
    code, out, _ = run("nodes")
    assert code == EXIT_OK
    assert "no nodes yet" in out
    r.sadd(keys.NODES, "n-alive", "n-dead")
    r.set(keys.node_lease_key("n-alive"), "1", ex=30)
    r.hset(
        keys.node_info_key("n-alive"),
        mapping={
            "host": "box",
            "pid": 42,
            "busy": 2,
            "beat": time.time(),
            "queues": json.dumps([{"name": "default", "concurrency": 5}]),
        },
    )
    code, out, _ = run("nodes")
    lines = out.splitlines()[1:]  # under the "Redis <url>" line
    assert lines[0].split()[:3] == ["NODE", "STATE", "HOST"]
    assert lines[1].split()[:4] == ["n-alive", "alive", "box", "42"]
    assert "default=5" in lines[1]
    assert lines[2].split()[:2] == ["n-dead", "dead"]
    code, out, _ = run("nodes", "--json")
    nodes = json.loads(out)["nodes"]
    assert [(n["node_id"], n["alive"]) for n in nodes] == [("n-alive", True), ("n-dead", False)]


def test_stats_watch_into_a_pipe_writes_no_escape_codes(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stats --watch | tee log` gets the snapshots one after another, no clear-screen."""
    pauses: list[float] = []

    def fake_pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(stats_cmd, "_pause", fake_pause)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    code, out, _ = run("stats", "--watch", "0.5")
    assert code == EXIT_OK
    assert "\x1b" not in out
    assert out.count("verk-actors stats at") == 2


# --- which Redis ----------------------------------------------------------------------------


@pytest.fixture
def secret_server() -> Iterator[RedisServer]:
    """A private Redis server that requires the password s3cret."""
    server = RedisServer(password="s3cret").start()
    yield server
    server.cleanup()


NAMED = [
    ["stats"],
    ["nodes"],
    ["queues"],
    ["queues", "peek", "mail"],
    ["queues", "delete", "mail", "j1"],
    ["queues", "clear", "mail", "--yes"],
    ["retry", "list"],
    ["dead", "retry", "--all"],
    ["scheduled", "clear", "--yes"],
    ["pause", "mail"],
    ["resume", "mail"],
    ["enqueue", "W", "--queue", "mail"],
]


@pytest.mark.parametrize("argv", NAMED, ids=" ".join)
def test_every_command_names_the_redis_it_used(
    argv: list[str], secret_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tables start with a "Redis <url>" line and JSON has "redis", the password hidden."""
    shown = f"redis://:***@127.0.0.1:{secret_server.port}/0"
    for as_json in ([], ["--json"]):
        with Client(url=secret_server.url) as client:
            client.enqueue("W", queue="mail", jid="j1")
        assert main([*argv, *as_json, "--redis-url", secret_server.url]) == EXIT_OK
        out, _ = capsys.readouterr()
        assert "s3cret" not in out
        if as_json:
            assert json.loads(out)["redis"] == shown
        else:
            first = out.splitlines()[0]
            assert first == f"Redis {shown}" or first.endswith(f", Redis {shown}")


# --- queues ---------------------------------------------------------------------------------


def test_queues_list_and_peek(run: Run, r: redis.Redis) -> None:
    """`queues` lists queues; `queues peek` lists a page of jobs next-to-run first."""
    client = Client(r)
    jids = client.enqueue_many("HardWorker", [["bob", n] for n in range(5)])
    code, out, _ = run("queues")
    assert code == EXIT_OK
    assert out.splitlines()[2].split()[:2] == ["default", "5"]
    code, out, _ = run("queues", "list", "--json")
    assert json.loads(out)["queues"][0]["size"] == 5
    code, out, _ = run("queues", "peek", "default", "--limit", "2", "--offset", "1")
    rows = out.splitlines()[1:]
    assert rows[1].split()[:3] == ["1", jids[1], "HardWorker"]
    assert rows[2].split()[1] == jids[2]
    assert "of 5" in out
    code, out, _ = run("queues", "peek", "default", "--json")
    data = json.loads(out)
    assert [j["jid"] for j in data["jobs"]] == jids
    assert data["jobs"][0]["job"]["args"] == ["bob", 0]


def test_queues_peek_unknown_queue_is_not_found(run: Run) -> None:
    """Peeking at a queue that does not exist exits 3 with the known queues on stderr."""
    code, out, err = run("queues", "peek", "nosuch")
    assert (code, out) == (EXIT_NOT_FOUND, "")
    assert "there is no queue 'nosuch'" in err


def test_queues_delete_and_clear(run: Run, r: redis.Redis) -> None:
    """`queues delete` removes one job (3 if absent); `queues clear` needs --yes."""
    client = Client(r)
    keep, drop = client.enqueue("W", 1), client.enqueue("W", 2)
    code, out, _ = run("queues", "delete", "default", drop)
    assert code == EXIT_OK
    assert drop in out
    assert Client(r).redis.llen(keys.queue_key("default")) == 1
    code, _, err = run("queues", "delete", "default", drop)
    assert code == EXIT_NOT_FOUND
    assert "no pending job" in err
    code, _, err = run("queues", "clear", "default")
    assert code == EXIT_USAGE
    assert "--yes" in err
    assert r.llen(keys.queue_key("default")) == 1
    code, out, _ = run("queues", "clear", "default", "--yes", "--json")
    assert code == EXIT_OK
    assert json.loads(out) == {"redis": redact_url(r_url(r)), "queue": "default", "deleted": 1}
    assert not r.sismember(keys.QUEUES, "default")
    assert keep  # it went with the clear


# --- retry / scheduled / dead ---------------------------------------------------------------

SETS = [("retry", keys.RETRY), ("scheduled", keys.SCHEDULE), ("dead", keys.DEAD)]


@pytest.mark.parametrize(("command", "key"), SETS)
def test_set_list_show_delete(run: Run, r: redis.Redis, command: str, key: str) -> None:
    """list, show and delete work alike on the three sets, as tables and JSON."""
    jid, _ = add_to_set(r, key, time.time() + 60, tags=["t"], **failed_fields(2))
    other, _ = add_to_set(r, key, time.time() + 120)
    r.zadd(key, {"garbage": time.time()})
    code, out, err = run(command, "list")
    assert (code, err) == (EXIT_OK, "")
    assert jid in out
    assert other in out
    assert "(malformed)" in out
    code, out, _ = run(command, "list", "--json", "--limit", "1", "--no-newest-first")
    data = json.loads(out)
    assert data["count"] == 3
    assert data["entries"][0]["raw"] == "garbage"
    code, out, _ = run(command, "show", jid)
    assert code == EXIT_OK
    assert "jid:" in out
    assert "RuntimeError" in out
    assert "app.py:10:in perform" in out
    assert '["t"]' in out
    code, out, _ = run(command, "--json", "show", jid)
    assert json.loads(out)["job"]["tags"] == ["t"]
    code, out, _ = run(command, "delete", jid)
    assert code == EXIT_OK
    assert r.zcard(key) == 2
    code, out, err = run(command, "show", jid)
    assert (code, out) == (EXIT_NOT_FOUND, "")
    assert f"no job with jid {jid!r}" in err


@pytest.mark.parametrize(("command", "key"), SETS)
def test_set_retry_one_and_all(run: Run, r: redis.Redis, command: str, key: str) -> None:
    """`retry JID` and `retry --all` enqueue jobs now; unknown jids exit 3."""
    jid, _ = add_to_set(r, key, time.time() + 60, **failed_fields(4))
    code, out, _ = run(command, "retry", jid)
    assert code == EXIT_OK
    assert jid in out
    [text] = r.lrange(keys.queue_key("default"), 0, -1)
    expected = 4 if command == "scheduled" else 3
    assert json.loads(text)["retry_count"] == expected
    code, _, err = run(command, "retry", jid)
    assert code == EXIT_NOT_FOUND
    assert jid in err
    for n in range(3):
        add_to_set(r, key, float(n))
    r.zadd(key, {"garbage": 1.5})
    code, out, _ = run(command, "retry", "--all", "--json")
    assert json.loads(out) == {
        "redis": redact_url(r_url(r)),
        "set": key,
        "enqueued": 3,
        "skipped": 1,
    }
    assert r.llen(keys.queue_key("default")) == 4
    code, _, err = run(command, "retry")
    assert code == EXIT_USAGE
    assert "JID --all" in err


@pytest.mark.parametrize(("command", "key"), SETS)
def test_set_clear_needs_yes(run: Run, r: redis.Redis, command: str, key: str) -> None:
    """`clear` refuses without --yes (exit 2, nothing deleted) and clears with it."""
    add_to_set(r, key, 1.0)
    code, out, err = run(command, "clear")
    assert (code, out) == (EXIT_USAGE, "")
    assert "--yes" in err
    assert r.zcard(key) == 1
    code, out, _ = run(command, "clear", "--yes")
    assert code == EXIT_OK
    assert "1 jobs deleted" in out
    assert r.zcard(key) == 0


# --- pause, resume, enqueue -------------------------------------------------------------------


def test_pause_and_resume(run: Run, r: redis.Redis) -> None:
    """`pause`/`resume` SADD/SREM verk:paused and say when nothing changed."""
    Client(r).enqueue("W", queue="mail")
    code, out, err = run("pause", "mail")
    assert (code, err) == (EXIT_OK, "")
    assert "paused queue mail" in out
    assert r.smembers(keys.PAUSED) == {b"mail"}
    code, out, _ = run("pause", "mail", "--json")
    assert json.loads(out) == {
        "redis": redact_url(r_url(r)),
        "queue": "mail",
        "paused": True,
        "changed": False,
        "paused_queues": ["mail"],
    }
    code, out, err = run("pause", "later")
    assert code == EXIT_NOT_FOUND
    assert "no queue 'later' is known to the Redis at redis://127.0.0.1:" in err
    assert "or to any node (known: mail)" in err
    assert "--force" in err
    assert r.smembers(keys.PAUSED) == {b"mail"}
    code, out, err = run("pause", "later", "--force")
    assert (code, err) == (EXIT_OK, "")
    code, out, _ = run("resume", "mail")
    assert code == EXIT_OK
    assert "resumed queue mail" in out
    code, out, _ = run("resume", "mail")
    assert "was not paused" in out
    assert r.smembers(keys.PAUSED) == {b"later"}
    code, _, err = run("pause", "bad name")
    assert code == EXIT_USAGE
    assert "not usable" in err


def test_pause_knows_the_queues_of_nodes(run: Run, r: redis.Redis) -> None:
    """A queue a node works on can be paused before any job was enqueued to it."""
    r.sadd(keys.NODES, "n1")
    r.hset(keys.node_info_key("n1"), "queues", json.dumps([{"name": "idle", "concurrency": 2}]))
    code, _, err = run("pause", "idle")
    assert (code, err) == (EXIT_OK, "")
    assert r.smembers(keys.PAUSED) == {b"idle"}
    code, _, err = run("pause", "idel")
    assert code == EXIT_NOT_FOUND
    assert "(known: idle)" in err


def test_enqueue_json_args(run: Run, r: redis.Redis) -> None:
    """`enqueue CLASS ARGS...` reads each ARG as JSON and writes a Sidekiq job."""
    code, out, _ = run("enqueue", "HardWorker", '"bob"', "5", '{"a": [1, null]}', "--json")
    assert code == EXIT_OK
    reply = json.loads(out)
    [text] = r.lrange(keys.queue_key("default"), 0, -1)
    job = json.loads(text)
    assert (job["class"], job["args"], job["jid"]) == (
        "HardWorker",
        ["bob", 5, {"a": [1, None]}],
        reply["jid"],
    )
    code, out, _ = run("enqueue", "HardWorker", "-3", "--queue", "mail")
    assert code == EXIT_OK
    assert "to queue mail" in out
    assert json.loads(r.lindex(keys.queue_key("mail"), 0))["args"] == [-3]
    code, _, err = run("enqueue", "HardWorker", "bob")
    assert code == EXIT_USAGE
    assert "argument 1 ('bob') is not a JSON value" in err


def test_enqueue_later(run: Run, r: redis.Redis) -> None:
    """`--in` and `--at` put the job in the schedule set at the right time."""
    before = time.time()
    code, out, _ = run("enqueue", "W", "--in", "5m")
    assert code == EXIT_OK
    assert "scheduled W" in out
    [(_, score)] = r.zrange(keys.SCHEDULE, 0, -1, withscores=True)
    assert before + 300 <= score <= time.time() + 300
    code, out, _ = run("enqueue", "W", "--at", "2099-01-01T00:00:00+00:00", "--json")
    assert json.loads(out)["at"] == 4070908800.0
    assert r.zscore(keys.SCHEDULE, r.zrange(keys.SCHEDULE, -1, -1)[0]) == 4070908800.0
    code, _, err = run("enqueue", "W", "--in", "soon")
    assert code == EXIT_USAGE
    assert "--in 'soon'" in err
    code, _, err = run("enqueue", "W", "--at", "tomorrow")
    assert code == EXIT_USAGE
    assert "--at 'tomorrow'" in err
    code, _, err = run("enqueue", "W", "--in", "1", "--at", "1")
    assert code == EXIT_USAGE


# --- errors, exit codes and configuration -----------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["stats"], ["nodes"], ["queues"], ["retry", "list"], ["pause", "q"], ["enqueue", "W"]],
)
def test_unreachable_redis_exits_1_with_redacted_url(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without Redis every subcommand exits 1, naming the URL without its password."""
    url = unreachable_url()
    code = main([*argv, "--redis-url", url])
    out, err = capsys.readouterr()
    assert (code, out) == (EXIT_FAILURE, "")
    assert "127.0.0.1" in err
    assert ":***@" in err
    assert "s3cret" not in err


def test_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Argparse errors exit 2 and --help exits 0, returned by main instead of raised."""
    assert main(["retry"]) == EXIT_USAGE
    assert main(["stats", "--watch", "-1"]) == EXIT_USAGE
    assert main(["queues", "peek", "q", "--limit", "-1"]) == EXIT_USAGE
    assert main(["nosuch"]) == EXIT_USAGE
    assert main(["--help"]) == EXIT_OK
    assert "Exit codes" in capsys.readouterr().out
    assert main(["stats", "--redis-url", "http://nope"]) == EXIT_USAGE
    assert "must start with redis://" in capsys.readouterr().err


def every_parser(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """``parser`` and each of its subcommands' parsers, with the words that reach them."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from every_parser(sub, (*path, name))


def test_help_has_no_markup_and_every_argument_is_explained() -> None:
    """No --help shows reStructuredText backticks; every positional argument has help."""
    parsers = list(every_parser(build_parser()))
    assert len(parsers) > 20
    for path, parser in parsers:
        text = parser.format_help()
        assert "`" not in text, (path, [line for line in text.splitlines() if "`" in line])
        for action in parser._actions:
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert action.help, (path, action.dest)


SAMPLES = {int: "7", float: "3.5", str: "n-1", bool: "true"}


def test_start_has_a_flag_for_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    """`start --help` lists every setting with its variable, and each flag sets it."""
    assert main(["start", "--help"]) == EXIT_OK
    text = " ".join(capsys.readouterr().out.split())
    parser = build_parser()
    for option in options():
        assert option.flag in text
        assert option.env in text
        special = {
            "queues": "q=2",
            "imports": "app.a",
            "redis_url": "redis://h:1/0",
            "cron": "t=T * * * * *",
            "cron_catch_up": "skip",
            "error_handlers": "app.errors:report",
            "death_handlers": "app.errors:buried",
            "client_middleware": "app.middleware:stamp",
            "server_middleware": "app.middleware:Timing",
            "log_format": "json",
            "metrics_bind": "127.0.0.2",
        }
        sample = special.get(option.field) or SAMPLES[field_kind(option.field)]
        settings = start_cmd.settings_from(parser.parse_args(["start", option.flag, sample]))
        value = getattr(settings, option.field)
        assert value == read_text(option.field, sample), option


def test_config_precedence_for_the_redis_url(
    run: Run, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis URL comes from --redis-url, else VERK_REDIS_URL, else the --config file."""
    good, bad = redis_server.url, unreachable_url()
    config = tmp_path / "verk.toml"
    config.write_text(f'redis_url = "{good}"\n')
    assert run("stats", "--config", str(config), url=False)[0] == EXIT_OK
    monkeypatch.setenv("VERK_CONFIG", str(config))
    assert run("stats", url=False)[0] == EXIT_OK
    monkeypatch.setenv("VERK_REDIS_URL", bad)  # env beats the file
    code, _, err = run("stats", "--config", str(config), url=False)
    assert code == EXIT_FAILURE
    assert ":***@127.0.0.1" in err
    assert run("stats", "--config", str(config))[0] == EXIT_OK  # the flag beats env
    monkeypatch.setenv("VERK_REDIS_URL", good)
    config.write_text(f'redis_url = "{bad}"\n')
    assert run("stats", "--config", str(config), url=False)[0] == EXIT_OK


def test_bad_config_file_exits_2(run: Run, tmp_path: Path) -> None:
    """A config file that is not TOML, or has an unknown key, exits 2 naming file and key."""
    config = tmp_path / "verk.toml"
    config.write_text("redis_url = \n")
    code, _, err = run("stats", "--config", str(config))
    assert code == EXIT_USAGE
    assert str(config) in err
    assert "not valid TOML" in err
    config.write_text("redis-url = 'redis://x'\n")
    code, _, err = run("queues", "--config", str(config))
    assert code == EXIT_USAGE
    assert "unknown key 'redis-url'" in err
    code, _, err = run("nodes", "--config", str(tmp_path / "missing.toml"))
    assert code == EXIT_USAGE
    assert "does not exist" in err


def test_start_uses_the_same_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`start` reads flags over VERK_* over the config file, and --import adds to imports."""
    config = tmp_path / "verk.toml"
    config.write_text(
        'redis_url = "redis://file:1/0"\nnode_id = "file-node"\nimports = ["app.a"]\n'
        "shutdown_timeout = 7\n[queues]\nmail = 3\n"
    )
    monkeypatch.setenv("VERK_NODE_ID", "env-node")
    parser = build_parser()
    args = parser.parse_args(["start", "--config", str(config), "--import", "app.b"])
    resolved = start_cmd.resolve(args)
    s = resolved.settings
    assert (s.redis_url, s.node_id, s.shutdown_timeout) == ("redis://file:1/0", "env-node", 7.0)
    assert [q.name for q in s.queues] == ["mail"]
    assert s.imports == ("app.a", "app.b")
    assert resolved.source("redis_url") == "file"  # so no embedded server is started
    args = parser.parse_args(
        ["start", "--config", str(config), "--node-id", "flag-node", "--queue", "q=2"]
    )
    s = start_cmd.settings_from(args)
    assert s.node_id == "flag-node"
    assert [q.name for q in s.queues] == ["q"]
    assert start_cmd.resolve(parser.parse_args(["start"])).source("redis_url") is None
