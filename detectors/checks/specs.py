"""The one registry of detector specs, the stream families they take, and the discovery of
detector classes that have no spec.

To add a detector: append a :func:`detector` entry to ``REGISTRY`` below, naming its
class as ``"module:Class"``, the families of input it takes, its small test parameters
(``params``; ``seed`` is added) and production ones (``default_params``), the ROC-AUC
floor on its family's seeded stream, whether it is O(1), and its pickled-state bound.
``tests/detectors/test_checks.py`` then runs every check on it; until then it fails
naming the class.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import pkgutil
import struct
from collections.abc import Mapping
from typing import Any

from detectors import policy
from detectors.base import Score
from detectors.checks.core import HOUR, DetectorSpec, Family, run
from detectors.checks.keyed_streams import (
    count_clear,
    count_edge_streams,
    count_events,
    count_memory_stream,
    count_null,
    entity_clear,
    entity_edge_streams,
    entity_events,
    entity_memory_stream,
    entity_null,
    inspection_clear,
    inspection_edge_streams,
    inspection_events,
    inspection_memory_stream,
    inspection_null,
)
from detectors.checks.level_streams import (
    level_clear,
    level_edge_streams,
    level_null,
    level_series,
    limit_clear,
    limit_edge_streams,
    limit_null,
    limit_series,
)


def _level_flagged(s: Score) -> bool:
    return policy.level_fired(s.p_value)


def _count_flagged(s: Score) -> bool:
    return policy.fired(s.p_value, s.observed)


def _limit_flagged(s: Score) -> bool:
    return s.p_value < policy.RED_P  # a pre-warning: the limit likely crossed


# -- the stream families ------------------------------------------------------------------------

#: a float per reading (sensor, price): x is the reading
LEVEL = Family("level", level_series, level_edge_streams, level_null, level_clear,
               _level_flagged, warmup=1_000)
#: a regulated metric every 15 minutes against its limit of 100
LIMIT = Family("limit", limit_series, limit_edge_streams, limit_null, limit_clear,
               _limit_flagged, warmup=200)
#: events per key in hourly buckets: x is (key, n)
COUNT_KEYS = Family("count_keys", count_events, count_edge_streams, count_null, count_clear,
                    _count_flagged, memory=count_memory_stream, warmup=1_500)
#: inspection trials per key in hourly buckets: x is (key, failed)
RATE_KEYS = Family("rate_keys", inspection_events, inspection_edge_streams, inspection_null,
                   inspection_clear, _count_flagged, memory=inspection_memory_stream,
                   warmup=1_500)
#: market-regulation events about companies: x is (entity_id, kind, failed)
ENTITIES = Family("entities", entity_events, entity_edge_streams, entity_null, entity_clear,
                  _count_flagged, memory=entity_memory_stream, warmup=1_500)

FAMILIES = (LEVEL, LIMIT, COUNT_KEYS, RATE_KEYS, ENTITIES)


# -- the registry -------------------------------------------------------------------------------


def _load(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def detector(target: str, families: tuple[Family, ...], *,
             params: Mapping[str, Any] | None = None,
             default_params: Mapping[str, Any] | None = None, **kw: Any) -> DetectorSpec:
    """The spec of the class ``target`` (``"module:Class"``), built with ``params`` (test)
    or ``default_params`` (production) and ``seed``; ``kw`` are DetectorSpec fields."""
    module, _, name = target.partition(":")
    test = dict(params or {})
    prod = dict(default_params or {})

    def make(seed: int) -> Any:
        return _load(module, name)(**test, seed=seed)

    def make_default(seed: int) -> Any:
        return _load(module, name)(**prod, seed=seed)

    return DetectorSpec(name=name, module=module, make=make, make_default=make_default,
                        families=families, **kw)


def _keys_of(det: Any) -> int:
    return max(int(det.n_keys), 1)


def _entities_of(det: Any) -> int:
    return max(int(det.n_entities), 1)


def _sensor_component(name: str) -> DetectorSpec:
    # a handful of floats and one tail calibrator; SeasonalBaseline also holds a profile
    # (168 hour-of-week and 24 hour-of-day float32 slots, and 168 counts until every hour
    # has been seen): O(period), held to the ensemble budget
    seasonal = name == "SeasonalBaseline"
    return detector(f"detectors.signals.sensor_components:{name}", (LEVEL,), auc_floor=0.85,
                    o1=not seasonal,
                    max_state_bytes=2_048 if seasonal else 1_024)


#: 25k events were chosen when the beta-binomial tail (scipy) cost ~100 us a score; the
#: tail is now carried in detectors.signals.rates (~6 us an event in all), so the check takes
#: ~0.2 s and the default 100k would do as well; at 40 keys 25k is still ~1,700 buckets,
#: 70 guard bands per key
RATE_MEMORY_EVENTS = 25_000

REGISTRY: list[DetectorSpec] = [
    detector("detectors.signals.robust:RobustBaseline", (LEVEL,),
             params={"window": 50, "min_history": 10, "direction": "both"},
             auc_floor=0.95, o1=True,
             # window 50: two copies of 50 floats (9 bytes each pickled) plus the object
             max_state_bytes=1_536),
    detector("detectors.signals.sensor:SensorEnsemble", (LEVEL,), auc_floor=0.95, o1=False,
             # four calibrators' worth of floats, 168 + 24 seasonal slots (float32), counts
             max_state_bytes=2_048, refractory=True,
             note="score_one is 0 while a reading is no more surprising than the excursion "
                  "already reported (refractory)"),
    detector("detectors.signals.shift:SustainedShift", (LEVEL,), params={"direction": "both"},
             auc_floor=0.5, o1=True, max_state_bytes=2_048, calibrated=False,
             note="the slow view: on the level family's onset-labelled spikes its ROC-AUC "
                  "is 0.51 (measured): it waits for a level, not a spike; its findings are "
                  "judged at policy.ALPHA_SHIFT, not the level policy (so: not "
                  "'calibrated' here); its detection of ramps and held shifts is asserted "
                  "in tests/detectors/test_shift.py"),
    _sensor_component("RobustLevel"),
    _sensor_component("EwmaVariance"),
    _sensor_component("PageHinkley"),
    _sensor_component("SeasonalBaseline"),
    detector("detectors.signals.counts:CountSurge", (COUNT_KEYS,),
             params={"bucket_s": HOUR, "warmup_buckets": 24},
             auc_floor=0.7, o1=True, memory_series=40, n_series=_keys_of,
             # per key: 12 closed (bucket, count) + open buckets + fired/excluded marks
             max_state_bytes=40 * 400),
    detector("detectors.signals.rates:RateSurge", (RATE_KEYS,), params={"bucket_s": HOUR},
             auc_floor=0.7, o1=True, memory_events=RATE_MEMORY_EVENTS, memory_series=40,
             n_series=_keys_of,
             # per key: up to 24 closed buckets (b, n, k) + open buckets + fired marks
             max_state_bytes=40 * 500),
    detector("detectors.signals.entity_risk:EntityRisk", (ENTITIES,),
             params={"half_life_s": 14 * 86_400.0, "max_entities": 500},
             auc_floor=0.8, o1=True, memory_series=500, n_series=_entities_of,
             # max_entities 500, about 50 bytes each pickled (its docstring), plus the object
             max_state_bytes=500 * 64),
    detector("detectors.signals.forecast:LimitForecast", (LIMIT,),
             params={"limit": 100.0, "horizon_s": 12 * 900.0, "step_s": 900.0},
             default_params={"limit": 100.0}, auc_floor=0.85, o1=True,
             # a fixed record of floats plus at most MAX_PENDING (32) pending forecasts
             max_state_bytes=1_536,
             note="label: the reading 12 steps (its horizon) later is past the limit"),
]

#: classes with a ``learn_one`` that are not detectors, and why
NOT_DETECTORS: dict[str, str] = {
    "detectors.signals.calibration:TailCalibrator": "calibrates one statistic inside a detector: "
                                            "learn_one(s) and p_value(s), no event time",
    "detectors.signals.station_health:StationHealth": "tracks whether each sensor series "
                                            "reports (cadence, missing, silent, stuck) for "
                                            "operators: learn_one(station, metric, value, "
                                            "t), no score, never evidence",
    "detectors.signals.fault_screen:FaultScreen": "classifies instrument faults (stuck, "
                                                  "impossible, unit "
                                   "slip), not anomalies of the environment; its contract "
                                   "and kinds are tested in tests/detectors/test_shift.py",
}


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def specs() -> list[DetectorSpec]:
    """Every registered spec whose module exists (detector modules are imported when a
    detector is built, not here)."""
    return [s for s in REGISTRY if _module_exists(s.module)]


def missing_specs() -> list[str]:
    """Modules of registered detectors that do not exist (yet)."""
    return sorted({s.module for s in REGISTRY} - {s.module for s in specs()})


def spec_by_name(name: str) -> DetectorSpec:
    for s in specs():
        if s.name == name:
            return s
    raise KeyError(name)


def detector_classes() -> dict[str, type]:
    """Every public class defined in a module of :mod:`detectors` or its sub-packages (the
    ``checks`` package aside) that has ``learn_one``, by ``"module:Class"`` (the module
    that defines it). A module that fails to import
    raises an ``ImportError`` naming it."""
    import detectors

    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(detectors.__path__, "detectors."):
        name = info.name
        if info.ispkg or name.startswith("detectors.checks"):
            continue
        try:
            module = importlib.import_module(name)
        except Exception as e:
            raise ImportError(f"{name} does not import, so its detectors cannot be "
                              f"checked: {e!r}") from e
        for cls_name, obj in vars(module).items():
            if (inspect.isclass(obj) and obj.__module__ == name and not cls_name.startswith("_")
                    and callable(getattr(obj, "learn_one", None))
                    and not getattr(obj, "_is_protocol", False)):
                found[f"{name}:{cls_name}"] = obj
    return found


def unspecified_classes() -> list[str]:
    """``"module:Class"`` of every detector class without a spec (nor a reason in
    ``NOT_DETECTORS``)."""
    have = {f"{s.module}:{s.name}" for s in REGISTRY}
    return sorted(set(detector_classes()) - have - set(NOT_DETECTORS))


def output_digests(seed: int = 3, n: int = 600) -> dict[str, str]:
    """A digest of every spec's outputs on its seeded stream: equal across processes (and
    so across ``PYTHONHASHSEED`` values) when nothing depends on hash order."""
    out: dict[str, str] = {}
    for s in specs():
        h = hashlib.sha256()
        for v in run(s.make(seed), s.stream(seed, n)):
            h.update(struct.pack("<d", v))
        out[s.name] = h.hexdigest()[:16]
    return out


__all__ = [
    "COUNT_KEYS",
    "ENTITIES",
    "FAMILIES",
    "LEVEL",
    "LIMIT",
    "NOT_DETECTORS",
    "RATE_KEYS",
    "REGISTRY",
    "detector",
    "detector_classes",
    "missing_specs",
    "output_digests",
    "spec_by_name",
    "specs",
    "unspecified_classes",
]
