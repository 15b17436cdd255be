"""Failure-rate surge: the share of failed trials (e.g. failed inspections among all
inspections) per key, against a beta-binomial baseline, in event-time buckets."""

from __future__ import annotations

import math
from array import array
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, ClassVar, TypeAlias

from detectors.base import TINY_TERM, Score, betabinom_lower, betaln_scalar
from detectors.policy import fired
from detectors.signals.buckets import BucketedDetector, add_cell

#: one observation: ``(key, failed)``, one trial of ``key`` and whether it failed
#: (``failed`` None: no trial, a question only)
RateObs: TypeAlias = tuple[Hashable, bool | None]
#: what explain_one says about a trial it will not count, or before the warm-up
_NO_EVIDENCE = Score(0.0, 0.0, 1.0)


@dataclass(slots=True)
class _RateState:
    """One key's state (kept small: one per region)."""

    # the buckets not yet closed, in bucket order, packed in int64 triples: bucket, trials,
    # failures, bucket, ... (see ``open``)
    opened: array[int] = field(default_factory=lambda: array("q"))
    # the closed buckets with trials still in the guard band, oldest first, packed in int64
    # triples: bucket, trials, failures, bucket, ... (see ``recent``)
    closed: array[int] = field(default_factory=lambda: array("q"))
    n_sum: float = 0.0  # decayed trials in the baseline
    k_sum: float = 0.0  # decayed failures in the baseline
    fired: tuple[int, ...] = ()
    fired_windows: tuple[int, ...] = ()  # windows that fired (see buckets.KeyMarks)
    outlier_run: int = 0

    @property
    def open(self) -> dict[int, tuple[int, int]]:
        """(trials, failures) by bucket, of the buckets not yet closed."""
        it = iter(self.opened)
        return {b: (n, k) for b, n, k in zip(it, it, it, strict=True)}

    @property
    def recent(self) -> list[tuple[int, int, int]]:
        """(bucket, trials, failures) of the closed buckets in the guard band, oldest
        first."""
        it = iter(self.closed)
        return list(zip(it, it, it, strict=True))

    def copy(self) -> _RateState:
        return _RateState(array("q", self.opened), array("q", self.closed), self.n_sum,
                          self.k_sum, self.fired, self.fired_windows, self.outlier_run)

    # pickled as plain values (small ints pickle in 2 to 5 bytes, an array's in 8)
    def __getstate__(self) -> tuple[Any, ...]:
        return (tuple(self.opened), tuple(self.closed), self.n_sum, self.k_sum, self.fired,
                self.fired_windows, self.outlier_run)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (opened, closed, self.n_sum, self.k_sum, self.fired, self.fired_windows,
         self.outlier_run) = state
        self.opened = array("q", opened)
        self.closed = array("q", closed)


@dataclass(slots=True)
class _Windows:
    """The scoring windows of one key ending at ``bucket`` and the state of their tails
    (see ``RateSurge._tail``); a cache, valid until the next bucket closes or a late trial
    lands in one of the windows' other buckets."""

    bucket: int
    a: float  # the key's Beta baseline
    b: float
    lb: float  # betaln(a, b)
    rate: float  # a / (a + b)
    ab: float  # a + b
    # trials and failures in ``bucket`` (0 if it is closed: they are in the bases then);
    # learn_one keeps them up to date
    here_n: int
    here_k: int
    # per scale, a list: [0] trials and [1] failures in the window's other buckets (the
    # base of its tail's recurrences); [2] j = max(base failures, 1) - 1; [3] m, [4]
    # P(X_m <= j) and [5] P(X_m = j) for X_m ~ BetaBinomial(m, a, b), carried from
    # m = base trials up (m = -1: not started); [6] trials, [7] failures and [8] p at the
    # window's last evaluation (trials -1: none); [9] a + j and [10] b - j
    wins: list[list[Any]]
    best: int  # the window that won the last evaluation


#: a window is left out of a score only if its p (which cannot have fallen since) was above
#: the best so far by more than this, far above the rounding of the tails (~1e-13)
_SKIP_MARGIN = 1e-9


class RateSurge(BucketedDetector[_RateState]):
    """Are more trials failing than usual for this key?

    Use it when a count alone misleads because the number of trials moves: inspectors
    visit more shops after complaints, so more failures are expected even when nothing is
    wrong. The baseline failure rate of a key is a decayed Beta posterior: its own
    decayed trials and failures plus a prior worth ``prior_trials`` trials at the rate
    pooled over all keys. The observed failures among the trials of the last 1, 6, 12 and
    24 buckets are scored with the beta-binomial upper tail (which carries the baseline's
    own uncertainty), and the smallest p-value, Bonferroni corrected, is reported.
    Buckets close in event time (the watermark: :meth:`advance`, or the latest ``t``
    learned) and join the baseline only
    once they have left the longest scoring window (a guard band, as in Farrington's
    method), and never if they were inside a window that fired (unless the key has been
    firing for ``hold_buckets`` in a row: then the high rate is the new normal).

    An observation is ``(key, failed)``, one trial (see the contract in
    :mod:`detectors.base`; ``(key, None)`` is no trial, a question about the windows as
    they stand). :meth:`explain_one` scores the windows with that trial counted, as if the
    watermark had reached ``t`` (``p = 1`` until ``warmup_trials`` trials have joined the
    baseline); :meth:`learn_one` moves the watermark to ``t``, counts the trial and, for a
    failed one, marks the bucket fired when the failures make a finding
    (:func:`detectors.policy.fired`). A trial of a closed bucket is not counted
    (:meth:`accepts`, ``late_events``).

    >>> det = RateSurge(bucket_s=3600)
    >>> t0 = 1_700_000_000.0
    >>> for h in range(48):                       # 10 inspections an hour, 1 fails
    ...     for i in range(10):
    ...         det.learn_one(("harbour", i == 0), t0 + h * 3600 + i)
    >>> det.explain_one(("harbour", True), t0 + 47 * 3600 + 10).p_value > 0.05
    True
    >>> for i in range(9):                         # then 6 of 10 fail
    ...     det.learn_one(("harbour", i < 5), t0 + 48 * 3600 + i)
    >>> s = det.explain_one(("harbour", True), t0 + 48 * 3600 + 9)
    >>> s.observed, s.p_value < 1e-3
    (6.0, True)
    >>> det.score_one(("harbour", True), t0 + 48 * 3600 + 9) == 1.0 - s.p_value
    True
    """

    def __init__(
        self,
        bucket_s: float = 3600.0,
        scales: Sequence[int] = (1, 6, 12, 24),
        half_life_buckets: float = 168.0,
        prior_trials: float = 100.0,
        prior_rate: float = 0.05,
        lateness_s: float = 1800.0,
        hold_buckets: int = 48,
        warmup_trials: float = 50.0,
        seed: int = 0,
    ) -> None:
        if bucket_s <= 0 or not scales or min(scales) < 1:
            raise ValueError("bucket_s must be > 0 and scales >= 1")
        if not 0.0 < prior_rate < 1.0 or prior_trials <= 0:
            raise ValueError("prior_rate must be in (0, 1) and prior_trials > 0")
        self.bucket_s = bucket_s
        self.scales = tuple(sorted(scales))
        self.half_life_buckets = half_life_buckets
        self.prior_trials = prior_trials
        self.prior_rate = prior_rate
        self.lateness_s = lateness_s
        self.hold_buckets = hold_buckets
        self.warmup_trials = warmup_trials
        self.seed = seed  # no randomness enters; accepted for the common contract
        self._decay = 0.5 ** (1.0 / half_life_buckets)
        self._keys: dict[Hashable, _RateState] = {}
        self._closed_through: int | None = None
        self._pool_n = 0.0
        self._pool_k = 0.0
        self.late_events = 0
        self._reset_transient()

    # caches derived from the state, valid until the next bucket closes (not pickled)
    _transient: ClassVar[tuple[str, ...]] = ("_windows_cache", "_baseline_cache", "_orders",
                                              "_memo")

    def _reset_transient(self) -> None:
        self._windows_cache: dict[Hashable, _Windows] = {}
        # the last explain_one: (key, t, failed, its Score, the copy advanced to t or
        # None), for the learn_one of the same trial (the counts after it are what it
        # judged, the copy the state it moves to); dropped by any change
        self._memo: tuple[Hashable, float, bool, Score, RateSurge | None] | None = None
        # per key until the next bucket closes: a, b, betaln(a, b) and the trials and
        # failures of the closed buckets by age
        self._baseline_cache: dict[
            Hashable, tuple[float, float, float, list[int], list[int]]] = {}
        # the order of evaluation of the windows when window i won last time: i first
        size = len(self.scales)
        self._orders = [[i, *(x for x in range(size) if x != i)] for i in range(size)]

    def _fork(self) -> RateSurge:
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__getstate__())
        twin._keys = {k: st.copy() for k, st in self._keys.items()}
        twin._reset_transient()
        return twin

    # -- baseline -------------------------------------------------------------------------
    def _beta(self, st: _RateState) -> tuple[float, float]:
        pooled = (self._pool_k + self.prior_rate * self.prior_trials) / (
            self._pool_n + self.prior_trials)
        a0 = pooled * self.prior_trials
        b0 = (1.0 - pooled) * self.prior_trials
        return a0 + st.k_sum, b0 + (st.n_sum - st.k_sum)

    def advance(self, watermark: float) -> None:
        """Close every bucket that ended ``lateness_s`` or more before ``watermark``."""
        last = math.floor((watermark - self.lateness_s) / self.bucket_s) - 1
        closed = self._closed_through
        if closed is not None and last <= closed:
            return
        self._closed_through = last
        d = self._decay
        guard = max(self.scales)
        for st in self._keys.values():
            done = st.closed
            opened = st.opened
            while opened and opened[0] <= last:  # (in bucket order)
                b = opened[0]
                n = opened[1]
                k = opened[2]
                del opened[:3]
                if st.fired:
                    self.unfire(st, b)
                done.append(b)
                done.append(n)
                done.append(k)
            while done and done[0] <= last - guard:
                b = done[0]
                n = done[1]
                k = done[2]
                del done[:3]
                excluded = bool(st.fired_windows) and self.in_fired_window(st, b)
                if excluded and st.outlier_run < self.hold_buckets:
                    st.outlier_run += 1
                else:
                    st.outlier_run = st.outlier_run + 1 if excluded else 0
                    st.n_sum = st.n_sum * d + n
                    st.k_sum = st.k_sum * d + k
                    self._pool_n = self._pool_n * d + n
                    self._pool_k = self._pool_k * d + k
            # no bucket still to join the baseline is older than the guard band: forget the
            # fired windows that end before it (also those of buckets that never had a
            # trial, which never pass through ``closed``), so the marks stay bounded
            if st.fired_windows:
                self.forget_fired_windows(st, last - guard)
        self._windows_cache.clear()
        self._baseline_cache.clear()
        self._memo = None

    # -- contract -------------------------------------------------------------------------
    def accepts(self, x: RateObs, t: float) -> bool:
        """Whether :meth:`learn_one` will count the trial ``x`` at ``t``: its bucket is
        still open (and ``t`` finite)."""
        if not -math.inf < t < math.inf:
            return False
        closed = self._closed_through
        return closed is None or math.floor(t / self.bucket_s) > closed

    def explain_one(self, x: RateObs, t: float) -> Score:
        """Failures among trials in the windows ending at ``t``'s bucket with the trial
        ``x = (key, failed)`` counted (none for ``failed`` None), as if the watermark had
        reached ``t`` (observed and expected are failure counts of the winning window).
        Changes no state."""
        key, failed = x
        if not self.accepts(x, t):
            return _NO_EVIDENCE
        det = self._at(t)
        if failed is None:
            return det._score(key, t, 0, 0)
        fail = bool(failed)
        s = det._score(key, t, 1, int(fail))
        self._memo = (key, t, fail, s, None if det is self else det)
        return s

    def score_one(self, x: RateObs, t: float) -> float:
        """``1 - p`` of :meth:`explain_one`, in [0, 1]."""
        return self.explain_one(x, t).likelihood

    def learn_one(self, x: RateObs, t: float) -> None:
        """Move the watermark to ``t``, count the trial ``x = (key, failed)`` (unless its
        bucket has closed: then ``late_events`` counts it; ``failed`` None: no trial) and,
        if it failed, mark the bucket fired when the failures now make a finding
        (:func:`detectors.policy.fired`)."""
        key, failed = x
        memo, self._memo = self._memo, None
        if not -math.inf < t < math.inf:
            self.late_events += failed is not None
            return None
        # explain_one judged exactly these trials: its answer (and the copy it advanced)
        hit = (memo if memo is not None and failed is not None
               and memo[:3] == (key, t, bool(failed)) else None)
        if hit is not None and hit[4] is not None:  # take the copy's state: advanced to t
            self.__dict__.update(hit[4].__dict__)
        else:
            self.advance(t)
        if failed is None:
            return None
        fail = bool(failed)
        if not self._count(key, t, fail) or not fail:
            return None
        s = hit[3] if hit is not None else self._score(key, t, 0, 0)
        if fired(s.p_value, s.observed):
            self.mark_fired(key, t)
        return None

    def _count(self, key: Hashable, t: float, failed: bool) -> bool:
        """Count one trial of ``key`` at event time ``t``. False if it came too late
        (counted in ``late_events``)."""
        self._memo = None
        b = math.floor(t / self.bucket_s)
        closed = self._closed_through
        if closed is not None and b <= closed:
            self.late_events += 1
            return False
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = _RateState()
        fail = int(failed)
        opened = st.opened
        i = len(opened) - 3
        if i >= 0 and opened[i] == b:  # the newest open bucket: the usual case
            opened[i + 1] += 1
            opened[i + 2] += fail
        elif i < 0 or opened[i] < b:  # a new newest one
            opened.append(b)
            opened.append(1)
            opened.append(fail)
        else:
            i = add_cell(opened, b, 3)
            opened[i + 1] += 1
            opened[i + 2] += fail
        win = self._windows_cache.get(key)
        if win is not None:
            if b == win.bucket:  # keep the cached counts up to date
                win.here_n += 1
                win.here_k += fail
            elif 0 < win.bucket - b < self.scales[-1]:  # a late trial: the base moved
                del self._windows_cache[key]
        return True

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
        here_n = here_k = 0
        opened = st.opened
        size = len(opened)
        if size == 3 and opened[0] == b:  # b is the only open bucket: the usual case
            here_n = opened[1]
            here_k = opened[2]
        else:
            for i in range(0, size, 3):
                age = b - opened[i]
                if age == 0:
                    here_n = opened[i + 1]
                    here_k = opened[i + 2]
                elif 0 < age < longest:
                    n_by_age[age] = opened[i + 1]
                    k_by_age[age] = opened[i + 2]
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
                     min(1.0, best_p * len(wins)))


__all__ = ["RateSurge"]
