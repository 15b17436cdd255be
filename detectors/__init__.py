"""Tocsin detectors and correlation: pure Python, importable without Kafka.

Every detector follows one contract (river style): ``learn_one`` updates state,
``score_one`` returns a :class:`~detectors.base.Score` whose ``score`` is higher
for more anomalous input and whose ``p_value`` is a calibrated tail probability.
"""

from .base import Score
from .correlation import Correlator, Finding, IncidentVersion
from .counts import CountSurge
from .robust import RobustBaseline

__all__ = ["Correlator", "CountSurge", "Finding", "IncidentVersion", "RobustBaseline", "Score"]
