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

from scipy.special import cython_special

from detectors.base import P_FLOOR, Score, gammainc_scalar
from detectors.policy import fired
from detectors.signals.buckets import BucketedDetector, add_cell, find_cell
from detectors.signals.calendar import HolidayCalendar

#: one observation: ``(key, n)``, n events of ``key`` (n = 0: none, a question only)
CountObs: TypeAlias = tuple[Hashable, int]
#: what explain_one says about an observation it will not count
_NOT_COUNTED = Score(0.0, 0.0, 1.0)
#: the regularised incomplete beta function of scalars (a negative binomial's tail)
_betainc = cython_special.betainc


def _fields(x: CountObs) -> tuple[Hashable, int]:
    key, n = x
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"a count observation is (key, n) with n >= 0 events, got {x!r}")
    return key, n

PHI_PRIOR = 1.2
PHI_PRIOR_WEIGHT = 3.0
#: the prior of a window scale's extra dispersion ``alpha`` (see CountSurge._phis): 0 (the
#: per-bucket phi), worth this many windows expecting one event per bucket
SCALE_ALPHA_PRIOR_WINDOWS = 24.0
#: the largest extra dispersion alpha (a negative binomial of size 1 / alpha >= 0.5)
MAX_ALPHA = 2.0
SHAPE_PRIOR_EVENTS = 5.0
#: a day type's hour (working day, weekend or holiday) is shrunk towards the hour's shape
#: over all days with this many pseudo-events (a first weekend starts from the hour's
#: shape, not from flat)
DAY_TYPE_PRIOR_EVENTS = 30.0


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
    # per window scale longer than one bucket (``CountSurge._wide``), the decayed sums of
    # (window count - expected)^2 and of expected: sq, exp, sq, exp, ... (empty until the
    # first window is learned)
    wdisp: array[float] = field(default_factory=lambda: array("d"))

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
                         self.fired_windows, self.outlier_run, array("d", self.wdisp))

    # pickled as plain values (small ints pickle in 2 to 5 bytes, an array's in 8)
    def __getstate__(self) -> tuple[Any, ...]:
        return (self.closed_through, tuple(self.opened), tuple(self.closed), self.level_sum,
                self.level_n, self.disp_sum, self.disp_n, self.fired, self.fired_windows,
                self.outlier_run, tuple(self.wdisp))

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        if len(state) == 10:  # pickled before the per-scale dispersion
            state = (*state, ())
        (self.closed_through, opened, closed, self.level_sum, self.level_n,
         self.disp_sum, self.disp_n, self.fired, self.fired_windows, self.outlier_run,
         wdisp) = state
        self.opened = array("q", opened)
        self.closed = array("q", closed)
        self.wdisp = array("d", wdisp)


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
    phi: float  # per-bucket dispersion as the tails take it (at least 1)
    # per scale, the negative binomial of the counts / phi: its size 1 / alpha (0: none,
    # the quasi-Poisson tail) and success probability (see CountSurge._alphas)
    sizes: list[float]
    probs: list[float]


class CountSurge(BucketedDetector[_KeyState]):
    """Events per key per bucket (default one hour of event time) versus a baseline.

    Baseline per key: a decayed mean of its de-seasonalised counts, shrunk towards the
    pooled mean of all keys (so a rare key has a sensible expectation), times an
    hour-of-week shape pooled over all keys: one per hour of day and day type, working
    day or weekend-or-holiday (``calendar``, a :class:`~detectors.signals.calendar.HolidayCalendar`;
    default: weekends in UTC, no holidays), each shrunk towards the hour's shape over all
    days. Dispersion ``phi`` (variance / mean) is estimated per key and per window scale,
    at least 1: counts summed over several buckets are more over-dispersed than one
    bucket's when whole days run busy or quiet, so each scale learns its own phi from its
    windows (shrunk towards the per-bucket phi). The tail p-value of the counts in the last
    1, 3, 6 and 12 buckets is taken under a quasi-Poisson with that scale's phi; the
    smallest, Bonferroni corrected, is reported. A bucket joins the baseline only after it
    has left the longest window (a guard band), and not at all if a window holding it fired.

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
        calendar: HolidayCalendar | None = None,
        scale_half_life_buckets: float = 336.0,
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
        self.calendar = calendar if calendar is not None else HolidayCalendar()
        self.scale_half_life_buckets = scale_half_life_buckets
        self._decay = 0.5 ** (1.0 / half_life_buckets)
        # the wide scales' dispersion learns from day-to-day variation: a few days of
        # memory would hold a handful of days, so it keeps longer (two weeks by default)
        self._scale_decay = 0.5 ** (1.0 / scale_half_life_buckets)
        self._keys: dict[Hashable, _KeyState] = {}
        self._start_bucket: int | None = None
        self._closed_through: int | None = None
        # pooled hour-of-week shape (decayed sums of counts and of buckets per slot): slot
        # day_type * seasonal_period + bucket % seasonal_period (see _slot)
        self._slot_sum = [0.0] * (2 * seasonal_period)
        self._slot_n = [0.0] * (2 * seasonal_period)
        self._pool_sum = 0.0
        self._pool_n = 0.0
        self.late_events = 0
        self._reset_transient()

    # caches derived from the state, valid until the next bucket closes (not pickled)
    _transient: ClassVar[tuple[str, ...]] = ("_windows_cache", "_shapes", "_first_scale",
                                              "_memo", "_back", "_wide")

    def _reset_transient(self) -> None:
        self._windows_cache: dict[Hashable, _Windows] = {}
        # the last explain_one: (key, t, n, its Score, the copy advanced to t or None),
        # for the learn_one of the same observation (the counts after it are what it
        # judged, the copy the state it moves to); dropped by any change
        self._memo: tuple[Hashable, float, int, Score, CountSurge | None] | None = None
        self._shapes: list[float] | None = None
        # bucket -> the shapes of it and the buckets before it, newest first (see _windows)
        self._back: dict[int, list[float]] = {}
        # the scales longer than one bucket: their dispersion is learned apart
        self._wide = tuple(w for w in self.scales if w > 1)
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

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "calendar" not in state:  # pickled before the hour-of-week shape
            state = {**state, "calendar": HolidayCalendar(),
                     "_slot_sum": state["_slot_sum"] * 2, "_slot_n": state["_slot_n"] * 2}
        super().__setstate__(state)

    def _slot(self, bucket: int) -> int:
        """Hour of day (bucket of the day cycle) on working days, the same plus
        ``seasonal_period`` on weekends and holidays (the calendar's local day type of the
        bucket's start)."""
        period = self.seasonal_period
        return self.calendar.day_type(bucket * self.bucket_s) * period + bucket % period

    def _shape(self, bucket: int) -> float:
        return self._shape_table()[self._slot(bucket)]

    def _shape_table(self) -> list[float]:
        """The hour-of-week shape of every slot (from the current slot sums)."""
        slots = len(self._slot_n)
        total_n = sum(self._slot_n)
        if total_n <= 0:
            return [1.0] * slots
        mean_all = sum(self._slot_sum) / total_n
        if mean_all <= 0:
            return [1.0] * slots
        # the hour's shape over all days: events in the hour versus the events expected
        # there at the overall rate, each side with SHAPE_PRIOR_EVENTS pseudo-events: an
        # hour seen with a handful of events (a rare kind) keeps a shape near 1 instead of
        # the noise of those few events
        period = self.seasonal_period
        k = SHAPE_PRIOR_EVENTS
        ss, sn = self._slot_sum, self._slot_n
        hours = [(ss[h] + ss[h + period] + k) / ((sn[h] + sn[h + period]) * mean_all + k)
                 if sn[h] + sn[h + period] > 0 else 1.0 for h in range(period)]
        # each day type's hour, shrunk towards the hour's shape (a day type not seen yet
        # takes the hour's shape)
        kd = DAY_TYPE_PRIOR_EVENTS
        return [(s + kd * hours[i % period]) / (n * mean_all + kd)
                for i, (s, n) in enumerate(zip(ss, sn, strict=True))]

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
        self._back.clear()
        self._memo = None

    def _close_bucket(self, b: int) -> None:
        slot = self._slot(b)
        shapes = self._shape_table()  # the slot sums change only at the end
        shape = shapes[slot]
        d = self._decay
        total = 0
        guard = max(self.scales)
        full = 2 * guard  # (bucket, count) pairs of the guard band
        wide = self._wide
        # the shapes of the buckets leaving the guard band now (the usual one, b - guard)
        # and of the longest window they start: the same for every key
        ahead = [shapes[self._slot(b - guard + i)] for i in range(guard)] if wide else []
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
                excluded = bool(st.fired_windows) and self.leaves_fired_window(st, ob)
                if excluded and st.outlier_run < self.hold_buckets:
                    st.outlier_run += 1
                else:
                    st.outlier_run = st.outlier_run + 1 if excluded else 0
                    oshape = shape if ob == b else shapes[self._slot(ob)]
                    exp = self._expected_one(st, ob, oshape)
                    if wide and not excluded:
                        self._learn_scales(st, ob, shapes, ahead if ob == b - guard else None)
                    st.level_sum = st.level_sum * d + oc / oshape
                    st.level_n = st.level_n * d + 1.0
                    st.disp_sum = st.disp_sum * d + (oc - exp) ** 2
                    st.disp_n = st.disp_n * d + exp
                del closed[:2]
            closed.append(b)
            closed.append(c)
        # a bucket closed before any key was seen had zero events: it counts too, or the
        # pooled mean of a rare kind would be taken over its busy hours only
        nkeys = max(len(self._keys), 1)
        self._slot_sum[slot] = self._slot_sum[slot] * d + total
        self._slot_n[slot] = self._slot_n[slot] * d + 1.0
        self._pool_sum = self._pool_sum * d + total / nkeys
        self._pool_n = self._pool_n * d + 1.0

    def _learn_scales(self, st: _KeyState, ob: int, shapes: list[float],
                      ahead: list[float] | None) -> None:
        """Learn each wide scale's extra dispersion from the window of that scale starting
        at ``ob``, the closed bucket leaving the guard band (the oldest of ``st.closed``;
        the rest of the window is in the guard band): decayed sums of
        (count - expected)^2 - phi * expected (the variance beyond the per-bucket phi's)
        and of expected^2 (see :meth:`_phis`). A window overlapping one that fired is left
        out. ``ahead``: the shapes of ``ob`` and the buckets after it, if known."""
        wide = self._wide
        guard = self.scales[-1]
        ends = st.fired_windows  # (those ending before ob are forgotten by now)
        first_fired = ends[0] - guard + 1 if ends else None  # first bucket kept out
        closed = st.closed
        m = len(closed) // 2
        counts = [0] * guard  # events of ob, ob + 1, ...
        if m and closed[-2] - closed[0] == m - 1:  # consecutive (the rule)
            counts[:m] = closed[1::2].tolist()[:guard]
        else:
            for i in range(0, len(closed), 2):
                age = closed[i] - ob
                if 0 <= age < guard:
                    counts[age] = closed[i + 1]
        if ahead is None:
            ahead = [shapes[self._slot(ob + i)] for i in range(guard)]
        level = self._level(st)
        floor = self.min_expected
        each = [floor if floor > (x := level * sh) else x for sh in ahead]
        cum_c = list(accumulate(counts))
        cum_e = list(accumulate(each))
        phi = self._phi(st)
        sums = st.wdisp
        if not sums:
            sums.extend([0.0] * (2 * len(wide)))
        d = self._scale_decay
        for j, w in enumerate(wide):
            if first_fired is not None and first_fired <= ob + w - 1:
                continue
            e = cum_e[w - 1]
            sums[2 * j] = sums[2 * j] * d + (cum_c[w - 1] - e) ** 2 - phi * e
            sums[2 * j + 1] = sums[2 * j + 1] * d + e * e

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

    def _alphas(self, st: _KeyState) -> list[float]:
        """Each scale's extra dispersion ``alpha``: 0 for one bucket; for a window of
        ``w`` buckets, the ratio of its decayed sums (see :meth:`_learn_scales`) with a
        prior of SCALE_ALPHA_PRIOR_WINDOWS windows expecting ``w`` events at 0, within
        [0, MAX_ALPHA]. A window expecting ``e`` events has variance
        ``phi * e + alpha * e^2``: whole days running busy or quiet add variance in
        proportion to e^2 (a negative binomial on top of the per-bucket phi)."""
        sums = st.wdisp
        out = []
        j = 0
        for w in self.scales:
            if w == 1:
                out.append(0.0)
                continue
            extra = sums[2 * j] if sums else 0.0
            if extra > 0.0:
                alpha = extra / (sums[2 * j + 1] + SCALE_ALPHA_PRIOR_WINDOWS * w * w)
                out.append(MAX_ALPHA if alpha > MAX_ALPHA else alpha)
            else:
                out.append(0.0)
            j += 1
        return out

    def _phis(self, st: _KeyState, expected: Sequence[float]) -> list[float]:
        """Variance / mean of each scale's window, ``expected`` its expected events:
        ``phi + alpha * e`` (see :meth:`_alphas`)."""
        phi = self._phi(st)
        return [phi + a * e for a, e in zip(self._alphas(st), expected, strict=True)]

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
            return Score(float(win.closed_here + here), win.expected_here, p_value)
        return Score(float(others[best] + here), win.expected[best], p_value)
