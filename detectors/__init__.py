"""Tocsin detectors and correlation: pure Python, importable without Kafka.

Every detector follows one contract (:mod:`detectors.base`): ``explain_one(x, t)`` gives a
:class:`~detectors.base.Score` (observed, expected, calibrated tail probability),
``score_one(x, t)`` its ``1 - p`` in [0, 1], both before ``learn_one(x, t)`` updates the
state. What counts as a finding is :mod:`detectors.policy`.
"""

from detectors.base import Score
from detectors.fusion.correlation import Correlator, Finding, IncidentVersion
from detectors.signals.counts import CountSurge
from detectors.signals.robust import RobustBaseline

__all__ = ["Correlator", "CountSurge", "Finding", "IncidentVersion", "RobustBaseline", "Score"]
