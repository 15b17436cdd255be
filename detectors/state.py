"""Snapshots of detector and correlator state: plain, versioned trees, never pickles.

A *snapshot* is a tree of plain values (``None``, bools, ints, floats, strings, bytes,
lists and string-keyed dicts) that :func:`to_state` makes of an object and
:func:`from_state` turns back into one; :func:`dumps` / :func:`loads` carry it as msgpack.
Containers Python needs back exactly are tagged: a tuple is ``{"~": "t", "v": [...]}``,
an ``array`` keeps its type code and bytes, a dict whose keys are not all strings is a list
of pairs, and so on (see ``_TAGS``).

Objects are snapshotted only if their class is **registered** under a stable name and a
version (:func:`register`): the name, not the module path, is written, so moving or
renaming a class leaves old snapshots readable. Their state is what ``__getstate__``
returns (the default gives the instance's attributes; a class leaves caches out by
overriding it), restored through ``__setstate__`` like pickle would. A class whose state
changes shape bumps its version and registers an upgrade from the old version
(:func:`register_upgrade`); a snapshot of an unknown class, of a newer version, or of an
older one without an upgrade is refused with :class:`StateError`, never silently misread.
The same object reached twice is written once. Objects that are configuration, not
state (the scenario templates, a holiday calendar), are passed as *externals*: written as
their key only, and supplied again (the worker's current ones) on restore.

>>> from detectors.signals.robust import RobustBaseline
>>> b = RobustBaseline(window=16)
>>> for i in range(40):
...     b.learn_one(10.0 + (i % 5), float(i))
>>> c = loads(dumps(b))
>>> c.explain_one(30.0, 40.0) == b.explain_one(30.0, 40.0)
True
>>> to_state((1, "a"))
{'~': 't', 'v': [1, 'a']}
"""

from __future__ import annotations

import array
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import msgpack

#: the snapshot tree format itself (the tags below); classes carry their own versions
TREE_FORMAT = 1


class StateError(ValueError):
    """A snapshot cannot be taken or read; the message says which class and why."""


_NAMES: dict[type, tuple[str, int]] = {}
_CLASSES: dict[str, tuple[type, int]] = {}
#: classes whose state is not ``__getstate__``: name -> (dump, load)
_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {}
_UPGRADES: dict[tuple[str, int], Callable[[Any], Any]] = {}


def register(name: str, cls: type, version: int = 1,
             dump: Callable[[Any], Any] | None = None,
             load: Callable[[Any], Any] | None = None) -> None:
    """Snapshot instances of ``cls`` under ``name`` at ``version``: their ``__getstate__``
    (restored through ``__setstate__``), or ``dump(obj)`` restored by ``load(state)`` (a
    wire record, say, kept as its JSON)."""
    known = _CLASSES.get(name)
    if known is not None and known[0] is not cls:
        raise StateError(f"snapshot name {name!r} is taken by {known[0].__qualname__}")
    _NAMES[cls] = (name, version)
    _CLASSES[name] = (cls, version)
    if dump is not None and load is not None:
        _CODECS[name] = (dump, load)


def register_upgrade(name: str, from_version: int, fn: Callable[[Any], Any]) -> None:
    """``fn`` turns the state of ``name`` at ``from_version`` into its state at
    ``from_version + 1`` (chained up to the registered version)."""
    _UPGRADES[name, from_version] = fn


def is_registered(obj: Any) -> bool:
    """Whether ``obj``'s class is snapshotted (registered)."""
    return type(obj) in _NAMES


def registered() -> dict[str, int]:
    """Every registered name and its version."""
    return {n: v for n, (_, v) in _CLASSES.items()}


_PLAIN = frozenset({bool, int, float, str, bytes, type(None)})
#: a string-keyed dict with at least this many keys is written as a shape (its keys, once
#: per snapshot) and its values: every series' attribute names are written once, not per
#: series
SHAPE_MIN_KEYS = 4


class _Ctx:
    def __init__(self, externals: dict[str, Any] | None) -> None:
        self.memo: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps memoised objects alive (ids stay unique)
        self.external = {id(v): k for k, v in (externals or {}).items()}
        self.shapes: dict[tuple[str, ...], int] = {}


def _encode_obj(obj: Any, memo: _Ctx) -> Any:
    cls = type(obj)
    entry = _NAMES.get(cls)
    if entry is None:
        raise StateError(f"cannot snapshot a {cls.__module__}.{cls.__qualname__}: register "
                         "its class (detectors.state.register) or leave it out of the state")
    ref = memo.memo.get(id(obj))
    if ref is not None:
        return {"~": "r", "i": ref}
    memo.memo[id(obj)] = ref = len(memo.memo)
    memo.keep.append(obj)
    name, version = entry
    codec = _CODECS.get(name)
    raw = codec[0](obj) if codec is not None else obj.__getstate__()
    return {"~": "o", "c": name, "n": version, "i": ref, "s": _encode(raw, memo)}


def _encode(x: Any, memo: _Ctx) -> Any:
    t = type(x)
    if t in _PLAIN:
        return x
    key = memo.external.get(id(x))
    if key is not None:
        return {"~": "x", "k": key}
    plain, enc = _PLAIN, _encode
    if t is list:
        return [v if type(v) in plain else enc(v, memo) for v in x]
    if t is tuple:
        return {"~": "t", "v": [v if type(v) in plain else enc(v, memo) for v in x]}
    if t is dict:
        if all(type(k) is str and not k.startswith("~") for k in x):
            if len(x) < SHAPE_MIN_KEYS:
                return {k: v if type(v) in plain else enc(v, memo) for k, v in x.items()}
            keys = tuple(x)
            shape = memo.shapes.setdefault(keys, len(memo.shapes))
            return {"~": "h", "k": shape,
                    "v": [v if type(v) in plain else enc(v, memo) for v in x.values()]}
        return {"~": "d", "v": _pairs(x, memo)}
    if t is OrderedDict:
        return {"~": "od", "v": _pairs(x, memo)}
    if t is deque:
        return {"~": "q", "v": [v if type(v) in plain else enc(v, memo) for v in x],
                "m": x.maxlen}
    if t is set or t is frozenset:
        return {"~": "s" if t is set else "fs", "v": [enc(v, memo) for v in x]}
    if t is array.array:
        return {"~": "a", "c": x.typecode, "b": x.tobytes()}
    if t is bytearray:
        return {"~": "ba", "b": bytes(x)}
    return _encode_obj(x, memo)


def _pairs(x: dict[Any, Any], memo: _Ctx) -> list[Any]:
    """A mapping as a flat list: key, value, key, value, ..."""
    plain, enc = _PLAIN, _encode
    out: list[Any] = []
    for k, v in x.items():
        out.append(k if type(k) in plain else enc(k, memo))
        out.append(v if type(v) in plain else enc(v, memo))
    return out


def to_state(obj: Any, externals: dict[str, Any] | None = None) -> Any:
    """The snapshot tree of ``obj``; objects in ``externals`` are written as their key."""
    ctx = _Ctx(externals)
    tree = _encode(obj, ctx)
    if not ctx.shapes:
        return tree
    return {"~": "root", "shapes": [list(k) for k in ctx.shapes], "v": tree}


def _restore(cls: type, state: Any) -> Any:
    obj: Any = object.__new__(cls)
    setstate = getattr(obj, "__setstate__", None)
    if setstate is not None:
        setstate(state)
        return obj
    attrs, slots = (state if isinstance(state, tuple) else (state, None))
    for k, v in (attrs or {}).items():
        object.__setattr__(obj, k, v)
    for k, v in (slots or {}).items():
        object.__setattr__(obj, k, v)
    return obj


def _decode_obj(x: dict[str, Any], memo: dict[Any, Any]) -> Any:
    name, version = x.get("c"), x.get("n")
    if not isinstance(name, str) or not isinstance(version, int):
        raise StateError("a snapshot object without a class name and version")
    known = _CLASSES.get(name)
    if known is None:
        raise StateError(f"the snapshot holds a {name!r}, which this version of Tocsin "
                         "does not know (written by a newer version?)")
    cls, current = known
    if version > current:
        raise StateError(f"the snapshot's {name!r} is version {version}; this version of "
                         f"Tocsin reads up to {current}: upgrade the worker")
    state = _decode(x.get("s"), memo)
    for v in range(version, current):
        up = _UPGRADES.get((name, v))
        if up is None:
            raise StateError(f"the snapshot's {name!r} is version {version} and no upgrade "
                             f"from version {v} is known: the partition starts cold")
        state = up(state)
    codec = _CODECS.get(name)
    obj = codec[1](state) if codec is not None else _restore(cls, state)
    memo[int(x.get("i", -1))] = obj
    return obj


def _values(xs: list[Any], memo: dict[Any, Any]) -> list[Any]:
    plain, dec = _PLAIN, _decode
    return [v if type(v) in plain else dec(v, memo) for v in xs]


def _decode(x: Any, memo: dict[Any, Any]) -> Any:
    if isinstance(x, list):
        return _values(x, memo)
    if not isinstance(x, dict):
        return x
    tag = x.get("~")
    if tag is None:
        return {k: v if type(v) in _PLAIN else _decode(v, memo) for k, v in x.items()}
    if tag == "h":
        keys = memo[("shape", x["k"])]
        return dict(zip(keys, _values(x["v"], memo), strict=True))
    if tag == "o":
        return _decode_obj(x, memo)
    if tag == "r":
        return memo[x["i"]]
    if tag == "x":
        ext = memo.get(("x", x["k"]))
        if ext is None:
            raise StateError(f"the snapshot needs the external {x['k']!r}, not supplied")
        return ext
    if tag == "a":
        return array.array(x["c"], x["b"])
    if tag == "ba":
        return bytearray(x["b"])
    v = _values(x["v"], memo)
    if tag == "t":
        return tuple(v)
    if tag == "d":
        return {_hashable(k): val for k, val in zip(v[::2], v[1::2], strict=True)}
    if tag == "od":
        return OrderedDict((_hashable(k), val) for k, val in zip(v[::2], v[1::2], strict=True))
    if tag == "q":
        return deque(v, x.get("m"))
    if tag in ("s", "fs"):
        items = [_hashable(i) for i in v]
        return set(items) if tag == "s" else frozenset(items)
    raise StateError(f"unknown snapshot tag {tag!r}")


def _hashable(k: Any) -> Any:
    return tuple(_hashable(i) for i in k) if isinstance(k, list) else k


def from_state(tree: Any, externals: dict[str, Any] | None = None) -> Any:
    """The object a snapshot tree describes, with ``externals`` for the keys written as
    such (:class:`StateError` if it cannot be read)."""
    memo: dict[Any, Any] = {("x", k): v for k, v in (externals or {}).items()}
    try:
        if isinstance(tree, dict) and tree.get("~") == "root":
            for i, keys in enumerate(tree["shapes"]):
                memo[("shape", i)] = tuple(keys)
            tree = tree["v"]
        return _decode(tree, memo)
    except StateError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"a malformed snapshot ({type(exc).__name__}: {exc})") from exc


def dumps(obj: Any, externals: dict[str, Any] | None = None) -> bytes:
    """``obj``'s snapshot as msgpack bytes."""
    return msgpack.packb({"format": TREE_FORMAT, "state": to_state(obj, externals)},
                         use_bin_type=True)


def loads(blob: bytes, externals: dict[str, Any] | None = None) -> Any:
    """The object of :func:`dumps` bytes."""
    try:
        doc = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise StateError(f"not a snapshot ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != TREE_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else "?"
        raise StateError(f"snapshot tree format {got} (this version reads {TREE_FORMAT})")
    return from_state(doc["state"], externals)


def _register_detectors() -> None:
    """The detectors' own stateful classes, each under a stable name (version 1)."""
    from detectors.fusion import (
        bar,
        citywide,
        correlation,
        decisions,
        history,
        ledger,
        reorder,
        versions,
    )
    from detectors.signals import (
        calibration,
        count_keys,
        counts,
        entity_risk,
        fault_screen,
        rate_keys,
        rates,
        robust,
        sensor,
        sensor_components,
        shift,
        station_faults,
        station_health,
    )
    from detectors.signals.calendar import HolidayCalendar

    names: dict[str, type] = {
        "sensor_ensemble": sensor.SensorEnsemble,
        "robust_level": sensor_components.RobustLevel,
        "ewma_variance": sensor_components.EwmaVariance,
        "page_hinkley": sensor_components.PageHinkley,
        "seasonal_baseline": sensor_components.SeasonalBaseline,
        "tail_calibrator": calibration.TailCalibrator,
        "sustained_shift": shift.SustainedShift, "fault_screen": fault_screen.FaultScreen,
        "robust_baseline": robust.RobustBaseline, "rolling_window": robust.RollingWindow,
        "count_surge": counts.CountSurge, "count_key": count_keys._KeyState,
        "rate_surge": rates.RateSurge, "rate_key": rate_keys._RateState,
        "event_time_buffer": reorder.EventTimeBuffer,
        "publication_ledger": ledger.Ledger, "published_warning": ledger._Published,
        "incident_version": versions.IncidentVersion,
        "incident": correlation._Incident,
        "city_view": citywide.CityView, "city_condition": citywide._Condition,
        "feedback_bar": bar.FeedbackBar, "feedback_level": bar._Bar,
        "warning_history": history.WarningHistory, "warning_decisions": history._Warning,
        "decision": decisions.Decision, "history_entry": history.Entry,
        "station_track": station_faults.StationTrack,
        "station_health": station_health.StationHealth,
        "station_series_health": station_health._Series,
        "colocated_site": station_faults.ColocatedSite,
        "holiday_calendar": HolidayCalendar,
        "entity_risk": entity_risk.EntityRisk,
    }
    for name, cls in names.items():
        register(name, cls)
    from detectors.state_versions import register_versioned

    register_versioned()


_register_detectors()

__all__ = ["StateError", "dumps", "from_state", "is_registered", "loads", "register",
           "register_upgrade", "registered", "to_state"]
