"""Count surge detector: events per key per event-time bucket against a seasonal,
over-dispersed baseline (in the spirit of CDC EARS / Farrington).

The detector is :class:`CountSurge`; a key's state is in :mod:`.count_keys`, the baseline
it learns (seasonal shape, level, dispersion, closing buckets) in :mod:`.count_baseline`,
and the scoring windows over it in :mod:`.count_windows`."""

from __future__ import annotations

import math
import operator
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, TypeAlias

from detectors.base import Score
from detectors.policy import fired
from detectors.signals.buckets import add_cell
from detectors.signals.calendar import HolidayCalendar
from detectors.signals.count_baseline import (
    DAY_TYPE_PRIOR_EVENTS,
    MAX_ALPHA,
    PHI_PRIOR,
    PHI_PRIOR_WEIGHT,
    SCALE_ALPHA_PRIOR_WINDOWS,
    SHAPE_PRIOR_EVENTS,
)
from detectors.signals.count_keys import _KeyState, _Windows
from detectors.signals.count_windows import _NOT_COUNTED, CountWindows

#: one observation: ``(key, n)``, n events of ``key`` (n = 0: none, a question only)
CountObs: TypeAlias = tuple[Hashable, int]


def _fields(x: CountObs) -> tuple[Hashable, int]:
    key, n = x
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"a count observation is (key, n) with n >= 0 events, got {x!r}")
    return key, n


class CountSurge(CountWindows):
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
        self._check_buckets(bucket_s, scales)
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
        twin = super()._fork()
        twin._slot_sum = self._slot_sum[:]
        twin._slot_n = self._slot_n[:]
        return twin

    # -- pickles --------------------------------------------------------------------------
    def __setstate__(self, state: dict[str, Any]) -> None:
        if "calendar" not in state:  # pickled before the hour-of-week shape
            state = {**state, "calendar": HolidayCalendar(),
                     "_slot_sum": state["_slot_sum"] * 2, "_slot_n": state["_slot_n"] * 2}
        super().__setstate__(state)

    # -- state per key -------------------------------------------------------------------
    def _state(self, key: Hashable, t: float) -> _KeyState:
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = self._new_state(t)
        return st


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
        self._catch_up(None if hit is None else hit[4], t)
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



__all__ = ["DAY_TYPE_PRIOR_EVENTS", "MAX_ALPHA", "PHI_PRIOR", "PHI_PRIOR_WEIGHT",
           "SCALE_ALPHA_PRIOR_WINDOWS", "SHAPE_PRIOR_EVENTS", "CountObs", "CountSurge"]
