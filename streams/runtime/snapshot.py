"""The state of one partition as a plain, versioned snapshot (``detectors.state``).

A worker's state of partition ``p`` is its detection state (per series), its
de-duplication windows, the reorder buffer and correlator of anomalies partition ``p``, and
the earlier CAP versions of its open warnings. :func:`capture` makes one snapshot tree of
them; :func:`restore` gives them back, with the worker's own configuration (scenario
templates, detection parameters) supplied as externals rather than read from the snapshot:
a restarted worker applies its current settings to the state it restores.

A checkpoint of format 1 (pickled objects, before snapshots) carries the objects
themselves; :func:`restore` hands them over with the same configuration swapped in.
"""

from __future__ import annotations

from typing import Any

from detectors.fusion.ledger import Ledger
from detectors.signals.forecast import LimitForecast
from detectors.signals.holt import _State as HoltState
from detectors.signals.prewarning import PreWarning
from detectors.signals.station_health import StationHealth
from detectors.state import StateError, from_state, register, register_upgrade, to_state
from streams.core.schemas import Anomaly, Feedback, Warning
from streams.ingest.ingestor import Deduplicator
from streams.pipeline import detection, entities, prewarnings, sensor_path, stages


def _register() -> None:
    # wire records held in the reorder buffer: kept as their wire JSON
    register("anomaly", Anomaly, dump=lambda m: m.model_dump_json(),
             load=Anomaly.model_validate_json)
    register("feedback", Feedback, dump=lambda m: m.model_dump_json(),
             load=Feedback.model_validate_json)
    # earlier warning versions the CAP sink holds (for references)
    register("warning", Warning, dump=lambda m: m.model_dump_json(),
             load=Warning.model_validate_json)
    # version 2: station health (a version-1 detection starts it empty); version 3: the
    # entity risk tracker (streams/pipeline/entities.py), empty from version 2; version 4:
    # the limit pre-warnings (streams/pipeline/prewarnings.py), none from version 3
    register("detection", detection.Detection, version=4)
    register_upgrade("detection", 1, _with_health)
    register_upgrade("detection", 2, _with_entities)
    register_upgrade("detection", 3, _with_prewarnings)
    for name, cls in {
        "entity_tracker": entities.EntityTracker, "entity_record": entities._Entity,
        "entity_warning": entities._Open,
        "sensor_series": sensor_path._SensorState,
        "level_series": detection._LevelState, "count_series": detection._CountCtx,
        "dedup_window": Deduplicator,
        # the limit pre-warnings: the forecaster, its model state, the lifecycle, the series
        "limit_forecast": LimitForecast, "holt_state": HoltState, "prewarning": PreWarning,
        "prewarnings": prewarnings.PreWarnings, "prewarning_series": prewarnings._Series,
    }.items():
        register(name, cls)
    # version 2: the publication ledger (early firing); a version-1 partition has none
    register("correlation_partition", stages._CorrelationPartition, version=2)
    register_upgrade("correlation_partition", 1, _with_ledger)


def _with_prewarnings(state: Any) -> Any:
    if isinstance(state, dict) and "prewarnings" not in state:
        state = {**state, "prewarnings": prewarnings.PreWarnings()}
    return state


def _with_health(state: Any) -> Any:
    if isinstance(state, dict) and "health" not in state:
        state = {**state, "health": StationHealth()}
    return state


def _with_entities(state: Any) -> Any:
    if isinstance(state, dict) and "entities" not in state and "p" in state:
        state = {**state, "entities": entities.EntityTracker(state["p"])}
    return state


def _with_ledger(state: Any) -> Any:
    if isinstance(state, dict) and "ledger" not in state:
        state = {**state, "ledger": Ledger()}
    return state


_register()


def externals(sources: stages.SourceStage, correlation: stages.CorrelationStage
              ) -> dict[str, Any]:
    """The configuration objects a snapshot refers to by key, never holds."""
    tpl = correlation.templates
    out = {"templates": tpl.scenarios, "generic_template": tpl.generic,
           "detect_params": sources.params}
    if sources.params.calendar is not None:  # every count series holds it
        out["calendar"] = sources.params.calendar
    return out


def capture(state: dict[str, Any], ext: dict[str, Any]) -> Any:
    """The snapshot tree of one partition's ``state`` (wire records as their JSON)."""
    return to_state(state, ext)


def restore(tree: Any, ext: dict[str, Any], fmt: int = 2) -> dict[str, Any]:
    """The state of a :func:`capture` tree (``fmt`` 1: the objects of a pickled checkpoint);
    ``StateError`` if it cannot be read."""
    if fmt == 1:
        return _legacy(tree, ext)
    out = from_state(tree, ext)
    if not isinstance(out, dict):
        raise StateError("a partition snapshot must be a mapping")
    return out


def _legacy(state: Any, ext: dict[str, Any]) -> dict[str, Any]:
    """A format-1 checkpoint's objects, with this worker's configuration in them."""
    if not isinstance(state, dict):
        raise StateError("a format-1 checkpoint must hold a mapping")
    det = (state.get("sources") or {}).get("detection")
    if isinstance(det, detection.Detection):
        det.p = ext["detect_params"]
        if not hasattr(det, "health"):  # (pickled before station health)
            det.health = StationHealth()
        if not hasattr(det, "entities"):  # pickled before entity risk
            det.entities = entities.EntityTracker(det.p)
        det.entities.p = det.p
        if not hasattr(det, "prewarnings"):  # pickled before the limit pre-warnings
            det.prewarnings = prewarnings.PreWarnings()
    return state
