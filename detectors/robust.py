"""Robust level baseline: rolling median and MAD of the last ``window`` observations."""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Literal

from .base import NO_SCORE, Score, normal_sf


class RollingWindow:
    """The last ``size`` finite values, also kept sorted (median and MAD in O(size))."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._fifo: deque[float] = deque()
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._fifo)

    def add(self, x: float) -> None:
        if not math.isfinite(x):
            return
        self._fifo.append(x)
        bisect.insort(self.sorted, x)
        if len(self._fifo) > self.size:
            old = self._fifo.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]


class RobustBaseline:
    """Rolling median / MAD baseline; anomaly score is the robust z-score's normal tail.

    Use for a level signal (sensor readings, prices) whose normal behaviour is stable over
    ``window`` observations. The scale never falls below ``rel_floor * |median|`` or
    ``abs_floor``, so flat or quantised series give finite scores.

    >>> det = RobustBaseline(window=50, min_history=10)
    >>> for x in [10.0, 10.5, 9.8, 10.2, 9.9, 10.1, 10.3, 9.7, 10.0, 10.4, 10.1]:
    ...     det.learn_one(x)
    >>> det.score_one(10.2).p_value > 0.1
    True
    >>> det.score_one(25.0).p_value < 1e-6
    True
    """

    def __init__(
        self,
        window: int = 96,
        min_history: int = 12,
        direction: Literal["up", "down", "both"] = "up",
        rel_floor: float = 0.02,
        abs_floor: float = 1e-6,
        seed: int = 0,
    ) -> None:
        if window < 3 or min_history < 3 or min_history > window:
            raise ValueError("need 3 <= min_history <= window")
        self.window = window
        self.min_history = min_history
        self.direction = direction
        self.rel_floor = rel_floor
        self.abs_floor = abs_floor
        self.seed = seed  # no randomness enters; accepted for the common contract
        self._win = RollingWindow(window)

    @property
    def n(self) -> int:
        return len(self._win)

    def learn_one(self, x: float, t: float = 0.0) -> None:
        self._win.add(x)

    def _median(self) -> float:
        s = self._win.sorted
        n = len(s)
        mid = n // 2
        return s[mid] if n % 2 else 0.5 * (s[mid - 1] + s[mid])

    def expected(self) -> tuple[float, float]:
        """(median, robust scale) of the current window."""
        med = self._median()
        devs = sorted(abs(v - med) for v in self._win.sorted)
        n = len(devs)
        mad = devs[n // 2] if n % 2 else 0.5 * (devs[n // 2 - 1] + devs[n // 2])
        scale = max(1.4826 * mad, self.rel_floor * abs(med), self.abs_floor)
        return med, scale

    def score_one(self, x: float, t: float = 0.0) -> Score:
        if len(self._win) < self.min_history or not math.isfinite(x):
            return NO_SCORE if not math.isfinite(x) else Score(x, math.nan, 1.0)
        med, scale = self.expected()
        z = (x - med) / scale
        if self.direction == "down":
            z = -z
        elif self.direction == "both":
            z = abs(z)
        p = normal_sf(z) * (2.0 if self.direction == "both" else 1.0)
        return Score(x, med, min(p, 1.0))
