"""The package's rooms and the rules between them, read from the code's imports.

The folders are the architecture (README, "The package"); these tests keep it so:

- the parts form layers, and imports only go down: ``errors`` < ``jobs`` <
  ``integrations`` < ``config`` < ``store`` < ``actors`` < ``bench`` < ``web`` < ``cli``;
- only ``store`` speaks Redis: no other runtime module imports ``redis`` or names a key;
- ``jobs`` and ``integrations`` import neither ``redis`` nor ``thespian``;
- only ``actors/_thespian.py`` touches Thespian's internals (``thespian.system``);
- the runtime never imports the benchmark;
- modules stay small.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import attrs

PACKAGE = Path(__file__).resolve().parents[1] / "verk_actors"

LAYERS = ("errors", "jobs", "integrations", "config", "store", "actors", "bench", "web", "cli")
"""Each part may import the parts before it, never one after it. ``integrations``
(Sentry, OpenTelemetry) sits just above ``jobs``: it is built on the job hooks and
middleware only, so it can reach neither Redis nor the actors; no other part imports
it (users call it, settings name it)."""

MAX_LINES = 450
"""No module longer than this (the rooms are for reading)."""

KEY_LITERAL = re.compile(r"^(queue|inprogress|stat|verk|schedule|retry|dead|processes)(:|$)")
"""String constants that are Redis keys (or key prefixes) of the contract."""


@attrs.frozen
class Module:
    name: str
    part: str
    path: Path
    tree: ast.Module

    def imports(self) -> Iterator[str]:
        """Every module name this module imports (``from a import b`` gives ``a`` and ``a.b``)."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield node.module
                yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _modules() -> list[Module]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        part = parts[1] if len(parts) >= 2 else ""
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found.append(Module(name, part if part in LAYERS else "", path, tree))
    return found


MODULES = _modules()


def _part_of(imported: str) -> str | None:
    pieces = imported.split(".")
    if pieces[0] != "verk_actors" or len(pieces) < 2:
        return None
    return pieces[1] if pieces[1] in LAYERS else None


def _top_level(name: str) -> str:
    return name.split(".", maxsplit=1)[0]


def test_the_parts_are_the_folders() -> None:
    """Every module lives in one of the parts (or is the package's front door)."""
    loose = [m.name for m in MODULES if not m.part]
    assert sorted(loose) == ["verk_actors", "verk_actors.__main__"]


def test_imports_only_go_down_the_layers() -> None:
    upward = []
    for module in MODULES:
        if not module.part:
            continue
        for imported in module.imports():
            target = _part_of(imported)
            if target and LAYERS.index(target) > LAYERS.index(module.part):
                upward.append(f"{module.name} imports {imported}")
    assert upward == []


def test_only_the_store_imports_redis() -> None:
    """The benchmark is the one exception outside the runtime: it reads Redis's own
    command counters (INFO commandstats) to report commands per job."""
    outside = [
        f"{module.name} imports {imported}"
        for module in MODULES
        if module.part not in ("store", "bench")
        for imported in module.imports()
        if _top_level(imported) == "redis"
    ]
    assert outside == []


def _not_keys(module: Module) -> set[int]:
    """Strings that look like keys and are not: the names a node gives its Redis
    connections (``name=...``, shown by CLIENT LIST) and the names of the queue
    subtrees (``QUEUE_PREFIX``, ``queue:<name>`` among VerkRoot's children)."""
    skip = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.keyword) and node.arg == "name":
            skip.update(id(inner) for inner in ast.walk(node.value))
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "QUEUE_PREFIX" for target in node.targets
        ):
            skip.update(id(inner) for inner in ast.walk(node.value))
    return skip


def test_only_the_store_names_redis_keys() -> None:
    named = []
    for module in MODULES:
        if module.part in ("store", "bench"):
            continue
        skip = _not_keys(module)
        for node in ast.walk(module.tree):
            if id(node) in skip:
                continue
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and KEY_LITERAL.match(node.value)
                and ":" in node.value
            ):
                named.append(f"{module.name}:{node.lineno} {node.value!r}")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "keys"
            ):
                named.append(f"{module.name}:{node.lineno} keys.{node.attr}")
        for imported in module.imports():
            if imported == "verk_actors.store.keys":
                named.append(f"{module.name} imports {imported}")
    assert named == []


def test_jobs_import_neither_redis_nor_thespian() -> None:
    found = [
        f"{module.name} imports {imported}"
        for module in MODULES
        if module.part in ("jobs", "integrations")
        for imported in module.imports()
        if _top_level(imported) in ("redis", "thespian")
    ]
    assert found == []


def test_no_part_imports_the_integrations() -> None:
    """The integrations are for users to turn on (or settings to name), so the runtime
    never loads Sentry's or OpenTelemetry's packages by itself."""
    found = [
        f"{module.name} imports {imported}"
        for module in MODULES
        if module.part != "integrations"
        for imported in module.imports()
        if _part_of(imported) == "integrations"
    ]
    assert found == []


def test_only_one_module_touches_thespian_internals() -> None:
    touching = {
        module.name
        for module in MODULES
        for imported in module.imports()
        if imported.startswith("thespian.system")
    }
    assert touching == {"verk_actors.actors._thespian"}


def test_the_runtime_never_imports_the_benchmark() -> None:
    runtime = ("jobs", "config", "store", "actors")
    found = [
        f"{module.name} imports {imported}"
        for module in MODULES
        if module.part in runtime
        for imported in module.imports()
        if _part_of(imported) == "bench"
    ]
    assert found == []


def test_modules_stay_small() -> None:
    long = {
        module.name: lines
        for module in MODULES
        if (lines := len(module.path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_rules_see_the_whole_package() -> None:
    """A guard for the guards: the walk finds the rooms it checks."""
    parts = {module.part for module in MODULES}
    assert set(LAYERS) <= parts
    assert len(MODULES) > 50
