"""The top-level package: every name it promises resolves; enqueuing code loads no Thespian."""

from __future__ import annotations

import subprocess
import sys

import pytest

import verk_actors


def test_every_exported_name_resolves() -> None:
    missing = [name for name in verk_actors.__all__ if getattr(verk_actors, name, None) is None]
    assert missing == []


def test_the_actor_side_is_reachable_from_the_top() -> None:
    from verk_actors import VerkRoot, prepare_thespian, start_node
    from verk_actors.actors._thespian import apply
    from verk_actors.actors.root import VerkRoot as RootInItsRoom
    from verk_actors.actors.system import start_node as start_node_in_its_room

    assert VerkRoot is RootInItsRoom
    assert prepare_thespian is apply
    assert start_node is start_node_in_its_room


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        verk_actors.no_such_name  # noqa: B018


def test_importing_the_package_to_enqueue_does_not_load_thespian() -> None:
    code = (
        "import sys, verk_actors;print(sorted(m for m in sys.modules if m.startswith('thespian')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
