"""Sensor-series detectors: O(1) components and the calibrated ensemble built from them.

Every detector here follows the contract in :mod:`detectors.base`: ``score_one(x, t)`` is a
calibrated anomaly likelihood ``1 - p`` in [0, 1] (p from :class:`TailCalibrator`, learned
per series), computed before ``learn_one(x, t)``; ``explain_one`` gives observed, expected
and p. NaN readings score 0 and are not learned. Event time ``t`` is epoch seconds; only the
seasonal parts use it, so irregular spacing is fine.

When to use which:

* :class:`RobustLevel` -- a series that should sit at one level, with outliers in its own
  history (a streaming median and median absolute deviation: one bad reading does not move
  it);
* :class:`EwmaVariance` -- a smoothly wandering series; flags readings far from the
  exponentially weighted mean relative to the exponentially weighted spread;
* :class:`PageHinkley` -- small sustained level shifts that no single reading reveals
  (two-sided CUSUM, Page 1954 / Hinkley 1971), e.g. a slow leak;
* :class:`SeasonalBaseline` -- series with a daily or weekly rhythm (traffic, load,
  temperature): the expectation is the usual value for this hour of the week;
* :class:`SensorEnsemble` -- the default for any sensor stream whose behaviour is not known
  in advance: it keeps four predictors (last value, EWMA, hour-of-day, hour-of-week), uses
  the one that has recently predicted this series best, adds a CUSUM on its residual, and
  reports one calibrated likelihood. Repeats of one excursion are reported once.

The four single-statistic detectors live in :mod:`.sensor_components` (exported here).
"""

from __future__ import annotations

import math
from array import array

from detectors.base import Score
from detectors.signals import calibration as _cal
from detectors.signals.calibration import P_MIN, tail_learn, tail_p_value
from detectors.signals.sensor_components import (
    HOUR,
    MIN_BASELINE,
    WEEK_HOURS,
    EwmaVariance,
    PageHinkley,
    RobustLevel,
    SeasonalBaseline,
    _hour_slots,
    _WeekCounts,
)

#: readings beyond this magnitude are reported as anomalous (p = P_MIN) and never learned:
#: no sensor measures them, and squaring them would overflow
MAX_ABS = 1e100
#: after a gap longer than this many typical spacings, the last reading predicts nothing
GAP_SPACINGS = 3.0


def _surprise(p: float) -> float:
    """``-log10 p``: decays sensibly, unlike ``1 - p`` which is 0.99... for every alarm."""
    return -math.log10(max(p, 1e-300))


#: SensorEnsemble._nums: its numbers, packed as float64 (8 bytes each, no float objects):
#: the last reading and its time, the EW mean spacing of readings, the EWMA level, the
#: residual variance, the CUSUM sums, the surprise of the last flagged reading decaying,
#: the readings learned, the four predictors' EW absolute errors, and the tail calibrators'
#: states of the residual and of the CUSUM (see calibration.tail_p_value)
(_S_PREV, _S_T_PREV, _S_SPACING, _S_LEVEL, _S_VAR, _S_POS, _S_NEG, _S_PEAK, _S_N,
 _S_ERR) = range(10)
_S_RES = _S_ERR + 4
_S_CUSUM = _S_RES + _cal.STATE_SIZE
_S_SIZE = _S_CUSUM + _cal.STATE_SIZE
_S_INITIAL = array("d", [0.0]) * _S_SIZE
_S_INITIAL[_S_PREV] = _S_INITIAL[_S_T_PREV] = _S_INITIAL[_S_LEVEL] = math.nan
# the calibrators' parameters: TailCalibrator's defaults
_CAL_Q, _CAL_ETA, _CAL_ALPHA, _CAL_WINSOR = _cal.Q, _cal.ETA, _cal.ALPHA, _cal.WINSOR
_ALL_ERRS = range(_S_ERR, _S_ERR + 4)
_STALE_ERRS = range(_S_ERR + 1, _S_ERR + 4)  # all but the last reading's


class SensorEnsemble(_WeekCounts):
    """The default sensor detector: four predictors, the recently best one's residual and a
    CUSUM on it, each calibrated per series, combined by Bonferroni into one likelihood.

    Predictors: the last value, an EWMA (``fast``), the hour-of-day and the hour-of-week
    means (``season_rate``). Each keeps an exponentially weighted absolute error
    (``select_rate``); the one with the smallest error gives the expectation. A reading
    flagged at ``p < anomaly_p`` updates the baselines at ``anomaly_damp`` of the usual rate,
    so an anomaly does not become the expectation for tomorrow. After a flagged reading,
    ``score_one`` reports later readings only when their surprise ``-log10 p`` beats the
    flagged reading's, decayed with a half-life of ``refractory`` readings: one excursion,
    one alert. ``explain_one`` always gives the undamped p-value.

    >>> import random
    >>> rng = random.Random(7)
    >>> det = SensorEnsemble(seed=7)
    >>> for i in range(2000):
    ...     x = 50 + 10 * math.sin(i * 2 * math.pi / 288) + rng.gauss(0, 1)
    ...     _ = det.score_one(x, i * 300.0); det.learn_one(x, i * 300.0)
    >>> det.score_one(50 + 10 * math.sin(2000 * 2 * math.pi / 288), 2000 * 300.0) < 0.99
    True
    >>> det.score_one(90.0, 2000 * 300.0) > 0.999
    True
    """

    # slots, not a __dict__: a million series save about 800 MB; and the numbers packed in
    # two arrays (see _S_*): about 1.6 KB a series in all, its key included
    __slots__ = ("_nums", "_wd", "anomaly_damp", "anomaly_p", "cusum_k", "cusum_reset",
                 "fast", "learning", "refractory", "season_rate", "seed", "select_rate",
                 "slow")

    def __init__(self, learning: int = 150, fast: float = 0.1, season_rate: float = 0.3,
                 week_min: int = 2, select_rate: float = 0.003, cusum_k: float = 0.5,
                 cusum_reset: float = 8.0, slow: float = 0.005, anomaly_p: float = 1e-3,
                 anomaly_damp: float = 0.2, refractory: float = 60.0, seed: int = 0) -> None:
        self.learning = learning
        self.fast = fast
        self.season_rate = season_rate
        if not 0 <= week_min <= 255:
            raise ValueError(f"week_min={week_min}: must be between 0 and 255 readings")
        self.week_min = week_min
        self.select_rate = select_rate
        self.cusum_k = cusum_k
        self.cusum_reset = cusum_reset
        self.slow = slow
        self.anomaly_p = anomaly_p
        self.anomaly_damp = anomaly_damp
        self.refractory = refractory
        self.seed = seed  # no randomness enters
        # hour-of-week means (float32, 168), then hour-of-day means (24)
        self._wd = array("f", [math.nan]) * (WEEK_HOURS + 24)
        self._week_n = bytearray(WEEK_HOURS)
        self._nums = _S_INITIAL[:]

    def _predictions(self, how: int, hod: int) -> tuple[float, float, float, float]:
        """(last value, EWMA, hour-of-day, hour-of-week) at that hour of week and day."""
        nums = self._nums
        lvl = nums[_S_LEVEL]
        day = float(self._wd[WEEK_HOURS + hod])
        if day != day:
            day = lvl
        week = float(self._wd[how]) if self._week_ready(how) else day
        if week != week:
            week = day
        return nums[_S_PREV], lvl, day, week

    def _state(self, x: float, t: float, preds: tuple[float, float, float, float]
               ) -> tuple[float, float, float, float, float]:
        """(expected, residual, cusum+, cusum-, combined p) for ``x`` given the predictions
        at ``t``; p is 1 in warm-up."""
        nums = self._nums
        # after a gap the last reading is stale: choose among the other predictors (the
        # one with the smallest error, the first of equals)
        spacing = nums[_S_SPACING]
        stale = spacing > 0.0 and t - nums[_S_T_PREV] > GAP_SPACINGS * spacing
        best = min(_STALE_ERRS if stale else _ALL_ERRS, key=nums.__getitem__) - _S_ERR
        e = preds[best]
        r = x - e
        sd = math.sqrt(nums[_S_VAR]) + 1e-9 * (abs(preds[1]) + 1.0)  # (preds[1]: level)
        z = r / sd
        pos = max(0.0, nums[_S_POS] + z - self.cusum_k)
        neg = max(0.0, nums[_S_NEG] - z - self.cusum_k)
        if nums[_S_N] < self.learning:
            return e, r, pos, neg, 1.0
        p = min(tail_p_value(nums, _S_RES, _CAL_Q, abs(r)),
                tail_p_value(nums, _S_CUSUM, _CAL_Q, max(pos, neg)))
        return e, r, pos, neg, min(1.0, 2.0 * p)

    def explain_one(self, x: float, t: float = 0.0) -> Score:
        level = self._nums[_S_LEVEL]
        if not math.isfinite(x) or level != level:
            return Score(x, math.nan, 1.0)
        if abs(x) > MAX_ABS:
            return Score(x, level, P_MIN)
        e, _, _, _, p = self._state(x, t, self._predictions(*_hour_slots(t)))
        return Score(x, e, p)

    def score_one(self, x: float, t: float = 0.0) -> float:
        score = self.explain_one(x, t)
        return score.likelihood if _surprise(score.p_value) > self._nums[_S_PEAK] else 0.0

    def learn_one(self, x: float, t: float = 0.0) -> None:
        if not math.isfinite(x) or abs(x) > MAX_ABS:
            return
        nums = self._nums
        level = nums[_S_LEVEL]
        if level != level:
            nums[_S_PREV] = nums[_S_LEVEL] = x
            nums[_S_T_PREV] = t
            nums[_S_N] = 1.0
            return
        how, hod = _hour_slots(t)
        # the predictions do not change until the level, last value and means are updated
        # below (after the calibrators, CUSUM, variance and peak): taken once
        preds = self._predictions(how, hod)
        _e, r, pos, neg, p = self._state(x, t, preds)
        if self.refractory > 0:
            nums[_S_PEAK] = max(nums[_S_PEAK] * 0.5 ** (1.0 / self.refractory), _surprise(p))
        tail_learn(nums, _S_RES, _CAL_Q, _CAL_ETA, _CAL_ALPHA, _CAL_WINSOR, abs(r))
        tail_learn(nums, _S_CUSUM, _CAL_Q, _CAL_ETA, _CAL_ALPHA, _CAL_WINSOR, max(pos, neg))
        if max(pos, neg) > self.cusum_reset:
            pos = neg = 0.0
        nums[_S_POS] = pos
        nums[_S_NEG] = neg
        damp = self.anomaly_damp if p < self.anomaly_p else 1.0
        n = nums[_S_N]
        var = nums[_S_VAR]
        if n > 50:
            nums[_S_VAR] = var + self.slow * damp * (r * r - var)
        else:
            nums[_S_VAR] = var + (r * r - var) / (n + 1)
        rate = self.select_rate
        prev, _, day, week = preds  # (preds[1] is level)
        err = nums[_S_ERR]
        nums[_S_ERR] = err + rate * (abs(x - prev) - err)
        err = nums[_S_ERR + 1]
        nums[_S_ERR + 1] = err + rate * (abs(x - level) - err)
        err = nums[_S_ERR + 2]
        nums[_S_ERR + 2] = err + rate * (abs(x - day) - err)
        err = nums[_S_ERR + 3]
        nums[_S_ERR + 3] = err + rate * (abs(x - week) - err)
        nums[_S_LEVEL] = level + self.fast * (x - level)
        a = self.season_rate * damp
        wd = self._wd
        w, d = wd[how], wd[WEEK_HOURS + hod]
        wd[how] = x if w != w else w + a * (x - w)
        wd[WEEK_HOURS + hod] = x if d != d else d + a * (x - d)
        self._week_seen(how)
        nums[_S_PREV] = x
        t_prev = nums[_S_T_PREV]
        gap = t - t_prev
        if gap > 0.0:
            spacing = nums[_S_SPACING]
            nums[_S_SPACING] = spacing + (gap - spacing) * (0.05 if spacing > 0.0 else 1.0)
        nums[_S_T_PREV] = t
        nums[_S_N] = n + 1


__all__ = ["GAP_SPACINGS", "HOUR", "MAX_ABS", "MIN_BASELINE", "WEEK_HOURS", "EwmaVariance",
           "PageHinkley", "RobustLevel", "SeasonalBaseline", "SensorEnsemble"]
