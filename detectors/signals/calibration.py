"""Turning raw anomaly statistics into calibrated tail probabilities, per series, in O(1).

A raw statistic (an absolute residual, a CUSUM sum, a distance) means nothing across series:
its scale and tail differ from one sensor to the next. :class:`TailCalibrator` learns the
upper tail of one statistic online, peaks-over-threshold style (Pickands-Balkema-de Haan:
exceedances over a high quantile follow a generalised Pareto distribution), and reports
``P(S >= s)``, which *is* comparable across series: one threshold serves them all.

* the ``q``-quantile ``u`` is tracked by a stochastic-approximation (frugal) quantile update
  whose step scales with the statistic's running mean, so it works at any scale;
* exceedances ``y = s - u`` update exponentially weighted first and second moments, from
  which the generalised Pareto shape and scale follow by the method of moments; the shape
  is kept in ``[0, 0.8]`` (an exponential or heavier tail: no hard upper end point, so a
  value beyond all history gets a small but non-zero p, never exactly 0);
* an exceedance far out in the tail is winsorised before it is learned, so one huge outlier
  does not inflate the tail at once, yet a new regime of large values is learned after a
  few repetitions (the recurring spikes of a bursty series become normal).
"""

from __future__ import annotations

import math
from array import array

P_MIN = 1e-300
#: statistics are clipped here: beyond it every value is equally extreme, and squares of
#: larger ones would overflow
S_MAX = 1e100
#: the default parameters (see TailCalibrator)
Q = 0.98
ETA = 0.02
ALPHA = 0.05
WINSOR = 3.0


#: a calibrator's state packed in float64s, from an offset ``at`` of an ``array('d')``:
#: ``at + 0`` the tracked quantile ``u``, ``+ 1`` the statistic's running ``mean``, ``+ 2``
#: and ``+ 3`` the EW means of exceedances and of their squares (``e1``, ``e2``), ``+ 4`` the
#: exceedances seen (``ne``); the count of statistics learned is not kept (nothing reads it)
STATE_SIZE = 5


def tail_p_value(st: array[float], at: int, q: float, s: float) -> float:
    """:meth:`TailCalibrator.p_value` of the state packed at ``st[at:at + STATE_SIZE]``
    (for a host that packs its calibrators' states into one array: 8 bytes a number, no
    objects). Both compute with :func:`_p_value`, so the same values, bit for bit; the
    offsets are literals (see ``STATE_SIZE``), as this runs per reading."""
    return _p_value(s, q, st[at], st[at + 2], st[at + 3], st[at + 4])


def _p_value(s: float, q: float, u: float, e1: float, e2: float, ne: float) -> float:
    """``P(S >= s)`` of a calibrator with quantile ``q``, tracked quantile ``u``, EW means
    of exceedances and of their squares ``e1`` and ``e2``, and ``ne`` exceedances seen."""
    if s != s:  # NaN
        return 1.0
    s = min(s, S_MAX)
    tail = 1.0 - q
    if s <= u or ne < 3:
        if u <= 0.0:
            return 1.0 if s <= 0.0 else tail
        # below the tracked quantile: log-linear from 1 at s = 0 to ``tail`` at s = u
        return math.exp(math.log(tail) * max(s, 0.0) / u) if s < u else tail
    var = max(e2 - e1 * e1, 0.0025 * e1 * e1, 1e-300)
    r = e1 * e1 / var
    xi = min(max(0.5 * (1.0 - r), 0.0), 0.8)
    sigma = max(0.5 * e1 * (1.0 + r), 1e-300)
    y = s - u
    t = math.exp(-y / sigma) if xi < 1e-06 else (1.0 + xi * y / sigma) ** (-1.0 / xi)
    return max(tail * t, P_MIN)


def tail_learn(st: array[float], at: int, q: float, eta: float, alpha: float,
               winsor: float, s: float) -> None:
    """:meth:`TailCalibrator.learn_one` on the state packed at ``st[at:at + STATE_SIZE]``
    (see :func:`tail_p_value`)."""
    if s != s:
        return
    s = min(s, S_MAX)
    mean = st[at + 1]
    mean += (abs(s) - mean) * 0.01
    st[at + 1] = mean
    step = eta * (mean + 1e-12)
    u = st[at]
    if s > u:
        y = s - u
        st[at] = u + step * q
        e1 = st[at + 2]
        e2 = st[at + 3]
        ne = st[at + 4]
        if ne >= 3 and winsor > 0:
            sd = math.sqrt(max(e2 - e1 * e1, 0.0))
            y = min(y, e1 + winsor * max(sd, 0.5 * e1))
        a = max(alpha, 1.0 / (ne + 1.0))
        st[at + 2] = e1 + a * (y - e1)
        st[at + 3] = e2 + a * (y * y - e2)
        st[at + 4] = ne + 1.0
    else:
        st[at] = max(u - step * (1.0 - q), 0.0)


class TailCalibrator:
    """Online upper-tail probability of a non-negative statistic.

    A host that keeps many calibrators per series can keep their states packed in one
    ``array('d')`` instead, with :func:`tail_p_value` and :func:`tail_learn` (the same
    arithmetic, so the same values, bit for bit).

    >>> import random
    >>> rng = random.Random(3)
    >>> cal = TailCalibrator()
    >>> for _ in range(5000):
    ...     cal.learn_one(abs(rng.gauss(0, 1)))
    >>> 0.02 < cal.p_value(2.0) < 0.09      # true P(|Z| >= 2) = 0.046
    True
    >>> cal.p_value(6.0) < 1e-4
    True
    """

    __slots__ = ("alpha", "e1", "e2", "eta", "mean", "n", "ne", "q", "u", "winsor")

    def __init__(self, q: float = Q, eta: float = ETA, alpha: float = ALPHA,
                 winsor: float = WINSOR) -> None:
        if not 0.5 <= q < 1.0:
            raise ValueError(f"q={q}: the tail quantile must be in [0.5, 1)")
        self.q = q
        self.eta = eta
        self.alpha = alpha
        self.winsor = winsor
        self.u = 0.0  # tracked q-quantile
        self.mean = 0.0  # running mean of the statistic (sets the quantile step)
        self.e1 = 0.0  # EW mean of exceedances
        self.e2 = 0.0  # EW mean of squared exceedances
        self.ne = 0.0  # exceedances seen
        self.n = 0

    def __getstate__(self) -> tuple[float, ...]:
        return (self.q, self.eta, self.alpha, self.winsor, self.u, self.mean, self.e1,
                self.e2, self.ne, float(self.n))

    def __setstate__(self, s: tuple[float, ...]) -> None:
        (self.q, self.eta, self.alpha, self.winsor, self.u, self.mean, self.e1, self.e2,
         self.ne, n) = s
        self.n = int(n)

    def p_value(self, s: float) -> float:
        """``P(S >= s)`` under the learned distribution (1.0 until it has a tail)."""
        return _p_value(s, self.q, self.u, self.e1, self.e2, self.ne)

    def learn_one(self, s: float) -> None:
        if s != s:
            return
        s = min(s, S_MAX)
        self.n += 1
        self.mean += (abs(s) - self.mean) * 0.01
        step = self.eta * (self.mean + 1e-12)
        if s > self.u:
            y = s - self.u
            self.u += step * self.q
            if self.ne >= 3 and self.winsor > 0:
                sd = math.sqrt(max(self.e2 - self.e1 * self.e1, 0.0))
                y = min(y, self.e1 + self.winsor * max(sd, 0.5 * self.e1))
            a = max(self.alpha, 1.0 / (self.ne + 1.0))
            self.e1 += a * (y - self.e1)
            self.e2 += a * (y * y - self.e2)
            self.ne += 1.0
        else:
            self.u = max(self.u - step * (1.0 - self.q), 0.0)


__all__ = ["STATE_SIZE", "TailCalibrator", "tail_learn", "tail_p_value"]
