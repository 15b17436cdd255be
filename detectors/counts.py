"""Count surge detector: events per key per event-time bucket against a seasonal,
over-dispersed baseline (in the spirit of CDC EARS / Farrington)."""

from __future__ import annotations

import math
import operator
from array import array
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, ClassVar, TypeAlias

from .base import P_FLOOR, Score, gammainc_scalar
from .buckets import BucketedDetector, add_cell, find_cell
from .policy import fired

#: one observation: ``(key, n)``, n events of ``key`` (n = 0: none, a question only)
CountObs: TypeAlias = tuple[Hashable, int]
#: what explain_one says about an observation it will not count
_NOT_COUNTED = Score(0.0, 0.0, 1.0)


def _fields(x: CountObs) -> tuple[Hashable, int]:
    key, n = x
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"a count observation is (key, n) with n >= 0 events, got {x!r}")
    return key, n

PHI_PRIOR = 1.2
PHI_PRIOR_WEIGHT = 3.0
SHAPE_PRIOR_EVENTS = 5.0


@dataclass(slots=True)
class _KeyState:
    """One key's state (kept small: a detector may hold one per region and kind)."""

    closed_through: int  # last closed bucket index
    # the buckets not yet closed and their events, in bucket order, packed in int64 pairs:
    # bucket, count, bucket, count, ... (see ``open``)
    opened: array[int] = field(default_factory=lambda: array("q"))
    # the closed buckets still in the guard band, oldest first, packed in int64 pairs:
    # bucket, count, bucket, count, ... (see ``recent``)
    closed: array[int] = field(default_factory=lambda: array("q"))
    level_sum: float = 0.0  # decayed sum of de-seasonalised counts
    level_n: float = 0.0  # decayed number of buckets
    disp_sum: float = 0.0  # decayed sum of (count - expected)^2
    disp_n: float = 0.0  # decayed sum of expected
    fired: tuple[int, ...] = ()
    fired_windows: tuple[int, ...] = ()  # windows that fired (see buckets.KeyMarks)
    outlier_run: int = 0

    @property
    def open(self) -> dict[int, int]:
        """Events by bucket, of the buckets not yet closed."""
        it = iter(self.opened)
        return dict(zip(it, it, strict=True))

    @property
    def recent(self) -> list[tuple[int, int]]:
        """(bucket, count) of the closed buckets in the guard band, oldest first."""
        it = iter(self.closed)
        return list(zip(it, it, strict=True))

    def copy(self) -> _KeyState:
        return _KeyState(self.closed_through, array("q", self.opened), array("q", self.closed),
                         self.level_sum, self.level_n, self.disp_sum, self.disp_n, self.fired,
                         self.fired_windows, self.outlier_run)

    # pickled as plain values (small ints pickle in 2 to 5 bytes, an array's in 8)
    def __getstate__(self) -> tuple[Any, ...]:
        return (self.closed_through, tuple(self.opened), tuple(self.closed), self.level_sum,
                self.level_n, self.disp_sum, self.disp_n, self.fired, self.fired_windows,
                self.outlier_run)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.closed_through, opened, closed, self.level_sum, self.level_n,
         self.disp_sum, self.disp_n, self.fired, self.fired_windows, self.outlier_run) = state
        self.opened = array("q", opened)
        self.closed = array("q", closed)


@dataclass(slots=True)
class _Windows:
    """What the scoring windows ending at ``bucket`` take from a key's closed buckets and
    baseline; fixed until the next bucket closes (a cache: see ``CountSurge._windows``)."""

    bucket: int
    others: list[int]  # events in the window's buckets other than an open ``bucket``, per scale
    here: int  # events of ``bucket``, while it is open (learn_one keeps both up to date)
    closed_here: int  # events of ``bucket`` itself, if it is closed
    expected: list[float]  # expected events in the window, per scale
    scaled: list[float]  # expected / phi per scale (0 if nothing is expected)
    expected_here: float  # expected events in ``bucket``
    phi: float  # dispersion as the quasi-Poisson tail takes it (at least 1)


class CountSurge(BucketedDetector[_KeyState]):
    """Events per key per bucket (default one hour of event time) versus a baseline.

    Baseline per key: a decayed mean of its de-seasonalised counts, shrunk towards the
    pooled mean of all keys (so a rare key has a sensible expectation), times an
    hour-of-day shape pooled over all keys. Dispersion ``phi`` (variance / mean) is
    estimated per key, at least 1. The tail p-value of the counts in the last 1, 3, 6
    and 12 buckets is taken under a quasi-Poisson; the smallest, Bonferroni
    corrected, is reported. A bucket joins the baseline only after it has left the longest
    window (a guard band), and not at all if a window holding it fired.

    An observation is ``(key, n)``: ``n`` events of ``key`` at event time ``t`` (see the
    contract in :mod:`detectors.base`). :meth:`explain_one` is the tail of the counts
    with those events counted, as if the watermark had reached ``t``; :meth:`learn_one`
    moves the watermark to ``t``, counts them, and marks the bucket fired when the counts
    make a finding (:func:`detectors.policy.fired`). Buckets close in event time: the
    watermark (:meth:`advance`, or the latest ``t`` learned) closes every bucket that
    ended more than ``lateness_s`` before it, for every key (zero counts included); an
    event of a closed bucket is not counted (:meth:`accepts`, ``late_events``).

    >>> det = CountSurge(bucket_s=3600, warmup_buckets=24)
    >>> t0 = 1_700_000_000 - 1_700_000_000 % 86400
    >>> for h in range(72):                          # one odour complaint an hour
    ...     det.learn_one(("odor", 1), t0 + h * 3600 + 60)
    >>> det.explain_one(("odor", 1), t0 + 72 * 3600 + 60).p_value > 0.1
    True
    >>> for i in range(7):                           # then eight within minutes
    ...     det.learn_one(("odor", 1), t0 + 72 * 3600 + 60 * i)
    >>> s = det.explain_one(("odor", 1), t0 + 72 * 3600 + 600)
    >>> s.observed, s.p_value < 1e-4, det.has_fired("odor", t0 + 72 * 3600)
    (8.0, True, True)
    >>> det.score_one(("odor", 1), t0 + 72 * 3600 + 600) == 1.0 - s.p_value
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
        self._reset_transient()

    # caches derived from the state, valid until the next bucket closes (not pickled)
    _transient: ClassVar[tuple[str, ...]] = ("_windows_cache", "_shapes", "_first_scale",
                                              "_memo")

    def _reset_transient(self) -> None:
        self._windows_cache: dict[Hashable, _Windows] = {}
        # the last explain_one: (key, t, n, its Score, the copy advanced to t or None),
        # for the learn_one of the same observation (the counts after it are what it
        # judged, the copy the state it moves to); dropped by any change
        self._memo: tuple[Hashable, float, int, Score, CountSurge | None] | None = None
        self._shapes: list[float] | None = None
        # index of the first (shortest) scale whose window holds a bucket of a given age
        self._first_scale = [next(i for i, w in enumerate(self.scales) if w > age)
                             for age in range(self.scales[-1])]

    def _fork(self) -> CountSurge:
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__getstate__())
        twin._keys = {k: st.copy() for k, st in self._keys.items()}
        twin._slot_sum = self._slot_sum[:]
        twin._slot_n = self._slot_n[:]
        twin._reset_transient()
        return twin

    # -- time -------------------------------------------------------------------------

    def _slot(self, bucket: int) -> int:
        return bucket % self.seasonal_period

    def _shape(self, bucket: int) -> float:
        return self._shape_table()[self._slot(bucket)]

    def _shape_table(self) -> list[float]:
        """The hour-of-day shape of every slot (from the current slot sums)."""
        total_n = sum(self._slot_n)
        if total_n <= 0:
            return [1.0] * self.seasonal_period
        mean_all = sum(self._slot_sum) / total_n
        if mean_all <= 0:
            return [1.0] * self.seasonal_period
        # events in this slot versus the events expected there at the overall rate, each
        # side with SHAPE_PRIOR_EVENTS pseudo-events: a slot seen with a handful of events
        # (a rare kind) keeps a shape near 1 instead of the noise of those few events
        k = SHAPE_PRIOR_EVENTS
        return [(s + k) / (n * mean_all + k) if n > 0 else 1.0
                for s, n in zip(self._slot_sum, self._slot_n, strict=True)]

    def advance(self, watermark: float) -> None:
        """Close every bucket that ended ``lateness_s`` or more before ``watermark``."""
        last_closable = math.floor((watermark - self.lateness_s) / self.bucket_s) - 1
        closed_through = self._closed_through
        if closed_through is not None and last_closable <= closed_through:
            return  # the common case, first
        if self._start_bucket is None or closed_through is None:
            self._start_bucket = last_closable + 1
            self._closed_through = last_closable
            return
        # bound the work after a long gap: at most a week of buckets
        first = max(closed_through + 1, last_closable - 7 * self.seasonal_period)
        for b in range(first, last_closable + 1):
            self._close_bucket(b)
        self._closed_through = last_closable
        self._windows_cache.clear()
        self._shapes = None
        self._memo = None

    def _close_bucket(self, b: int) -> None:
        slot = self._slot(b)
        shapes = self._shape_table()  # the slot sums change only at the end
        shape = shapes[slot]
        d = self._decay
        total = 0
        guard = max(self.scales)
        full = 2 * guard  # (bucket, count) pairs of the guard band
        for st in self._keys.values():
            if b <= st.closed_through:
                continue
            c = 0  # b's events (its cell is the first, but for buckets skipped in a gap)
            opened = st.opened
            if opened and opened[0] <= b:
                i = 0 if opened[0] == b else find_cell(opened, b, 2)
                if i >= 0:
                    c = opened[i + 1]
                    del opened[i:i + 2]
            if st.fired:
                self.unfire(st, b)
            total += c
            st.closed_through = b
            # guard band (as in Farrington's method): a bucket joins the baseline only once
            # it has left the longest scoring window, so the first events of a surge do
            # not raise the expectation the next ones are judged against; buckets inside a
            # window that fired stay out, unless the key has fired for hold_buckets in a
            # row (then it is the new normal). The oldest leaves before b is added (the
            # same as after: it is never b), so the array never grows past the guard band.
            closed = st.closed
            if len(closed) >= full:
                ob = closed[0]
                oc = closed[1]
                del closed[:2]
                excluded = bool(st.fired_windows) and self.leaves_fired_window(st, ob)
                if excluded and st.outlier_run < self.hold_buckets:
                    st.outlier_run += 1
                else:
                    st.outlier_run = st.outlier_run + 1 if excluded else 0
                    oshape = shape if ob == b else shapes[self._slot(ob)]
                    exp = self._expected_one(st, ob, oshape)
                    st.level_sum = st.level_sum * d + oc / oshape
                    st.level_n = st.level_n * d + 1.0
                    st.disp_sum = st.disp_sum * d + (oc - exp) ** 2
                    st.disp_n = st.disp_n * d + exp
            closed.append(b)
            closed.append(c)
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
            st = self._keys[key] = self._new_state(t)
        return st

    def _new_state(self, t: float) -> _KeyState:
        """The state of a key first seen at ``t``."""
        start = self._start_bucket if self._start_bucket is not None else self.bucket_of(t)
        closed = self._closed_through if self._closed_through is not None else start - 1
        # a key first seen now has had zero events since the detector started
        st = _KeyState(closed_through=closed)
        n_zero = max(0, closed - start + 1)
        st.level_n = (1.0 - self._decay**n_zero) / (1.0 - self._decay)
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
    def accepts(self, x: CountObs, t: float) -> bool:
        """Whether :meth:`learn_one` will count ``x`` at ``t``: its bucket is still open
        (and ``t`` finite)."""
        if not -math.inf < t < math.inf:
            return False
        st = self._keys.get(x[0])
        closed = self._closed_through if st is None else st.closed_through
        return closed is None or math.floor(t / self.bucket_s) > closed

    def explain_one(self, x: CountObs, t: float) -> Score:
        """The windows ending at ``t``'s bucket with the ``n`` events of ``x = (key, n)``
        counted, as if the watermark had reached ``t``: observed events and expected
        events of the winning window and its p-value. ``p = 1`` for events too late to
        count. Changes no state."""
        key, n = _fields(x)
        if not self.accepts(x, t):
            return _NOT_COUNTED
        det = self._at(t)
        s = det._score(key, t, n)
        self._memo = (key, t, n, s, None if det is self else det)
        return s

    def score_one(self, x: CountObs, t: float) -> float:
        """``1 - p`` of :meth:`explain_one`, in [0, 1]."""
        return self.explain_one(x, t).likelihood

    def learn_one(self, x: CountObs, t: float) -> None:
        """Move the watermark to ``t``, count the ``n`` events of ``x = (key, n)`` (unless
        their bucket has closed: then ``late_events`` counts them) and mark the bucket
        fired if the counts now make a finding (:func:`detectors.policy.fired`)."""
        key, n = _fields(x)
        memo, self._memo = self._memo, None
        if not -math.inf < t < math.inf:
            self.late_events += n
            return None
        # explain_one judged exactly these counts: its answer (and the copy it advanced)
        hit = memo if memo is not None and memo[:3] == (key, t, n) else None
        if hit is not None and hit[4] is not None:  # take the copy's state: advanced to t
            self.__dict__.update(hit[4].__dict__)
        else:
            self.advance(t)
        if n == 0 or not self._count(key, t, n):
            return None
        s = hit[3] if hit is not None else self._score(key, t, 0)
        if fired(s.p_value, s.observed):
            self.mark_fired(key, t)
        return None

    def _count(self, key: Hashable, t: float, n: int) -> bool:
        """Count ``n`` events for ``key`` at event time ``t``. False if they came too late
        (counted in ``late_events``)."""
        self._memo = None
        st = self._keys.get(key) or self._state(key, t)
        b = math.floor(t / self.bucket_s)
        if b <= st.closed_through:
            self.late_events += n
            return False
        opened = st.opened
        size = len(opened)
        if size and opened[size - 2] == b:  # the newest open bucket: the usual case
            opened[size - 1] += n
        elif not size or opened[size - 2] < b:  # a new newest one
            opened.append(b)
            opened.append(n)
        else:
            opened[add_cell(opened, b, 2) + 1] += n
        win = self._windows_cache.get(key)
        if win is not None:  # keep the cached window counts up to date
            if b == win.bucket:
                win.here += n
            elif 0 < win.bucket - b < len(self._first_scale):
                others = win.others
                for i in range(self._first_scale[win.bucket - b], len(others)):
                    others[i] += n
        return True

    def warmed_up(self) -> bool:
        if self._start_bucket is None or self._closed_through is None:
            return False
        return self._closed_through - self._start_bucket + 1 >= self.warmup_buckets

    def _windows(self, st: _KeyState, b: int) -> _Windows:
        """Events, expectations and dispersion of the windows ending at bucket ``b``,
        computed as :meth:`_expected_one` and :meth:`_phi` do (the same sums in the same
        order, so the same values)."""
        shapes = self._shapes
        if shapes is None:
            shapes = self._shapes = self._shape_table()
        level = self._level(st)
        scales = self.scales
        longest = scales[-1]
        period = self.seasonal_period
        r = b % period  # the slots of b, b - 1, ..., b - longest + 1
        slots = ((shapes[r::-1] + shapes[:r:-1]) * (longest // period + 1))[:longest]
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
        here = 0
        opened = st.opened
        n = len(opened)
        if n == 2 and opened[0] == b:  # b is the only open bucket: the usual case
            here = opened[1]
        else:
            for i in range(0, n, 2):
                age = b - opened[i]
                if age == 0:
                    here = opened[i + 1]
                elif 0 < age < longest:
                    by_age[age] = opened[i + 1]
        cum = list(accumulate(by_age))
        phi = max(self._phi(st), 1.0)
        return _Windows(b, [cum[w - 1] for w in scales], here,
                        closed_here, expected, [0.0 if e <= 0 else e / phi for e in expected],
                        each[0], phi)

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
        # quasi_poisson_sf(count, expected, phi) per window, inlined; the smallest p wins
        # (the first of equals), p floored at P_FLOOR
        others = win.others
        here = win.here + n
        phi = win.phi
        scaled = win.scaled
        best_p = 1.0
        best = -1
        for i in range(len(others)):
            count = others[i] + here
            if count > 0:  # else P(X >= 0) = 1: never the smallest
                # (a window expecting nothing has scaled 0: gammainc(a, 0) = 0, floored)
                p = gammainc_scalar(count / phi, scaled[i])
                if p < best_p:
                    if p < P_FLOOR:
                        p = P_FLOOR
                    if p < best_p:
                        best_p = p
                        best = i
        p_value = min(1.0, best_p * len(others))
        if best < 0:
            return Score(float(win.closed_here + here), win.expected_here, p_value)
        return Score(float(others[best] + here), win.expected[best], p_value)
