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
"""

from __future__ import annotations

import math
from array import array

from detectors.base import Score
from detectors.signals import calibration as _cal
from detectors.signals.calibration import P_MIN, TailCalibrator, tail_learn, tail_p_value

HOUR = 3600.0
#: readings a baseline needs before its statistic is worth calibrating
MIN_BASELINE = 10
WEEK_HOURS = 168
#: readings beyond this magnitude are reported as anomalous (p = P_MIN) and never learned:
#: no sensor measures them, and squaring them would overflow
MAX_ABS = 1e100
#: after a gap longer than this many typical spacings, the last reading predicts nothing
GAP_SPACINGS = 3.0
#: the Unix epoch began on a Thursday; shift so that hour-of-week 0 is Monday 00:00 UTC
_EPOCH_WEEKDAY_HOURS = 72


def _hour_slots(t: float) -> tuple[int, int]:
    h = int(t // HOUR)
    return (h + _EPOCH_WEEKDAY_HOURS) % WEEK_HOURS, h % 24


class _WeekCounts:
    """How often each hour of the week has been seen, up to ``week_min``; once every hour
    has, the counts are dropped (None: 225 bytes less state per series)."""

    __slots__ = ("_week_n", "week_min")
    week_min: int
    _week_n: bytearray | None

    def _week_ready(self, how: int) -> bool:
        counts = self._week_n
        return not counts or counts[how] >= self.week_min

    def _week_seen(self, how: int) -> None:
        counts = self._week_n
        if counts and counts[how] < self.week_min:
            counts[how] += 1
            if counts[how] == self.week_min and min(counts) >= self.week_min:
                self._week_n = None


class _Calibrated:
    """Shared machinery: a raw statistic per reading, calibrated per series."""

    learning: int
    _cal: TailCalibrator
    _n: int

    def _stat(self, x: float, t: float) -> tuple[float, float] | None:
        """(statistic, expected value) for ``x``, or None while there is no baseline."""
        raise NotImplementedError

    def _update(self, x: float, t: float) -> None:
        raise NotImplementedError

    def explain_one(self, x: float, t: float = 0.0) -> Score:
        if not math.isfinite(x):
            return Score(x, math.nan, 1.0)
        st = self._stat(x, t)
        if st is None:
            return Score(x, math.nan, 1.0)
        p = self._cal.p_value(st[0]) if self._n >= max(self.learning, MIN_BASELINE) else 1.0
        return Score(x, st[1], p)

    def score_one(self, x: float, t: float = 0.0) -> float:
        return self.explain_one(x, t).likelihood

    def learn_one(self, x: float, t: float = 0.0) -> None:
        if not math.isfinite(x):
            return
        st = self._stat(x, t)
        if st is not None and self._n >= MIN_BASELINE:
            self._cal.learn_one(st[0])
        self._update(x, t)
        self._n += 1


class RobustLevel(_Calibrated):
    """Streaming median and MAD (frugal stochastic quantile updates, O(1) state).

    >>> import random
    >>> rng = random.Random(0)
    >>> det = RobustLevel()
    >>> for i in range(500):
    ...     det.learn_one(20 + rng.gauss(0, 1), float(i))
    >>> round(det.explain_one(20.0).expected)
    20
    >>> det.score_one(35.0) > 0.999
    True
    """

    def __init__(self, rate: float = 0.02, learning: int = 50, seed: int = 0) -> None:
        self.rate = rate
        self.learning = learning
        self.seed = seed  # no randomness enters
        self._med = math.nan
        self._mad = 0.0
        self._cal = TailCalibrator()
        self._n = 0

    def _stat(self, x: float, t: float) -> tuple[float, float] | None:
        if self._med != self._med:
            return None
        return abs(x - self._med), self._med

    def _update(self, x: float, t: float) -> None:
        if self._med != self._med:
            self._med = x
            return
        dev = abs(x - self._med)
        step = self.rate * max(self._mad, 1e-9 * (abs(self._med) + 1.0))
        self._med += step if x > self._med else -step if x < self._med else 0.0
        # the MAD tracks the median of |x - med|; it also sets the median's step size
        self._mad += self.rate * ((dev - self._mad) if self._n < 20 else
                                  (self._mad if dev > self._mad else -self._mad))


class EwmaVariance(_Calibrated):
    """Exponentially weighted mean and variance; the statistic is ``|x - mean| / sd``.

    >>> det = EwmaVariance()
    >>> for i in range(300):
    ...     det.learn_one(5.0 + (i % 7) * 0.1, float(i))
    >>> det.score_one(5.3) < 0.99 < det.score_one(9.0)
    True
    """

    def __init__(self, alpha: float = 0.05, learning: int = 50, seed: int = 0) -> None:
        self.alpha = alpha
        self.learning = learning
        self.seed = seed
        self._mean = math.nan
        self._var = 0.0
        self._cal = TailCalibrator()
        self._n = 0

    def _stat(self, x: float, t: float) -> tuple[float, float] | None:
        if self._mean != self._mean:
            return None
        sd = math.sqrt(self._var) + 1e-9 * (abs(self._mean) + 1.0)
        return abs(x - self._mean) / sd, self._mean

    def _update(self, x: float, t: float) -> None:
        if self._mean != self._mean:
            self._mean = x
            return
        d = x - self._mean
        a = max(self.alpha, 1.0 / (self._n + 1))
        self._mean += a * d
        self._var = (1.0 - a) * (self._var + a * d * d)


class PageHinkley(_Calibrated):
    """Two-sided CUSUM of the standardised residual against a slow EWMA: catches a small
    sustained shift well before any single reading looks odd. The sums restart after
    ``reset`` standard deviations of accumulated drift (the shift has been reported).

    >>> det = PageHinkley()
    >>> for i in range(400):
    ...     det.learn_one(10.0 + 0.5 * ((i * 7919) % 11 - 5) / 5, float(i))
    >>> scores = []
    >>> for i in range(10):
    ...     scores.append(det.score_one(10.8, 400.0 + i)); det.learn_one(10.8, 400.0 + i)
    >>> max(scores) > 0.999 > scores[-1]    # reported, then the new level is the baseline
    True
    """

    def __init__(self, alpha: float = 0.01, k: float = 0.5, reset: float = 8.0,
                 learning: int = 50, seed: int = 0) -> None:
        self.alpha = alpha
        self.k = k
        self.reset = reset
        self.learning = learning
        self.seed = seed
        self._mean = math.nan
        self._var = 0.0
        self._pos = 0.0
        self._neg = 0.0
        self._cal = TailCalibrator()
        self._n = 0

    def _sums(self, x: float) -> tuple[float, float]:
        sd = math.sqrt(self._var) + 1e-9 * (abs(self._mean) + 1.0)
        z = (x - self._mean) / sd
        return max(0.0, self._pos + z - self.k), max(0.0, self._neg - z - self.k)

    def _stat(self, x: float, t: float) -> tuple[float, float] | None:
        if self._mean != self._mean:
            return None
        pos, neg = self._sums(x)
        return max(pos, neg), self._mean

    def _update(self, x: float, t: float) -> None:
        if self._mean != self._mean:
            self._mean = x
            return
        if self._n >= MIN_BASELINE:
            self._pos, self._neg = self._sums(x)
        if max(self._pos, self._neg) > self.reset:
            self._pos = self._neg = 0.0
            self._mean = x
        d = x - self._mean
        a = max(self.alpha, 1.0 / (self._n + 1))
        self._mean += a * d
        self._var = (1.0 - a) * (self._var + a * d * d)


class SeasonalBaseline(_WeekCounts, _Calibrated):
    """Usual value for this hour of the week (once that hour has been seen ``week_min``
    times), else for this hour of the day, else the overall EWMA.

    >>> det = SeasonalBaseline()
    >>> for h in range(24 * 14):
    ...     det.learn_one(100.0 if h % 24 in (8, 9, 10) else 10.0, h * 3600.0)
    >>> det.explain_one(100.0, 24 * 14 * 3600.0 + 9 * 3600).p_value > 0.05
    True
    >>> det.score_one(100.0, 24 * 14 * 3600.0 + 3 * 3600) > 0.99
    True
    """

    def __init__(self, rate: float = 0.3, week_min: int = 2, learning: int = 48,
                 seed: int = 0) -> None:
        self.rate = rate
        if not 0 <= week_min <= 255:
            raise ValueError(f"week_min={week_min}: must be between 0 and 255 readings")
        self.week_min = week_min
        self.learning = learning
        self.seed = seed
        self._week = array("f", [math.nan]) * WEEK_HOURS
        self._week_n = bytearray(WEEK_HOURS)
        self._day = array("f", [math.nan]) * 24
        self._level = math.nan
        self._cal = TailCalibrator()
        self._n = 0

    def expected(self, t: float) -> float:
        how, hod = _hour_slots(t)
        e = self._week[how] if self._week_ready(how) else self._day[hod]
        return self._level if e != e else float(e)

    def _stat(self, x: float, t: float) -> tuple[float, float] | None:
        if self._level != self._level:
            return None
        e = self.expected(t)
        return abs(x - e), e

    def _update(self, x: float, t: float) -> None:
        how, hod = _hour_slots(t)
        self._level = x if self._level != self._level else self._level + 0.05 * (x - self._level)
        w, d = self._week[how], self._day[hod]
        self._week[how] = x if w != w else w + self.rate * (x - w)
        self._day[hod] = x if d != d else d + self.rate * (x - d)
        self._week_seen(how)


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


__all__ = ["EwmaVariance", "PageHinkley", "RobustLevel", "SeasonalBaseline", "SensorEnsemble"]
