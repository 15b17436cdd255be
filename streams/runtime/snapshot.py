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
from detectors.state import StateError, from_state, register, register_upgrade, to_state
from streams.core.schemas import Anomaly, Feedback, Warning
from streams.ingest.ingestor import Deduplicator
from streams.pipeline import detection, prewarnings, sensor_path, stages


def _register() -> None:
    # wire records held in the reorder buffer: kept as their wire JSON
    register("anomaly", Anomaly, dump=lambda m: m.model_dump_json(),
             load=Anomaly.model_validate_json)
    register("feedback", Feedback, dump=lambda m: m.model_dump_json(),
             load=Feedback.model_validate_json)
    # earlier warning versions the CAP sink holds (for references)
    register("warning", Warning, dump=lambda m: m.model_dump_json(),
             load=Warning.model_validate_json)
    for name, cls in {
        "sensor_series": sensor_path._SensorState,
        "level_series": detection._LevelState, "count_series": detection._CountCtx,
        "dedup_window": Deduplicator,
        "prewarnings": prewarnings.PreWarnings, "prewarning_series": prewarnings._Series,
    }.items():
        register(name, cls)
    # version 2: the limit pre-warnings; a version-1 detection has none yet
    register("detection", detection.Detection, version=2)
    register_upgrade("detection", 1, _with_prewarnings)
    # version 2: the publication ledger (early firing); a version-1 partition has none
    register("correlation_partition", stages._CorrelationPartition, version=2)
    register_upgrade("correlation_partition", 1, _with_ledger)


def _with_prewarnings(state: Any) -> Any:
    if isinstance(state, dict) and "prewarnings" not in state:
        state = {**state, "prewarnings": prewarnings.PreWarnings()}
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
        if not hasattr(det, "prewarnings"):  # pickled before the limit pre-warnings
            det.prewarnings = prewarnings.PreWarnings()
    return state
