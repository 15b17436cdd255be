"""Multivariate detectors over the metrics of one monitoring station.

One observation ``x`` is a ``dict`` of metric name -> value (``{"pm25": 41.0, "pm10":
77.5, "no2": 28.0}``); a metric may be absent from an observation or NaN. Two detectors
follow the package contract (:mod:`detectors.base`): ``explain_one(x, t)`` /
``score_one(x, t)`` before ``learn_one(x, t)``, neither changes state, higher = more
anomalous.

* :class:`StationDetector` (use this): robust online standardisation of each metric, an
  exponentially weighted covariance of the standardised vector shrunk toward the identity,
  and the Mahalanobis distance of the observed metrics turned into a **calibrated**
  likelihood (chi-square CDF). It sees broken correlations that per-metric detectors miss.
* :class:`HalfSpaceTreesDetector`: river's Half-Space Trees behind an online min-max
  scaler, for comparison. Its output is **not** calibrated.

Metric cap (both detectors): a detector tracks at most ``max_metrics`` metrics, the first
ones it *learns* with a finite value; metrics first seen in the same observation are
admitted in sorted name order. Any other metric is ignored, now and later, and every
ignored value is counted in ``ignored_values``. Scoring never admits a metric (the cap is
kept by :mod:`.metric_index`; :class:`HalfSpaceTreesDetector` is in
:mod:`.half_space_trees`, exported here).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

from scipy.special import gammainc, gammaincc
from scipy.stats import chi2

from detectors.base import Score
from detectors.signals.half_space_trees import HalfSpaceTreesDetector
from detectors.signals.metric_index import MAX_ABS, _MetricIndex

#: Huber clipping constant (in robust sd) of the location and scale updates
HUBER_C = 3.0

#: an observation whose squared Mahalanobis distance exceeds this quantile of its
#: chi-square enters the covariance scaled down to it (Huber weights on the scatter)
COV_CLIP_P = 0.95

#: the scale of a metric never falls below this fraction of its typical nonzero step
#: (mean |change| between successive values that differ): quantised metrics whose values
#: mostly repeat would otherwise see their robust scale collapse
STEP_FLOOR = 0.5

#: observations of a metric summarised by a plain mean / sd before the robust updates start
INIT_OBS = 10


def _huber_kappa(c: float) -> float:
    """E[min(Z^2, c^2)] for a standard normal Z: makes the clipped scale update unbiased."""
    phi = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * (1.0 + math.erf(c / math.sqrt(2.0)))
    return (2.0 * cdf - 1.0) - 2.0 * c * phi + 2.0 * c * c * (1.0 - cdf)


_KAPPA = _huber_kappa(HUBER_C)


@functools.lru_cache(maxsize=256)
def _scatter_clip(k: int) -> tuple[float, float]:
    """``(q, kappa)``: the COV_CLIP_P quantile ``q`` of chi2_k and E[min(chi2_k, q)] / k,
    which makes the clipped scatter update unbiased for Gaussian input."""
    q = float(chi2.ppf(COV_CLIP_P, k))
    e = k * float(gammainc(0.5 * k + 1.0, 0.5 * q)) + q * (1.0 - COV_CLIP_P)
    return q, e / k


class StationDetector:
    """Is this combination of a station's metrics unusual, given how they move together?

    Each metric is standardised online with a robust exponentially weighted location and
    scale (Huber-clipped updates at ``HUBER_C`` sd after a plain mean/sd over its first
    ``INIT_OBS`` values; the scale never falls below ``abs_floor``, ``rel_floor *
    |location|`` nor ``STEP_FLOOR`` times the metric's typical nonzero change, so flat
    metrics do not divide by zero and quantised ones, whose values mostly repeat, do not
    alarm on every step away from the mode; the price: once a mostly flat metric has
    jumped, jumps of that size no longer stand out on their own). The standardised vector
    ``u`` feeds an exponentially weighted second-moment matrix ``C``, updated pair by pair
    over the metrics both present; an observation beyond the ``COV_CLIP_P``
    chi-square quantile enters it shrunk to that radius, so outliers barely move it. An
    observation is scored on the ``k`` metrics it carries that have at least ``warmup``
    values: ``d2 = u' S^-1 u`` with ``S = (1 - shrinkage) C + shrinkage I`` (Ledoit-Wolf
    style fixed shrinkage toward the identity; diagonal at least 1, so no metric counts as
    less variable than its robust scale says), and the output is ``P(chi2_k <= d2)``, a
    calibrated anomaly likelihood in [0, 1]: about uniform on normal data when the metrics
    are roughly Gaussian and the estimates have settled (heavy tails make high values more
    frequent). It is 0.0 while no observed metric has ``warmup`` values. Because ``C``
    carries the correlations, two metrics that usually move together and now diverge
    score high even when each stays within its usual range.

    Decay is per observation (``half_life`` observations), so irregular spacing changes
    nothing and ``t`` is accepted but not used. There is no randomness: ``seed`` is
    accepted and unused. State is O(``max_metrics`` ** 2) floats (see the module docstring
    for which metrics are tracked).

    >>> import random
    >>> rng = random.Random(1)
    >>> det = StationDetector(warmup=30)
    >>> for i in range(500):          # pm10 follows pm25; no2 is independent
    ...     pm25 = 40 + 10 * rng.gauss(0, 1)
    ...     x = {"pm25": pm25, "pm10": 1.8 * pm25 + 3 * rng.gauss(0, 1),
    ...          "no2": 25 + 5 * rng.gauss(0, 1)}
    ...     det.learn_one(x, t=i * 300.0)
    >>> det.score_one({"pm25": 50.0, "pm10": 90.0, "no2": 25.0}, t=0.0) < 0.9   # typical
    True
    >>> det.score_one({"pm25": 50.0, "pm10": 54.0, "no2": 25.0}, t=0.0) > 0.999  # diverge
    True
    >>> det.score_one({"pm10": 54.0, "no2": float("nan")}, t=0.0) < 0.99  # alone: normal
    True
    >>> s = det.explain_one({"pm25": 50.0, "pm10": 54.0, "no2": 25.0}, t=0.0)
    >>> s.expected, s.p_value < 1e-3              # three metrics, far from them
    (3.0, True)
    """

    def __init__(
        self,
        max_metrics: int = 16,
        half_life: float = 500.0,
        shrinkage: float = 0.05,
        warmup: int = 50,
        rel_floor: float = 1e-3,
        abs_floor: float = 1e-6,
        seed: int | None = None,
    ) -> None:
        if max_metrics < 1:
            raise ValueError("max_metrics must be >= 1")
        if not half_life > 0:
            raise ValueError("half_life must be > 0")
        if not 0.0 < shrinkage <= 1.0:
            raise ValueError("shrinkage must be in (0, 1]")
        if warmup < INIT_OBS:
            raise ValueError(f"warmup must be >= {INIT_OBS}")
        if rel_floor < 0 or not abs_floor > 0:
            raise ValueError("need rel_floor >= 0 and abs_floor > 0")
        self.max_metrics = max_metrics
        self.half_life = half_life
        self.shrinkage = shrinkage
        self.warmup = warmup
        self.rel_floor = rel_floor
        self.abs_floor = abs_floor
        self.seed = seed
        self._alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self._n_cap = max(warmup, math.ceil(1.0 / self._alpha))  # counts stop here
        self._metrics = _MetricIndex(max_metrics)
        self._n: list[int] = []  # values learned, per metric (capped at _n_cap)
        self._loc: list[float] = []
        self._scale: list[float] = []
        self._m2: list[float] = []  # sum of squared deviations, first INIT_OBS values only
        self._last: list[float] = []  # last value learned
        self._step: list[float] = []  # EW mean of the nonzero |changes| of the value
        self._n_step: list[int] = []  # nonzero changes seen (capped)
        self._cov: list[list[float]] = []  # EW E[u_i u_j], lower triangle: _cov[i][j], j <= i
        self._pairs: list[list[int]] = []  # co-learned pairs, same layout (capped)

    # -- introspection --------------------------------------------------------------------
    @property
    def metrics(self) -> list[str]:
        """The tracked metrics, in slot order."""
        return list(self._metrics.names)

    @property
    def ignored_values(self) -> int:
        """Finite values dropped because their metric found ``max_metrics`` slots taken."""
        return self._metrics.ignored_values

    # -- internals ------------------------------------------------------------------------
    def _eff_scale(self, i: int) -> float:
        return max(self._scale[i], self.abs_floor, self.rel_floor * abs(self._loc[i]),
                   STEP_FLOOR * self._step[i])

    def _z(self, i: int, v: float) -> float:
        return (v - self._loc[i]) / self._eff_scale(i)

    def _mahalanobis2(self, slots: list[int], u: list[float]) -> float:
        """``u' S^-1 u`` on the sub-matrix of ``slots`` (Cholesky; if ``S`` is not positive
        definite, which pairwise updates allow, the shrinkage is raised until it is)."""
        k = len(slots)
        cov = self._cov
        lam = self.shrinkage
        for _ in range(8):
            keep = 1.0 - lam
            low: list[list[float]] = []
            ok = True
            for a in range(k):
                ia = slots[a]
                row = cov[ia]
                la: list[float] = []
                for b in range(a + 1):
                    s = keep * row[slots[b]]
                    if a == b:  # no variance below the robust scale: S_ii >= 1
                        s = max(s + lam, 1.0)
                    lb = low[b] if b < a else la
                    for c in range(b):
                        s -= la[c] * lb[c]
                    if a == b:
                        if s <= 1e-12:
                            ok = False
                            break
                        la.append(math.sqrt(s))
                    else:
                        la.append(s / lb[b])
                if not ok:
                    break
                low.append(la)
            if ok:
                d2 = 0.0
                y: list[float] = []
                for a in range(k):
                    la = low[a]
                    s = u[a]
                    for c in range(a):
                        s -= la[c] * y[c]
                    ya = s / la[a]
                    y.append(ya)
                    d2 += ya * ya
                return d2
            lam = 0.5 * (1.0 + lam)
        return sum(v * v for v in u)  # S = I

    # -- contract -------------------------------------------------------------------------
    def _distance(self, x: Mapping[str, float]) -> tuple[float, int]:
        """``(d2, k)``: the squared Mahalanobis distance of ``x`` over the ``k`` observed
        metrics with ``warmup`` values (``(0, 0)`` if none)."""
        slots: list[int] = []
        u: list[float] = []
        n = self._n
        for i, v in self._metrics.observed(x, admit=False):
            if n[i] >= self.warmup:
                slots.append(i)
                u.append(self._z(i, v))
        if not slots:
            return 0.0, 0
        return self._mahalanobis2(slots, u), len(slots)

    def score_one(self, x: Mapping[str, float], t: float | None = None) -> float:
        """Calibrated anomaly likelihood of ``x`` in [0, 1] (0.0 during warmup)."""
        d2, k = self._distance(x)
        if not k:
            return 0.0
        if not d2 < math.inf:  # overflow (or NaN, which cannot happen): maximally unusual
            return 1.0
        p = float(gammainc(0.5 * k, 0.5 * d2))
        return min(max(p, 0.0), 1.0) if p == p else 1.0

    def explain_one(self, x: Mapping[str, float], t: float | None = None) -> Score:
        """The squared Mahalanobis distance (observed), its expectation ``k`` (the number
        of metrics scored) and the chi-square upper tail ``P(chi2_k >= d2)`` (p = 1 during
        warmup); ``score_one`` is ``1 - p``, up to rounding."""
        d2, k = self._distance(x)
        if not k:
            return Score(0.0, 0.0, 1.0)
        if not d2 < math.inf:
            return Score(math.inf, float(k), 0.0)
        p = float(gammaincc(0.5 * k, 0.5 * d2))
        return Score(d2, float(k), min(max(p, 0.0), 1.0) if p == p else 0.0)

    def learn_one(self, x: Mapping[str, float], t: float | None = None) -> None:
        """Update locations, scales and covariance with the finite tracked values of ``x``."""
        obs = self._metrics.observed(x, admit=True)
        while len(self._n) < len(self._metrics.names):  # newly admitted metrics
            d = len(self._n)
            self._n.append(0)
            self._loc.append(0.0)
            self._scale.append(0.0)
            self._m2.append(0.0)
            self._last.append(math.nan)
            self._step.append(0.0)
            self._n_step.append(0)
            self._cov.append([0.0] * d + [1.0])
            self._pairs.append([0] * (d + 1))
        alpha = self._alpha
        cap = self._n_cap
        # covariance of the standardised values, before location/scale move; an
        # observation far out (Mahalanobis) is shrunk to the clip radius first
        ready = [(i, self._z(i, v)) for i, v in obs if self._n[i] >= INIT_OBS]
        if ready:
            q, kappa = _scatter_clip(len(ready))
            d2 = self._mahalanobis2([i for i, _ in ready], [ui for _, ui in ready])
            g = math.sqrt((q / d2 if d2 > q else 1.0) / kappa)
            ready = [(i, ui * g) for i, ui in ready]
        for a, (i, ui) in enumerate(ready):
            row = self._cov[i]
            prow = self._pairs[i]
            for j, uj in ready[: a + 1]:
                m = prow[j]
                w = max(alpha, 1.0 / (m + 2))  # the identity prior weighs one pair
                row[j] += w * (ui * uj - row[j])
                if m < cap:
                    prow[j] = m + 1
        # robust location and scale
        for i, v in obs:
            step = abs(v - self._last[i])  # NaN on the first value: not > 0
            self._last[i] = v
            if step > 0.0:
                ns = self._n_step[i] + 1
                self._step[i] += max(alpha, 1.0 / ns) * (step - self._step[i])
                self._n_step[i] = min(ns, cap)
            m = self._n[i]
            if m < INIT_OBS:  # Welford
                m += 1
                delta = v - self._loc[i]
                self._loc[i] += delta / m
                self._m2[i] += delta * (v - self._loc[i])
                self._scale[i] = math.sqrt(self._m2[i] / (m - 1)) if m > 1 else 0.0
            else:  # Huber-clipped exponentially weighted M-estimate
                s = self._eff_scale(i)
                z = (v - self._loc[i]) / s
                psi = max(-HUBER_C, min(HUBER_C, z))
                w = max(alpha, 1.0 / (m + 1))
                self._loc[i] += w * s * psi
                self._scale[i] = s * math.sqrt(1.0 - w + w * psi * psi / _KAPPA)
                m = min(m + 1, cap)
            self._n[i] = m


__all__ = ["MAX_ABS", "HalfSpaceTreesDetector", "StationDetector"]
