"""Robust level baseline: rolling median and MAD of the last ``window`` observations."""

from __future__ import annotations

import bisect
import math
from array import array
from collections import deque
from typing import Literal

from .base import NO_SCORE, P_FLOOR, Score

_SQRT2 = math.sqrt(2.0)


class RollingWindow:
    """The last ``size`` finite values, also kept sorted (insertion and eviction by bisection).

    Pickled as the values in arrival order, packed as float64 (8 bytes each); the sorted
    copy is derived data and is rebuilt on unpickling.
    """

    __slots__ = ("_fifo", "size", "sorted")

    def __init__(self, size: int) -> None:
        self.size = size
        self._fifo: deque[float] = deque()
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._fifo)

    def add(self, x: float) -> None:
        if not math.isfinite(x):
            return
        fifo = self._fifo
        fifo.append(x)
        s = self.sorted
        bisect.insort(s, x)
        if len(fifo) > self.size:
            del s[bisect.bisect_left(s, fifo.popleft())]

    def values(self) -> list[float]:
        """The values in arrival order, oldest first."""
        return list(self._fifo)

    def __getstate__(self) -> tuple[int, bytes]:
        return self.size, array("d", self._fifo).tobytes()

    def __setstate__(self, state: tuple[int, bytes]) -> None:
        size, packed = state
        values = array("d")
        values.frombytes(packed)
        self.size = size
        self._fifo = deque(values)
        self.sorted = sorted(values)


def kth_deviation(s: list[float], center: float, k: int) -> tuple[float, float]:
    """The ``k``-th and ``(k+1)``-th smallest of ``|v - center|`` over the sorted list ``s``
    (1-based; ``1 <= k <= len(s)``, the second is ``inf`` when ``k == len(s)``), without
    building the deviations: the ``k`` values nearest ``center`` are a contiguous run of
    ``s``, found by bisection in O(log n). Equal, bit for bit, to sorting the deviations."""
    n = len(s)
    lo, hi = 0, n - k
    while lo < hi:  # first run start whose left end is no farther than the value after it
        mid = (lo + hi) // 2
        if center - s[mid] > s[mid + k] - center:
            lo = mid + 1
        else:
            hi = mid
    kth = max(abs(s[lo] - center), abs(s[lo + k - 1] - center))
    after = math.inf
    if lo > 0:
        after = abs(s[lo - 1] - center)
    if lo + k < n:
        after = min(after, abs(s[lo + k] - center))
    return kth, after


class RobustBaseline:
    """Rolling median / MAD baseline; anomaly score is the robust z-score's normal tail.

    Use for a level signal (sensor readings, prices) whose normal behaviour is stable over
    ``window`` observations. The scale never falls below ``rel_floor * |median|`` or
    ``abs_floor``, so flat or quantised series give finite scores.

    The window is kept sorted, so a score costs O(log window) (the median is read off, the
    MAD found by bisection) and an update one bisection-insert and one delete. Pickled, the
    state is the window in arrival order (8 bytes a value) and the parameters.

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

    def __getstate__(self) -> tuple[object, ...]:
        return (self.window, self.min_history, self.direction, self.rel_floor,
                self.abs_floor, self.seed, self._win)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        (self.window, self.min_history, self.direction, self.rel_floor, self.abs_floor,
         self.seed, self._win) = state  # type: ignore[assignment]

    @property
    def n(self) -> int:
        return len(self._win)

    def learn_one(self, x: float, t: float = 0.0) -> None:
        self._win.add(x)

    def expected(self) -> tuple[float, float]:
        """(median, robust scale) of the current window."""
        s = self._win.sorted
        n = len(s)
        mid = n // 2
        if n % 2:
            med = s[mid]
            mad, _ = kth_deviation(s, med, mid + 1)
        else:
            med = 0.5 * (s[mid - 1] + s[mid])
            lower, upper = kth_deviation(s, med, mid)
            mad = 0.5 * (lower + upper)
        scale = max(1.4826 * mad, self.rel_floor * abs(med), self.abs_floor)
        return med, scale

    def score_one(self, x: float, t: float = 0.0) -> Score:
        if not math.isfinite(x):
            return NO_SCORE
        if len(self._win.sorted) < self.min_history:
            return Score(x, math.nan, 1.0)
        med, scale = self.expected()
        z = (x - med) / scale
        direction = self.direction
        if direction == "up":
            p = max(0.5 * math.erfc(z / _SQRT2), P_FLOOR)  # normal_sf(z), inlined
        elif direction == "down":
            p = max(0.5 * math.erfc(-z / _SQRT2), P_FLOOR)
        else:
            p = min(max(0.5 * math.erfc(abs(z) / _SQRT2), P_FLOOR) * 2.0, 1.0)
        return Score(x, med, p)
