"""river's Half-Space Trees as a station detector (:class:`HalfSpaceTreesDetector`), for
comparison with :class:`~detectors.signals.multivariate.StationDetector` (and exported by
:mod:`detectors.signals.multivariate`, whose docstring says which metrics are tracked)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from detectors.base import Score
from detectors.signals.metric_index import _MetricIndex


class HalfSpaceTreesDetector:
    """river's Half-Space Trees behind an online min-max scaler (for comparison).

    A thin adapter: ``river.preprocessing.MinMaxScaler() | river.anomaly.HalfSpaceTrees``
    with ``seed`` passed to the trees. NaN, infinite and missing values are dropped before
    the pipeline sees them, metrics are capped as in :class:`StationDetector`, and only
    metrics already learned are scored (scoring an unseen one would change the scaler).
    The trees split only on the metrics of the first observation learned (river builds
    them then). The output is river's score in [0, 1]: higher = more anomalous, but it is
    **not calibrated** (not a probability; its level depends on the data and on
    ``n_trees``, ``height`` and ``window_size``), so it must not share a threshold with
    calibrated detectors. It is 0.0 during the first ``window_size`` observations and for
    an observation without a tracked finite metric. ``t`` is accepted and not used.

    >>> det = HalfSpaceTreesDetector(window_size=50, seed=7)
    >>> for i in range(200):
    ...     det.learn_one({"a": 0.4 + 0.001 * (i % 10), "b": 1.0 + 0.001 * (i % 7)}, t=i)
    >>> det.score_one({"a": 0.405, "b": 1.003}, t=0.0) < det.score_one({"a": 0.9, "b": 0.5}, t=0.0)
    True
    """

    def __init__(
        self,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        max_metrics: int = 16,
        seed: int | None = None,
    ) -> None:
        from river import anomaly, compose, preprocessing

        if max_metrics < 1:
            raise ValueError("max_metrics must be >= 1")
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.max_metrics = max_metrics
        self.seed = seed
        self._metrics = _MetricIndex(max_metrics)
        self._model = compose.Pipeline(
            preprocessing.MinMaxScaler(),
            anomaly.HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window_size,
                                   seed=seed),
        )

    @property
    def ignored_values(self) -> int:
        """Finite values dropped because their metric found ``max_metrics`` slots taken."""
        return self._metrics.ignored_values

    def _clean(self, x: Mapping[str, float], admit: bool) -> dict[str, float]:
        names = self._metrics.names
        return {names[i]: v for i, v in self._metrics.observed(x, admit=admit)}

    def score_one(self, x: Mapping[str, float], t: float | None = None) -> float:
        """river's (uncalibrated) HST score of ``x`` in [0, 1]."""
        clean = self._clean(x, admit=False)
        if not clean:
            return 0.0
        s = float(self._model.score_one(clean))
        return min(max(s, 0.0), 1.0) if s == s else 0.0

    def explain_one(self, x: Mapping[str, float], t: float | None = None) -> Score:
        """river's score as observed, no expectation (NaN), and ``1 - score`` in the
        place of a p-value: **not** a probability (see the class docstring)."""
        s = self.score_one(x, t)
        return Score(s, math.nan, 1.0 - s)

    def learn_one(self, x: Mapping[str, float], t: float | None = None) -> None:
        clean = self._clean(x, admit=True)
        if clean:
            self._model.learn_one(clean)


__all__ = ["HalfSpaceTreesDetector"]
