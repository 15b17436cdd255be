"""The tails of :class:`~detectors.signals.rates.RateSurge`: each key's Beta baseline,
the trials and failures of the windows ending at a bucket (cached until the next bucket
closes), and the beta-binomial upper tail of the failures in them, carried along a fixed
path so that a trial more costs one step."""

from __future__ import annotations

import math
from collections.abc import Hashable
from itertools import accumulate
from typing import Any

from detectors.base import TINY_TERM, Score, betabinom_lower, betaln_scalar
from detectors.signals.buckets import BucketedDetector, spread_open
from detectors.signals.rate_keys import _RateState, _Windows

#: what explain_one says about a trial it will not count, or before the warm-up
_NO_EVIDENCE = Score(0.0, 0.0, 1.0)
#: a window is left out of a score only if its p (which cannot have fallen since) was above
#: the best so far by more than this, far above the rounding of the tails (~1e-13)
_SKIP_MARGIN = 1e-9


class RateTails(BucketedDetector[_RateState]):
    """The scoring half of :class:`~detectors.signals.rates.RateSurge` (which sets these
    attributes): the Beta baseline of a key and the tails of its windows."""

    prior_trials: float
    prior_rate: float
    warmup_trials: float
    _pool_n: float
    _pool_k: float
    # caches (see RateSurge._reset_transient)
    _windows_cache: dict[Hashable, _Windows]
    _baseline_cache: dict[Hashable, tuple[float, float, float, list[int], list[int]]]
    _orders: list[list[int]]

    def _beta(self, st: _RateState) -> tuple[float, float]:
        pooled = (self._pool_k + self.prior_rate * self.prior_trials) / (
            self._pool_n + self.prior_trials)
        a0 = pooled * self.prior_trials
        b0 = (1.0 - pooled) * self.prior_trials
        return a0 + st.k_sum, b0 + (st.n_sum - st.k_sum)

    def _closed_by_age(self, st: _RateState, newest: int) -> tuple[list[int], list[int]]:
        """Trials and failures of the closed buckets ``newest``, ``newest - 1``, ... (the
        longest window's worth)."""
        longest = self.scales[-1]
        n_by_age = [0] * longest
        k_by_age = [0] * longest
        it = iter(st.closed)
        for bb, n, k in zip(it, it, it, strict=False):  # (triples: strict is slower here)
            age = newest - bb
            if 0 <= age < longest:
                n_by_age[age] = n
                k_by_age[age] = k
        return n_by_age, k_by_age

    def _windows(self, key: Hashable, st: _RateState, b: int, best: int,
                 cache: bool = True) -> _Windows:
        """Trials and failures of the windows ending at bucket ``b`` and the key's Beta
        baseline (kept in ``_baseline_cache`` if ``cache``)."""
        scales = self.scales
        longest = scales[-1]
        ct = self._closed_through
        if ct is not None and b > ct and cache:
            lag = b - ct
            # the closed buckets and the baseline are the same for every bucket until the
            # next one closes: kept per key (bucket b - lag is the newest closed one)
            base = self._baseline_cache.get(key)
            if base is None:
                a, b_ = self._beta(st)
                base = self._baseline_cache[key] = (
                    a, b_, betaln_scalar(a, b_), *self._closed_by_age(st, ct))
            a, b_, lb, closed_n, closed_k = base
            n_by_age = ([0] * lag + closed_n)[:longest]
            k_by_age = ([0] * lag + closed_k)[:longest]
        else:
            a, b_ = self._beta(st)
            lb = betaln_scalar(a, b_)
            n_by_age, k_by_age = self._closed_by_age(st, b)
        here_n, here_k = spread_open(st.opened, b, longest, [n_by_age, k_by_age])
        cum_n = list(accumulate(n_by_age))
        cum_k = list(accumulate(k_by_age))
        wins = []
        for w in scales:
            k = cum_k[w - 1]
            j = k - 1 if k else 0
            wins.append([cum_n[w - 1], k, j, -1, 0.0, 0.0, -1, 0, 1.0, a + j, b_ - j])
        return _Windows(b, a, b_, lb, a / (a + b_), a + b_, here_n, here_k, wins, best)

    def _tail(self, win: _Windows, w: list[Any], n: int, k: int) -> float:
        """P(X >= k), X ~ BetaBinomial(n, a, b), for the window ``w`` of ``win``
        (``1 <= k <= n``, ``n`` at least the window's base trials).

        ``betabinom.sf(k - 1, n, a, b)`` as scipy computes it (one minus the sum of the
        pmf below k, clipped to [0, 1]), to scipy's rounding; but the sum is carried along
        a fixed path from the window's trials and failures outside its last bucket, so
        that the value depends on (n, k) and the state only, never on the calls before:
        the sum up to j = max(those failures, 1) - 1 is taken directly at m = those
        trials, moved up to n trials one trial at a time (with j failures among m trials,
        the next one fails with probability (a + j) / (a + b + m): the Polya urn), then up
        to k - 1 failures one term at a time. The first two legs are kept until a bucket
        closes: a trial more adds one step.
        """
        a = win.a
        b = win.b
        j = w[2]
        m = w[3]
        if m == n:
            lower = w[4]
            pmf = w[5]
        else:
            if m < 0 or m > n:
                m = w[0]
                lower, pmf = betabinom_lower(j + 1, m, a, b, win.lb)
                if pmf < TINY_TERM:
                    pmf = 0.0  # too small to carry: this window's tails are taken directly
            else:
                lower = w[4]
                pmf = w[5]
            ab = win.ab
            aj = w[9]
            bj = w[10]
            while m < n:  # (score_one takes the one step of a new trial itself, the same way)
                lower -= pmf * aj / (ab + m)
                pmf *= (m + 1) / (m + 1 - j) * (m + bj) / (m + ab)
                m += 1
            w[3] = m
            w[4] = lower
            w[5] = pmf
        if pmf < TINY_TERM:
            lower, _ = betabinom_lower(k, n, a, b, win.lb)
        elif j < k - 1:
            nb = n - 1 + b
            for jj in range(j, k - 1):
                pmf *= (n - jj) / (jj + 1) * (jj + a) / (nb - jj)
                lower += pmf
        p: float = 1.0 - lower
        return 0.0 if p < 0.0 else 1.0 if p > 1.0 else p

    def _score(self, key: Hashable, t: float, add_n: int, add_k: int) -> Score:
        """Failures among trials in the windows ending at ``t``'s bucket, ``add_n`` trials
        with ``add_k`` failures added to that bucket; the watermark as it is (observed
        and expected are failure counts)."""
        if self._pool_n < self.warmup_trials:
            return _NO_EVIDENCE
        st = self._keys.get(key)
        known = st is not None
        if st is None:
            if not add_n:
                return _NO_EVIDENCE
            st = _RateState()  # (not kept: nothing is learned)
        b = math.floor(t / self.bucket_s)
        win = self._windows_cache.get(key) if known else None
        if win is None or win.bucket != b:
            win = self._windows(key, st, b, 0 if win is None else win.best, cache=known)
            if known:
                self._windows_cache[key] = win
        here_n = win.here_n + add_n
        here_k = win.here_k + add_k
        wins = win.wins
        # The smallest p wins, the first (shortest window) of equals. The window that won
        # last time goes first. A window whose failures are as at its last evaluation has
        # only gained trials since (X_{n+1} >= X_n: its p cannot have fallen): if its p was
        # above the best so far by more than _SKIP_MARGIN then, it cannot win now.
        best_p = 1.0
        best = -1
        for i in self._orders[win.best]:
            w = wins[i]
            k = w[1] + here_k
            if not k:  # (no trials: no failures either)
                continue
            n = w[0] + here_n
            if k == w[7] and n >= w[6] and best >= 0 and w[8] > best_p + _SKIP_MARGIN:
                continue
            m = w[3]
            if m == n - 1 and k - 1 == w[2] and w[5] >= TINY_TERM:
                # one trial more, no failure beyond the base's: _tail's one step, inlined
                pmf = w[5]
                ab = win.ab
                lower = w[4] - pmf * w[9] / (ab + m)
                w[5] = pmf * (n / (n - w[2]) * (m + w[10]) / (m + ab))
                w[4] = lower
                w[3] = n
                p = 1.0 - lower
                p = 0.0 if p < 0.0 else 1.0 if p > 1.0 else p
            else:
                p = self._tail(win, w, n, k)
            w[6] = n
            w[7] = k
            w[8] = p
            if p < best_p or (p == best_p and i < best):
                best_p = p
                best = i
        if best < 0:
            return Score(0.0, 0.0, 1.0)
        win.best = best
        w = wins[best]
        return Score(float(w[1] + here_k), (w[0] + here_n) * win.rate,
                     min(1.0, best_p * len(wins)), self.scales[best] * self.bucket_s)


__all__ = ["RateTails"]
