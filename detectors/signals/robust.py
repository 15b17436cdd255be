"""Robust level baseline: rolling median and MAD of the last ``window`` observations."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right as _bisect_right
from collections.abc import Sequence
from typing import Literal

from detectors.base import NO_SCORE, P_FLOOR, Score

_SQRT2 = math.sqrt(2.0)
_isfinite = math.isfinite


class RollingWindow:
    """The last ``size`` finite values, kept sorted (insertion and eviction by bisection).

    Memory: the values are held once, sorted, as packed float64 (``array('d')``, 8 bytes
    each), with a parallel array of their ring positions (arrival number modulo ``size``:
    one byte each for windows of up to 256 values) that tells where the oldest is. A value
    is inserted to the right of its equals and the oldest is evicted, so the sorted values
    are, bit for bit, those of a FIFO of the values plus a sorted copy.

    Pickled as the values in arrival order, packed as float64 (8 bytes each); the sorted
    array and ring positions are rebuilt on unpickling.
    """

    __slots__ = ("_next", "_slot", "size", "sorted")

    def __init__(self, size: int) -> None:
        self._clear(size)

    def _clear(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self.sorted: array[float] = array("d")
        # the ring position of each value of ``sorted``, position by position
        self._slot: bytearray | array[int] = (
            bytearray() if size <= 256 else array("H" if size <= 1 << 16 else "L"))
        self._next = 0  # ring position of the next value (and, once full, of the oldest)

    def __len__(self) -> int:
        return len(self.sorted)

    def add(self, x: float) -> None:
        if not _isfinite(x):
            return
        s = self.sorted
        slot = self._slot
        nxt = self._next
        if len(s) == self.size:  # full: evict the oldest first (then insert, as before)
            i = slot.index(nxt)
            del s[i]
            del slot[i]
            i = _bisect_right(s, x)
            s.insert(i, x)
            slot.insert(i, nxt)
            nxt += 1
            self._next = 0 if nxt == self.size else nxt
            return
        i = _bisect_right(s, x)
        s.insert(i, x)
        slot.insert(i, nxt)
        nxt += 1
        if nxt == self.size:  # full from now on: drop the spare room grown into
            self.sorted = array("d", s)
            self._slot = slot[:]
            nxt = 0
        self._next = nxt

    def values(self) -> list[float]:
        """The values in arrival order, oldest first."""
        s = self.sorted
        slot = self._slot
        n = len(s)
        start = self._next if n == self.size else 0
        order = sorted(range(n), key=lambda i: (slot[i] - start) % self.size)
        return [s[i] for i in order]

    def __getstate__(self) -> tuple[int, bytes]:
        return self.size, array("d", self.values()).tobytes()

    def __setstate__(self, state: tuple[int, bytes]) -> None:
        size, packed = state
        values = array("d")
        values.frombytes(packed)
        self._clear(size)
        for x in values:
            self.add(x)


def kth_deviation(s: Sequence[float], center: float, k: int) -> tuple[float, float]:
    """The ``k``-th and ``(k+1)``-th smallest of ``|v - center|`` over the sorted sequence ``s``
    (1-based; ``1 <= k <= len(s)``, the second is ``inf`` when ``k == len(s)``), without
    building the deviations: the ``k`` values nearest ``center`` are a contiguous run of
    ``s``, found by bisection in O(log n). Equal, bit for bit, to sorting the deviations."""
    kth, after, _ = _kth_deviation(s, center, k, 0)
    return kth, after


def _kth_deviation(s: Sequence[float], center: float, k: int, hint: int
                   ) -> tuple[float, float, int]:
    """:func:`kth_deviation` and the start of the run of the ``k`` values nearest
    ``center``, searched from ``hint`` (the last call's start: a window that moved by one
    value moves the run by at most a step or two). The start is the first ``m`` in
    ``[0, len(s) - k]`` at which ``center - s[m] > s[m + k] - center`` fails (or
    ``len(s) - k``); that test only turns from true to false as ``m`` grows (even rounded),
    so any search order finds the same start, hence the same values."""
    n = len(s)
    top = n - k
    lo, hi = 0, top  # the start is in [lo, hi]
    h = hint if hint < top else top
    if h < top and center - s[h] > s[h + k] - center:  # the start is after h
        lo = h + 1
        if lo < top and center - s[lo] > s[lo + k] - center:
            lo += 1
        else:
            hi = lo
    elif h > 0:  # the start is h or before
        if center - s[h - 1] > s[h - 1 + k] - center:
            lo = h
        hi = h if lo else h - 1
    else:
        hi = 0
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
    return kth, after, lo


class RobustBaseline:
    """Rolling median / MAD baseline; anomaly score is the robust z-score's normal tail.

    Use for a level signal (sensor readings, prices) whose normal behaviour is stable over
    ``window`` observations. The scale never falls below ``rel_floor * |median|`` or
    ``abs_floor``, so flat or quantised series give finite scores.

    The window is kept sorted, so a score costs O(log window) (the median is read off, the
    MAD found by bisection) and an update one bisection-insert and one delete. In memory
    the window is one packed sorted array (about 9 bytes a value, see
    :class:`RollingWindow`); pickled, the state is the window in arrival order (8 bytes a
    value) and the parameters.

    Event time ``t`` is accepted and not used (the window counts observations, not time).

    >>> det = RobustBaseline(window=50, min_history=10)
    >>> for i, x in enumerate([10.0, 10.5, 9.8, 10.2, 9.9, 10.1, 10.3, 9.7, 10.0, 10.4]):
    ...     det.learn_one(x, 60.0 * i)
    >>> det.explain_one(10.2, 600.0).p_value > 0.1
    True
    >>> s = det.explain_one(25.0, 600.0)
    >>> s.p_value < 1e-6, s.expected
    (True, 10.05)
    >>> det.score_one(25.0, 600.0) == 1.0 - s.p_value
    True
    """

    __slots__ = ("_hint", "_win", "abs_floor", "direction", "min_history", "rel_floor",
                 "seed", "window")

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
        self._hint = 0  # where the last MAD's run of nearest values started (a search hint)

    def __getstate__(self) -> tuple[object, ...]:
        return (self.window, self.min_history, self.direction, self.rel_floor,
                self.abs_floor, self.seed, self._win)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        (self.window, self.min_history, self.direction, self.rel_floor, self.abs_floor,
         self.seed, self._win) = state  # type: ignore[assignment]
        self._hint = 0

    @property
    def n(self) -> int:
        return len(self._win)

    def learn_one(self, x: float, t: float = 0.0) -> None:
        """Add ``x`` to the window (a non-finite ``x`` is ignored)."""
        self._win.add(x)

    def expected(self) -> tuple[float, float]:
        """(median, robust scale) of the current window."""
        s = self._win.sorted
        n = len(s)
        mid = n // 2
        if n % 2:
            med = s[mid]
            mad, _, self._hint = _kth_deviation(s, med, mid + 1, self._hint)
        else:
            med = 0.5 * (s[mid - 1] + s[mid])
            lower, upper, self._hint = _kth_deviation(s, med, mid, self._hint)
            mad = 0.5 * (lower + upper)
        scale = max(1.4826 * mad, self.rel_floor * abs(med), self.abs_floor)
        return med, scale

    def explain_one(self, x: float, t: float = 0.0) -> Score:
        """``x``, the window's median and the robust z-score's normal tail (``direction``:
        upper, lower or two-sided); p = 1 for a non-finite ``x`` and until ``min_history``
        values are learned."""
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

    def score_one(self, x: float, t: float = 0.0) -> float:
        """``1 - p`` of :meth:`explain_one`, in [0, 1]."""
        s = self.explain_one(x, t)
        return s.likelihood
