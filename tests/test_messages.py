"""Every message class pickles: the in-process base never pickles, so this is the only check."""

from __future__ import annotations

import enum
import inspect
import pickle
import types
import typing
from typing import Any

import attrs
import pytest
from thespian.actors import ActorAddress
from thespian.system.transport.IPBase import TCPv4ActorAddress

from verk_actors.actors import messages
from verk_actors.config.settings import QueueSpec, Settings

MESSAGE_CLASSES = sorted(
    (
        cls
        for _, cls in inspect.getmembers(messages, inspect.isclass)
        if attrs.has(cls) and cls.__module__.startswith(messages.__name__ + ".")
    ),
    key=lambda cls: cls.__name__,
)


def address() -> ActorAddress:
    """A TCP actor address like the ones the multiprocess bases send."""
    return ActorAddress(TCPv4ActorAddress("127.0.0.1", 19_001, external=False))


SIMPLE = {bool: True, int: 7, float: 1.5, str: "text", bytes: b'{"class":"A","args":[]}'}
SETTINGS = Settings(
    redis_url="redis://:pw@redis.example:6380/2",
    queues=(QueueSpec("a", 2), QueueSpec("b", 3)),
    node_id="node-1",
    imports=("tests.jobs",),
    job_timeout=30.0,
)

SAMPLES = {Settings: SETTINGS, QueueSpec: QueueSpec("crawl", 4, "async", 2)}
"""Samples of types whose fields must fit together (a queue's mode and jobs per process)."""


def sample(tp: Any, *, top: bool = False) -> Any:
    """A non-default value of type ``tp`` (an actor address for a top-level ``Any``)."""
    if tp is Any:
        return address() if top else {"nested": [1, "two", None]}
    if typing.get_origin(tp) is not None:
        return sample_container(tp, top=top)
    if tp in SIMPLE:
        return SIMPLE[tp]
    if tp in SAMPLES:
        return SAMPLES[tp]
    if isinstance(tp, type) and issubclass(tp, BaseException):
        pytest.fail(f"a message field holds an exception ({tp.__name__}); send its text instead")
    if isinstance(tp, type) and attrs.has(tp):
        return build(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return list(tp)[-1]
    pytest.fail(f"no sample value for type {tp!r}; teach tests/test_messages.py about it")


def sample_container(tp: Any, *, top: bool) -> Any:
    """A sample of a union, tuple, list or dict type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return sample(next(a for a in args if a is not type(None)), top=top)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        value: Any = (sample(args[0]), sample(args[0]))
    elif origin is tuple:
        value = tuple(sample(a) for a in args)
    elif origin is list:
        value = [sample(args[0])]
    elif origin is dict:
        value = {sample(args[0]): sample(args[1])}
    else:
        pytest.fail(f"no sample value for type {tp!r}; teach tests/test_messages.py about it")
    return value


_BUILDING: list[type] = []


def build(cls: type) -> Any:
    """An instance of attrs class ``cls`` with every field set to a sample value
    (a recursive class, like TreeNode, nests one level deep)."""
    if _BUILDING.count(cls) > 1:
        return None
    _BUILDING.append(cls)
    try:
        hints = typing.get_type_hints(cls)
        values = {f.name: sample(hints[f.name], top=True) for f in attrs.fields(cls)}
        for name, value in values.items():
            if isinstance(value, tuple) and None in value:
                values[name] = ()
        return cls(**values)
    finally:
        _BUILDING.pop()


def test_messages_are_found() -> None:
    """The message module defines the message classes this test checks."""
    assert len(MESSAGE_CLASSES) >= 30
    assert messages.RunJobs in MESSAGE_CLASSES


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
def test_message_pickles(cls: type) -> None:
    """An instance with every field set survives pickle and unpickle as an equal value."""
    message = build(cls)
    copy = pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(copy) is cls
    assert copy == message


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
def test_message_is_frozen(cls: type) -> None:
    """Messages are frozen: a field cannot be changed after sending."""
    message = build(cls)
    for field in attrs.fields(cls):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(message, field.name, None)
