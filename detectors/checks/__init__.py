"""The generic check suite every detector passes, with the seeded synthetic streams it runs
on.

Every detector is driven the one way the pipeline drives it (the contract in
:mod:`detectors.base`): ``explain_one(x, t)`` / ``score_one(x, t)`` before
``learn_one(x, t)``, observation by observation in event-time order, with no adapter per
detector. The parts:

* :mod:`~detectors.checks.core`: the stream and spec types and the driver;
* :mod:`~detectors.checks.level_streams`, :mod:`~detectors.checks.keyed_streams`: the
  seeded streams (labelled, edge cases, null, a clear anomaly) of each family of input;
* :mod:`~detectors.checks.contract`: the checks, each raising ``AssertionError`` with a
  message naming the detector;
* :mod:`~detectors.checks.specs`: the one registry of detector specs (how to build each,
  which families it takes, its bounds) and the discovery of detector classes without one.

``tests/detectors/test_checks.py`` runs every check on every spec; ``benchmarks/detectors.py`` times
them. The package needs no pytest:

>>> [c.__name__ for c in CHECKS][:3]
['check_call_shapes', 'check_clone_and_pickle', 'check_seeded_determinism']
>>> roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
0.75
>>> spec = spec_by_name("RobustBaseline")
>>> run(spec.make(0), spec.stream(0, 50))[:3]
[0.0, 0.0, 0.0]
>>> spec = spec_by_name("CountSurge")
>>> spec.stream(0, 2)[0][0], [f.name for f in spec.families]
(('k2', 1), ['count_keys'])
"""

from __future__ import annotations

from detectors.checks.contract import CHECKS, check_stream, false_alarm_rate, measure_auc
from detectors.checks.core import (
    HOUR,
    NOMINAL_P,
    T0,
    DetectorSpec,
    Event,
    Family,
    Stream,
    drive,
    drive_explained,
    roc_auc,
    run,
    same,
    state_bytes,
)
from detectors.checks.keyed_streams import count_events, entity_events, inspection_events
from detectors.checks.level_streams import (
    level_edge_streams,
    level_series,
    limit_series,
)
from detectors.checks.specs import (
    FAMILIES,
    NOT_DETECTORS,
    REGISTRY,
    detector,
    detector_classes,
    missing_specs,
    output_digests,
    spec_by_name,
    specs,
    unspecified_classes,
)

__all__ = [
    "CHECKS",
    "FAMILIES",
    "HOUR",
    "NOMINAL_P",
    "NOT_DETECTORS",
    "REGISTRY",
    "T0",
    "DetectorSpec",
    "Event",
    "Family",
    "Stream",
    "check_stream",
    "count_events",
    "detector",
    "detector_classes",
    "drive",
    "drive_explained",
    "entity_events",
    "false_alarm_rate",
    "inspection_events",
    "level_edge_streams",
    "level_series",
    "limit_series",
    "measure_auc",
    "missing_specs",
    "output_digests",
    "roc_auc",
    "run",
    "same",
    "spec_by_name",
    "specs",
    "state_bytes",
    "unspecified_classes",
]
