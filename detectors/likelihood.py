"""Calibrated univariate detector for sensor series: raw surprise scores turned into an
anomaly likelihood in [0, 1], comparable across series (after Numenta's HTM likelihood).

Contract (river style): ``score_one(x, t)`` before ``learn_one(x, t)``; higher = more
anomalous; parameters are attributes; state is bounded and pickle-able.
"""

from __future__ import annotations

import math
from collections import deque

from .base import normal_sf
from .robust import RollingWindow


class RollingStats:
    """Mean and variance of the last ``size`` values, O(1) per update."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buf: deque[float] = deque()
        self._sum = 0.0
        self._sq = 0.0

    def add(self, x: float) -> None:
        self._buf.append(x)
        self._sum += x
        self._sq += x * x
        if len(self._buf) > self.size:
            old = self._buf.popleft()
            self._sum -= old
            self._sq -= old * old

    @property
    def n(self) -> int:
        return len(self._buf)

    def mean(self) -> float:
        return self._sum / len(self._buf) if self._buf else 0.0

    def var(self) -> float:
        n = len(self._buf)
        if n < 2:
            return 0.0
        m = self._sum / n
        return max(self._sq / n - m * m, 0.0)


class AnomalyLikelihood:
    """Turns a stream of raw scores into the probability that the recent raw scores are
    unusually high for this stream.

    A long window of raw scores gives their mean and spread; the mean of the last
    ``short`` raw scores is compared with it and the Gaussian upper tail is reported as
    ``1 - tail``. During the first ``learning`` scores the output is 0.5 (undecided).

    >>> lik = AnomalyLikelihood(learning=20, short=3)
    >>> outs = [lik.update(0.1 + 0.01 * (i % 3)) for i in range(100)]
    >>> outs[5], outs[99] < 0.99
    (0.5, True)
    >>> lik.update(0.9) > 0.999
    True
    """

    def __init__(self, learning: int = 300, history: int = 8640, short: int = 10,
                 min_std: float = 0.005) -> None:
        self.learning = learning
        self.history = history
        self.short = short
        self.min_std = min_std
        self._long = RollingStats(history)
        self._recent: deque[float] = deque(maxlen=short)
        self._seen = 0

    def peek(self, raw: float) -> float:
        """The likelihood ``update(raw)`` would return, without changing any state."""
        if self._seen + 1 <= self.learning:
            return 0.5
        recent = list(self._recent)[-(self.short - 1):] if self.short > 1 else []
        recent.append(raw)
        avg = sum(recent) / len(recent)
        std = max(math.sqrt(self._long.var()), self.min_std)
        return 1.0 - normal_sf((avg - self._long.mean()) / std)

    def update(self, raw: float) -> float:
        out = self.peek(raw)
        self._seen += 1
        self._recent.append(raw)
        self._long.add(raw)
        return out


class SensorDetector:
    """Sensor-series detector: prediction error against a rolling median and MAD (robust
    to outliers and flat or quantised data), turned into a calibrated likelihood.

    Use for any univariate numeric stream whose scale is unknown in advance; the output is
    comparable across streams, so one threshold serves all of them.

    >>> import random
    >>> rng = random.Random(1)
    >>> det = SensorDetector(seed=1)
    >>> for i in range(600):
    ...     x = 10 + rng.gauss(0, 1)
    ...     _ = det.score_one(x, float(i)); det.learn_one(x, float(i))
    >>> det.score_one(30.0, 600.0) > 0.99
    True
    """

    def __init__(self, window: int = 240, learning: int = 300, history: int = 8640,
                 short: int = 1, seed: int = 0) -> None:
        self.window = window
        self.learning = learning
        self.history = history
        self.short = short
        self.seed = seed  # no randomness enters; kept for the common contract
        self._win = RollingWindow(window)
        self._lik = AnomalyLikelihood(learning, history, short)

    def _raw(self, x: float) -> float:
        s = self._win.sorted
        n = len(s)
        if n < 5 or not math.isfinite(x):
            return 0.0
        med = s[n // 2]
        devs = sorted(abs(v - med) for v in s)
        mad = devs[n // 2]
        rng = s[-1] - s[0]
        scale = max(1.4826 * mad, 0.01 * rng, 1e-9)
        z = abs(x - med) / scale
        return 1.0 - math.exp(-z / 4.0)

    def score_one(self, x: float, t: float = 0.0) -> float:
        """Calibrated likelihood of ``x``; does not change the detector."""
        return self._lik.peek(self._raw(x))

    def learn_one(self, x: float, t: float = 0.0) -> None:
        self._lik.update(self._raw(x))
        self._win.add(x)
