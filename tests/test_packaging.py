"""The built wheel: it carries the Lua scripts, py.typed, the Redis contract and the
verk-actors console script."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from verk_actors.store.scripts import SCRIPT_NAMES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel built from the working tree with pip."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(out)],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    (path,) = out.glob("verk_actors-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_wheel_has_every_lua_script(wheel: zipfile.ZipFile) -> None:
    """Each lua/<name>.lua is in the wheel as verk_actors/lua/<name>.lua, byte for byte."""
    packaged = {n for n in wheel.namelist() if n.startswith("verk_actors/lua/")}
    sources = sorted((ROOT / "lua").glob("*.lua"))
    assert packaged == {f"verk_actors/lua/{p.name}" for p in sources}
    for source in sources:
        assert wheel.read(f"verk_actors/lua/{source.name}") == source.read_bytes(), source.name
    assert {f"verk_actors/lua/{name}.lua" for name in SCRIPT_NAMES} <= packaged


def test_wheel_is_typed(wheel: zipfile.ZipFile) -> None:
    """The wheel contains the py.typed marker."""
    assert "verk_actors/py.typed" in wheel.namelist()


def test_wheel_has_the_dashboard_templates_and_assets(wheel: zipfile.ZipFile) -> None:
    """Every template and static file of the web dashboard is in the wheel."""
    web = ROOT / "verk_actors" / "web"
    files = sorted(p for d in ("templates", "static") for p in (web / d).iterdir())
    assert files
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        assert wheel.read(name) == path.read_bytes(), name


def test_wheel_has_the_redis_contract(wheel: zipfile.ZipFile) -> None:
    """The description of the Redis layout that the code's docstrings point at is installed."""
    assert (
        wheel.read("verk_actors/store/CONTRACT.md")
        == (ROOT / "verk_actors" / "store" / "CONTRACT.md").read_bytes()
    )


def test_wheel_has_console_script(wheel: zipfile.ZipFile) -> None:
    """The wheel declares the verk-actors console script, pointing at verk_actors.cli:main."""
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(name).decode())
    assert entry_points["console_scripts"]["verk-actors"] == "verk_actors.cli:main"


def test_wheel_has_no_tests(wheel: zipfile.ZipFile) -> None:
    """Only the package (and its metadata) is in the wheel, not the tests."""
    tops = {n.split("/")[0] for n in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"verk_actors"}


def test_unpacked_wheel_finds_its_scripts(wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    """Imported from the unpacked wheel, the package reads the scripts it carries."""
    wheel.extractall(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = (
        "import verk_actors.store.scripts as s\n"
        "print(s.lua_dir())\n"
        "assert all(s.script_source(n) for n in s.SCRIPT_NAMES)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == tmp_path / "verk_actors" / "lua"
