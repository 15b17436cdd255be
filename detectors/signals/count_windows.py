"""The window arithmetic of :class:`~detectors.signals.counts.CountSurge`: a key's events,
expectations and dispersion over the windows ending at a bucket (cached until the next
bucket closes), and the tail probability of the counts in them."""

from __future__ import annotations

import math
from collections.abc import Hashable
from itertools import accumulate

from scipy.special import cython_special

from detectors.base import P_FLOOR, Score, gammainc_scalar
from detectors.signals.buckets import find_cell, spread_open
from detectors.signals.count_baseline import CountBaseline
from detectors.signals.count_keys import _KeyState, _Windows

#: what explain_one says about an observation it will not count
_NOT_COUNTED = Score(0.0, 0.0, 1.0)
#: the regularised incomplete beta function of scalars (a negative binomial's tail)
_betainc = cython_special.betainc


class CountWindows(CountBaseline):
    """The scoring half of :class:`~detectors.signals.counts.CountSurge`: the windows
    ending at a bucket, over the baseline of :class:`CountBaseline`."""

    def _windows(self, st: _KeyState, b: int) -> _Windows:
        """Events, expectations and dispersion of the windows ending at bucket ``b``,
        computed as :meth:`_expected_one` and :meth:`_phis` do (the same sums in the same
        order, so the same values)."""
        shapes = self._shapes
        if shapes is None:
            shapes = self._shapes = self._shape_table()
        level = self._level(st)
        scales = self.scales
        longest = scales[-1]
        slots = self._back.get(b)  # the shapes of b, b - 1, ..., b - longest + 1
        if slots is None:
            slots = self._back[b] = [shapes[self._slot(b - i)] for i in range(longest)]
        # max(level * shape, floor), as _expected_one takes it
        floor = self.min_expected
        each = [floor if floor > (x := level * sh) else x for sh in slots]
        expected = [sum(each[:w]) for w in scales]
        by_age = [0] * longest  # events by bucket, newest (``b``) first
        closed = st.closed
        m = len(closed) // 2
        lag = b - closed[-2] if m else 0  # the age of the newest closed bucket
        if m and lag >= 0 and closed[-2] - closed[0] == m - 1:
            # consecutive buckets (the rule, as every bucket closes in turn): their counts,
            # newest first, are those of ages lag, lag + 1, ...
            if lag < longest:
                by_age[lag:lag + m] = closed[-1::-2].tolist()[:longest - lag]
        else:
            it = iter(closed)
            for bb, c in zip(it, it, strict=False):  # (pairs: strict is slower here)
                age = b - bb
                if 0 <= age < longest:
                    by_age[age] = c
        closed_here = by_age[0]
        (here,) = spread_open(st.opened, b, longest, [by_age])
        cum = list(accumulate(by_age))
        phi = max(self._phi(st), 1.0)
        scaled = [0.0 if e <= 0 else e / phi for e in expected]
        # counts / phi as a negative binomial of mean m = e / phi and size r = 1 / alpha
        # (variance m + alpha m^2, so counts have phi e + alpha e^2): P(X >= c) is
        # I_q(c, r), q = m / (m + r), continuous in c as the quasi-Poisson tail is
        sizes = [0.0 if a <= 0.0 or m <= 0.0 else 1.0 / a
                 for a, m in zip(self._alphas(st), scaled, strict=True)]
        probs = [m / (m + r) if r > 0.0 else 0.0 for m, r in zip(scaled, sizes, strict=True)]
        return _Windows(b, [cum[w - 1] for w in scales], here, closed_here, expected,
                        scaled, each[0], phi, sizes, probs)

    def _score(self, key: Hashable, t: float, n: int) -> Score:
        """Tail probability of the counts in the windows ending at ``t``'s bucket, ``n``
        events of ``key`` added to that bucket; the watermark as it is."""
        st = self._keys.get(key)
        known = st is not None
        if st is None:
            if not n:
                return _NOT_COUNTED
            st = self._new_state(t)  # (not kept: nothing is learned)
        b = math.floor(t / self.bucket_s)
        win = self._windows_cache.get(key) if known else None
        if win is None or win.bucket != b:  # (a cached entry implies warmed up)
            if not self.warmed_up():
                i = find_cell(st.opened, b, 2)
                if i >= 0:
                    here = st.opened[i + 1]
                else:
                    here = next((c for bb, c in st.recent if bb == b), 0)
                return Score(float(here + n), math.nan, 1.0)
            win = self._windows(st, b)
            if known:
                self._windows_cache[key] = win
        # quasi_poisson_sf(count, expected, phi) per window, inlined (a wide window with a
        # learned alpha: the negative binomial over it); the smallest p wins (the first of
        # equals), p floored at P_FLOOR
        others = win.others
        here = win.here + n
        phi = win.phi
        scaled = win.scaled
        sizes = win.sizes
        best_p = 1.0
        best = -1
        for i in range(len(others)):
            count = others[i] + here
            if count > 0:  # else P(X >= 0) = 1: never the smallest
                # (a window expecting nothing has scaled 0: gammainc(a, 0) = 0, floored)
                r = sizes[i]
                if r > 0.0:  # the negative binomial of a wide window (see _windows)
                    p = _betainc(count / phi, r, win.probs[i])
                else:
                    p = gammainc_scalar(count / phi, scaled[i])
                if p < best_p:
                    if p < P_FLOOR:
                        p = P_FLOOR
                    if p < best_p:
                        best_p = p
                        best = i
        p_value = min(1.0, best_p * len(others))
        if best < 0:
            return Score(float(win.closed_here + here), win.expected_here, p_value,
                         self.bucket_s)
        return Score(float(others[best] + here), win.expected[best], p_value,
                     self.scales[best] * self.bucket_s)


__all__ = ["CountWindows"]
