"""Failure-rate surge: the share of failed trials (e.g. failed inspections among all
inspections) per key, against a beta-binomial baseline, in event-time buckets."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from scipy.stats import betabinom

from .base import Score
from .buckets import BucketedDetector


@dataclass(slots=True)
class _RateState:
    open: dict[int, list[int]] = field(default_factory=dict)  # bucket -> [trials, failures]
    recent: deque[tuple[int, int, int]] = field(default_factory=deque)  # closed (b, n, k)
    n_sum: float = 0.0  # decayed trials in the baseline
    k_sum: float = 0.0  # decayed failures in the baseline
    fired: set[int] = field(default_factory=set)
    excluded: set[int] = field(default_factory=set)  # buckets inside a window that fired
    outlier_run: int = 0


class RateSurge(BucketedDetector[_RateState]):
    """Are more trials failing than usual for this key?

    Use it when a count alone misleads because the number of trials moves: inspectors
    visit more shops after complaints, so more failures are expected even when nothing is
    wrong. The baseline failure rate of a key is a decayed Beta posterior: its own
    decayed trials and failures plus a prior worth ``prior_trials`` trials at the rate
    pooled over all keys. The observed failures among the trials of the last 1, 6, 12 and
    24 buckets are scored with the beta-binomial upper tail (which carries the baseline's
    own uncertainty), and the smallest p-value, Bonferroni corrected, is reported.
    Buckets close in event time (``advance`` with a watermark) and join the baseline only
    once they have left the longest scoring window (a guard band, as in Farrington's
    method), and never if they were inside a window that fired (unless the key has been
    firing for ``hold_buckets`` in a row: then the high rate is the new normal).

    >>> det = RateSurge(bucket_s=3600)
    >>> t0 = 1_700_000_000.0
    >>> for h in range(48):                       # 10 inspections an hour, 1 fails
    ...     det.advance(t0 + h * 3600)
    ...     for i in range(10):
    ...         _ = det.learn_one("harbour", t0 + h * 3600 + i, failed=(i == 0))
    >>> det.score_one("harbour", t0 + 47 * 3600).p_value > 0.05
    True
    >>> for i in range(10):                        # then 6 of 10 fail
    ...     _ = det.learn_one("harbour", t0 + 48 * 3600 + i, failed=(i < 6))
    >>> det.score_one("harbour", t0 + 48 * 3600).p_value < 1e-3
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


    # -- baseline -------------------------------------------------------------------------
    def _beta(self, st: _RateState) -> tuple[float, float]:
        pooled = (self._pool_k + self.prior_rate * self.prior_trials) / (
            self._pool_n + self.prior_trials)
        a0 = pooled * self.prior_trials
        b0 = (1.0 - pooled) * self.prior_trials
        return a0 + st.k_sum, b0 + (st.n_sum - st.k_sum)

    def advance(self, watermark: float) -> None:
        """Close every bucket that ended ``lateness_s`` or more before ``watermark``."""
        last = self.bucket_of(watermark - self.lateness_s) - 1
        if self._closed_through is not None and last <= self._closed_through:
            return
        self._closed_through = last
        d = self._decay
        guard = max(self.scales)
        for st in self._keys.values():
            for b in sorted(x for x in st.open if x <= last):
                n, k = st.open.pop(b)
                st.fired.discard(b)
                st.recent.append((b, n, k))
            while st.recent and st.recent[0][0] <= last - guard:
                b, n, k = st.recent.popleft()
                if b in st.excluded and st.outlier_run < self.hold_buckets:
                    st.outlier_run += 1
                else:
                    st.outlier_run = st.outlier_run + 1 if b in st.excluded else 0
                    st.n_sum = st.n_sum * d + n
                    st.k_sum = st.k_sum * d + k
                    self._pool_n = self._pool_n * d + n
                    self._pool_k = self._pool_k * d + k
                st.excluded.discard(b)
            # buckets that never had a trial never pass through ``recent``: drop their marks
            # once they are older than the guard band, so the set stays bounded
            if st.excluded:
                st.excluded = {b for b in st.excluded if b > last - guard}

    # -- contract -------------------------------------------------------------------------
    def learn_one(self, key: Hashable, t: float, failed: bool) -> bool:
        """Count one trial of ``key`` at event time ``t``. False if it came too late."""
        b = self.bucket_of(t)
        if self._closed_through is not None and b <= self._closed_through:
            self.late_events += 1
            return False
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = _RateState()
        cell = st.open.setdefault(b, [0, 0])
        cell[0] += 1
        cell[1] += int(failed)
        return True

    def score_one(self, key: Hashable, t: float) -> Score:
        """Failures among trials in the windows ending at ``t``'s bucket (observed and
        expected are failure counts)."""
        st = self._keys.get(key)
        if st is None or self._pool_n < self.warmup_trials:
            return Score(0.0, 0.0, 1.0)
        b = self.bucket_of(t)
        cells = {bb: (n, k) for bb, n, k in st.recent}
        cells.update({bb: (c[0], c[1]) for bb, c in st.open.items()})
        a, bb_ = self._beta(st)
        rate = a / (a + bb_)
        best = Score(0.0, 0.0, 1.0)
        for w in self.scales:
            n = sum(cells.get(b - i, (0, 0))[0] for i in range(w))
            k = sum(cells.get(b - i, (0, 0))[1] for i in range(w))
            if n == 0 or k == 0:
                continue
            p = float(betabinom.sf(k - 1, n, a, bb_))
            if p < best.p_value:
                best = Score(float(k), n * rate, p)
        return Score(best.observed, best.expected, min(1.0, best.p_value * len(self.scales)))



__all__ = ["RateSurge"]
