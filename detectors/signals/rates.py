"""Failure-rate surge: the share of failed trials (e.g. failed inspections among all
inspections) per key, against a beta-binomial baseline, in event-time buckets.

The detector is :class:`RateSurge`; a key's state is in :mod:`.rate_keys`, the baseline
and the tails of the scoring windows in :mod:`.rate_tails`."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import ClassVar, TypeAlias

from detectors.base import Score
from detectors.policy import fired
from detectors.signals.buckets import add_cell
from detectors.signals.rate_keys import _RateState, _Windows
from detectors.signals.rate_tails import _NO_EVIDENCE, RateTails

#: one observation: ``(key, failed)``, one trial of ``key`` and whether it failed
#: (``failed`` None: no trial, a question only)
RateObs: TypeAlias = tuple[Hashable, bool | None]


class RateSurge(RateTails):
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
        self._check_buckets(bucket_s, scales)
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

    # -- baseline -------------------------------------------------------------------------
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
        self._catch_up(None if hit is None else hit[4], t)
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


__all__ = ["RateSurge"]
