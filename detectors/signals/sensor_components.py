"""The single-statistic sensor detectors (:class:`RobustLevel`, :class:`EwmaVariance`,
:class:`PageHinkley`, :class:`SeasonalBaseline`), each calibrated per series, and the
hour-of-week bookkeeping they share with
:class:`~detectors.signals.sensor.SensorEnsemble`. When to use which: see
:mod:`detectors.signals.sensor`, which exports them all."""

from __future__ import annotations

import math
from array import array

from detectors.base import Score
from detectors.signals.calibration import TailCalibrator

HOUR = 3600.0
#: readings a baseline needs before its statistic is worth calibrating
MIN_BASELINE = 10
WEEK_HOURS = 168
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


__all__ = ["HOUR", "MIN_BASELINE", "WEEK_HOURS", "EwmaVariance", "PageHinkley", "RobustLevel",
           "SeasonalBaseline"]
