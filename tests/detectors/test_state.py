"""Snapshots (detectors.state): plain, versioned trees that restore exactly or refuse."""

from __future__ import annotations

import array
import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import state
from detectors.state import StateError, dumps, from_state, loads, register, to_state

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8))
keys = st.one_of(st.text(max_size=6), st.integers(-5, 5),
                 st.tuples(st.text(max_size=3), st.integers(0, 3)))
trees = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(keys, inner, max_size=4),
    st.builds(lambda d: OrderedDict(d), st.dictionaries(keys, inner, max_size=3)),
    st.builds(lambda xs: deque(xs, maxlen=5), st.lists(inner, max_size=5)),
    st.frozensets(st.integers(0, 9), max_size=4), st.sets(st.text(max_size=3), max_size=3),
    st.builds(lambda xs: array.array("d", xs), st.lists(st.floats(allow_nan=False), max_size=4)),
    st.builds(bytearray, st.binary(max_size=5))), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(trees)
def test_property_plain_values_round_trip_with_their_types(x: Any) -> None:
    back = loads(dumps(x))
    assert back == x and type(back) is type(x)
    if isinstance(x, deque):
        assert back.maxlen == x.maxlen
    # the tree itself is plain msgpack: no pickle, no class paths
    msgpack.packb(to_state(x), use_bin_type=True)


def test_nan_and_infinities_survive() -> None:
    back = loads(dumps([math.nan, math.inf, -math.inf, -0.0]))
    assert math.isnan(back[0]) and back[1:3] == [math.inf, -math.inf]
    assert math.copysign(1.0, back[3]) == -1.0


@dataclass
class _Thing:
    a: int
    b: list[Any]


class _Later:  # registered under a name with an upgrade
    def __init__(self, level: float) -> None:
        self.level = level


register("test_thing", _Thing)


def test_objects_are_written_by_name_and_shared_once() -> None:
    shared = _Thing(1, [])
    tree = to_state([shared, shared])
    assert tree[0]["c"] == "test_thing" and tree[1] == {"~": "r", "i": 0}
    a, b = from_state(tree)
    assert a is b and a == shared


def test_an_unregistered_class_is_refused_by_name() -> None:
    with pytest.raises(StateError, match=r"cannot snapshot a .*_Later: register"):
        to_state(_Later(1.0))


def test_unknown_newer_and_unupgradable_snapshots_are_refused() -> None:
    tree = to_state(_Thing(1, []))
    with pytest.raises(StateError, match="does not know"):
        from_state({**tree, "c": "no_such_class"})
    with pytest.raises(StateError, match="version 2; this version of Tocsin reads up to 1"):
        from_state({**tree, "n": 2})
    register("test_later", _Later, version=3)
    old = {"~": "o", "c": "test_later", "n": 1, "i": 0, "s": {"lvl": 2.0}}
    with pytest.raises(StateError, match="no upgrade from version 1"):
        from_state(old)


def test_an_upgrade_chain_brings_an_old_snapshot_to_the_current_shape() -> None:
    register("test_later2", _Later, version=3)
    state.register_upgrade("test_later2", 1, lambda s: {"lvl": s["lvl"] * 2})
    state.register_upgrade("test_later2", 2, lambda s: {"level": s["lvl"]})
    got = from_state({"~": "o", "c": "test_later2", "n": 1, "i": 0, "s": {"lvl": 2.0}})
    assert isinstance(got, _Later) and got.level == 4.0


def test_externals_are_written_as_keys_and_supplied_on_restore() -> None:
    config = _Thing(9, ["templates"])
    tree = to_state({"cfg": config, "n": 1}, {"config": config})
    assert tree["cfg"] == {"~": "x", "k": "config"}
    other = _Thing(10, [])
    assert from_state(tree, {"config": other})["cfg"] is other
    with pytest.raises(StateError, match="needs the external 'config'"):
        from_state(tree)


def test_garbage_is_refused_not_misread() -> None:
    with pytest.raises(StateError):
        loads(b"\x93\x01")
    with pytest.raises(StateError, match="tree format"):
        loads(msgpack.packb({"format": 99, "state": 1}))
    with pytest.raises(StateError, match="unknown snapshot tag"):
        from_state({"~": "zz", "v": []})
