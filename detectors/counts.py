"""Count surge detector: events per key per event-time bucket against a seasonal,
over-dispersed baseline (in the spirit of CDC EARS / Farrington)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from .base import Score, quasi_poisson_sf
from .buckets import BucketedDetector

PHI_PRIOR = 1.2
PHI_PRIOR_WEIGHT = 3.0
SHAPE_PRIOR_EVENTS = 5.0


@dataclass(slots=True)
class _KeyState:
    first_bucket: int
    closed_through: int  # last closed bucket index
    open: dict[int, int] = field(default_factory=dict)
    recent: deque[tuple[int, int]] = field(default_factory=deque)  # (bucket, count), closed
    level_sum: float = 0.0  # decayed sum of de-seasonalised counts
    level_n: float = 0.0  # decayed number of buckets
    disp_sum: float = 0.0  # decayed sum of (count - expected)^2
    disp_n: float = 0.0  # decayed sum of expected
    fired: set[int] = field(default_factory=set)
    excluded: set[int] = field(default_factory=set)  # buckets inside a window that fired
    outlier_run: int = 0


class CountSurge(BucketedDetector[_KeyState]):
    """Events per key per bucket (default one hour of event time) versus a baseline.

    Baseline per key: a decayed mean of its de-seasonalised counts, shrunk towards the
    pooled mean of all keys (so a rare key has a sensible expectation), times an
    hour-of-day shape pooled over all keys. Dispersion ``phi`` (variance / mean) is
    estimated per key, at least 1. The tail p-value of the counts in the last 1, 3, 6
    and 12 buckets is taken under a quasi-Poisson; the smallest, Bonferroni
    corrected, is reported. A bucket joins the baseline only after it has left the longest
    window (a guard band), and not at all if a window holding it fired.

    Buckets close in event time: :meth:`advance` with a watermark closes every bucket
    that ended more than ``lateness_s`` before it, for every key (zero counts included).

    >>> det = CountSurge(bucket_s=3600, warmup_buckets=24)
    >>> t0 = 1_700_000_000 - 1_700_000_000 % 86400
    >>> for h in range(72):
    ...     det.advance(t0 + h * 3600)
    ...     _ = det.learn_one("odor", t0 + h * 3600 + 60)
    >>> det.score_one("odor", t0 + 72 * 3600).p_value > 0.1
    True
    >>> for i in range(8):
    ...     _ = det.learn_one("odor", t0 + 72 * 3600 + 60 * i)
    >>> det.score_one("odor", t0 + 72 * 3600).p_value < 1e-4
    True
    """

    def __init__(
        self,
        bucket_s: float = 3600.0,
        scales: Sequence[int] = (1, 3, 6, 12),
        half_life_buckets: float = 72.0,
        prior_buckets: float = 24.0,
        warmup_buckets: int = 24,
        lateness_s: float = 1800.0,
        min_expected: float = 0.005,
        max_phi: float = 10.0,
        seasonal_period: int = 24,
        hold_buckets: int = 48,
        seed: int = 0,
    ) -> None:
        if bucket_s <= 0 or not scales or min(scales) < 1:
            raise ValueError("bucket_s must be > 0 and scales >= 1")
        self.seed = seed  # no randomness enters; accepted for the common contract
        self.bucket_s = bucket_s
        self.scales = tuple(sorted(scales))
        self.half_life_buckets = half_life_buckets
        self.prior_buckets = prior_buckets
        self.warmup_buckets = warmup_buckets
        self.lateness_s = lateness_s
        self.min_expected = min_expected
        self.max_phi = max_phi
        self.seasonal_period = seasonal_period
        self.hold_buckets = hold_buckets
        self._decay = 0.5 ** (1.0 / half_life_buckets)
        self._keys: dict[Hashable, _KeyState] = {}
        self._start_bucket: int | None = None
        self._closed_through: int | None = None
        # pooled hour-of-day shape (decayed sums of counts and of buckets per slot)
        self._slot_sum = [0.0] * seasonal_period
        self._slot_n = [0.0] * seasonal_period
        self._pool_sum = 0.0
        self._pool_n = 0.0
        self.late_events = 0

    # -- time -------------------------------------------------------------------------

    def _slot(self, bucket: int) -> int:
        return bucket % self.seasonal_period

    def _shape(self, bucket: int) -> float:
        slot = self._slot(bucket)
        total_n = sum(self._slot_n)
        if total_n <= 0 or self._slot_n[slot] <= 0:
            return 1.0
        mean_all = sum(self._slot_sum) / total_n
        if mean_all <= 0:
            return 1.0
        # events in this slot versus the events expected there at the overall rate, each
        # side with SHAPE_PRIOR_EVENTS pseudo-events: a slot seen with a handful of events
        # (a rare kind) keeps a shape near 1 instead of the noise of those few events
        k = SHAPE_PRIOR_EVENTS
        return (self._slot_sum[slot] + k) / (self._slot_n[slot] * mean_all + k)

    def advance(self, watermark: float) -> None:
        """Close every bucket that ended ``lateness_s`` or more before ``watermark``."""
        last_closable = self.bucket_of(watermark - self.lateness_s) - 1
        if self._start_bucket is None:
            self._start_bucket = last_closable + 1
            self._closed_through = last_closable
            return
        assert self._closed_through is not None
        if last_closable <= self._closed_through:
            return
        # bound the work after a long gap: at most a week of buckets
        first = max(self._closed_through + 1, last_closable - 7 * self.seasonal_period)
        for b in range(first, last_closable + 1):
            self._close_bucket(b)
        self._closed_through = last_closable

    def _close_bucket(self, b: int) -> None:
        slot = self._slot(b)
        shape = self._shape(b)
        d = self._decay
        total = 0
        guard = max(self.scales)
        for st in self._keys.values():
            if b <= st.closed_through:
                continue
            c = st.open.pop(b, 0)
            st.fired.discard(b)
            total += c
            st.recent.append((b, c))
            st.closed_through = b
            # guard band (as in Farrington's method): a bucket joins the baseline only once
            # it has left the longest scoring window, so the first events of a surge do
            # not raise the expectation the next ones are judged against; buckets inside a
            # window that fired stay out, unless the key has fired for hold_buckets in a
            # row (then it is the new normal)
            while len(st.recent) > guard:
                ob, oc = st.recent.popleft()
                excluded = ob in st.excluded
                st.excluded.discard(ob)
                if excluded and st.outlier_run < self.hold_buckets:
                    st.outlier_run += 1
                    continue
                st.outlier_run = st.outlier_run + 1 if excluded else 0
                oshape = shape if ob == b else self._shape(ob)
                exp = self._expected_one(st, ob, oshape)
                st.level_sum = st.level_sum * d + oc / oshape
                st.level_n = st.level_n * d + 1.0
                st.disp_sum = st.disp_sum * d + (oc - exp) ** 2
                st.disp_n = st.disp_n * d + exp
        # a bucket closed before any key was seen had zero events: it counts too, or the
        # pooled mean of a rare kind would be taken over its busy hours only
        nkeys = max(len(self._keys), 1)
        self._slot_sum[slot] = self._slot_sum[slot] * d + total
        self._slot_n[slot] = self._slot_n[slot] * d + 1.0
        self._pool_sum = self._pool_sum * d + total / nkeys
        self._pool_n = self._pool_n * d + 1.0

    # -- state per key -------------------------------------------------------------------
    def _state(self, key: Hashable, t: float) -> _KeyState:
        st = self._keys.get(key)
        if st is None:
            start = self._start_bucket if self._start_bucket is not None else self.bucket_of(t)
            closed = self._closed_through if self._closed_through is not None else start - 1
            # a key first seen now has had zero events since the detector started
            st = _KeyState(first_bucket=start, closed_through=closed)
            n_zero = max(0, closed - start + 1)
            st.level_n = (1.0 - self._decay**n_zero) / (1.0 - self._decay)
            self._keys[key] = st
        return st

    def _level(self, st: _KeyState) -> float:
        pooled = self._pool_sum / self._pool_n if self._pool_n > 0 else 0.0
        a = self.prior_buckets
        return (st.level_sum + a * pooled) / (st.level_n + a)

    def _expected_one(self, st: _KeyState, bucket: int, shape: float | None = None) -> float:
        s = self._shape(bucket) if shape is None else shape
        return max(self._level(st) * s, self.min_expected)

    def _phi(self, st: _KeyState) -> float:
        # ratio of decayed sums: sum (count - expected)^2 / sum expected, with a prior worth
        # PHI_PRIOR_WEIGHT expected events at PHI_PRIOR (stable for rare keys)
        phi = (st.disp_sum + PHI_PRIOR * PHI_PRIOR_WEIGHT) / (st.disp_n + PHI_PRIOR_WEIGHT)
        return min(max(phi, 1.0), self.max_phi)

    # -- contract ------------------------------------------------------------------------
    def learn_one(self, key: Hashable, t: float) -> bool:
        """Count one event for ``key`` at event time ``t``. False if it came too late."""
        st = self._state(key, t)
        b = self.bucket_of(t)
        if b <= st.closed_through:
            self.late_events += 1
            return False
        st.open[b] = st.open.get(b, 0) + 1
        return True

    def warmed_up(self) -> bool:
        if self._start_bucket is None or self._closed_through is None:
            return False
        return self._closed_through - self._start_bucket + 1 >= self.warmup_buckets

    def score_one(self, key: Hashable, t: float) -> Score:
        """Tail probability of the counts in the windows ending at ``t``'s bucket."""
        st = self._keys.get(key)
        b = self.bucket_of(t)
        if st is None:
            return Score(0.0, 0.0, 1.0)
        counts = dict(st.recent)
        counts.update(st.open)
        if not self.warmed_up():
            return Score(float(counts.get(b, 0)), math.nan, 1.0)
        phi = self._phi(st)
        best_p, best_obs, best_exp = 1.0, float(counts.get(b, 0)), self._expected_one(st, b)
        for w in self.scales:
            obs = sum(counts.get(b - i, 0) for i in range(w))
            exp = sum(self._expected_one(st, b - i) for i in range(w))
            p = quasi_poisson_sf(obs, exp, phi)
            if p < best_p:
                best_p, best_obs, best_exp = p, float(obs), exp
        return Score(best_obs, best_exp, min(1.0, best_p * len(self.scales)))

