"""What :class:`~detectors.signals.counts.CountSurge` learns of the usual counts: the
hour-of-week shape pooled over all keys, each key's level and dispersion (per bucket and
per window scale), and the closing of buckets into that baseline (through a guard band)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from itertools import accumulate

from detectors.signals.buckets import BucketedDetector, find_cell
from detectors.signals.calendar import HolidayCalendar
from detectors.signals.count_keys import _KeyState, _Windows

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


class CountBaseline(BucketedDetector[_KeyState]):
    """The baseline half of :class:`~detectors.signals.counts.CountSurge` (which sets
    these attributes): the seasonal shape, each key's level and dispersion, and
    :meth:`advance`, which closes buckets into them."""

    prior_buckets: float
    warmup_buckets: int
    min_expected: float
    max_phi: float
    seasonal_period: int
    hold_buckets: int
    calendar: HolidayCalendar
    _decay: float
    _scale_decay: float
    _start_bucket: int | None
    _slot_sum: list[float]
    _slot_n: list[float]
    _pool_sum: float
    _pool_n: float
    # caches (see CountSurge._reset_transient)
    _windows_cache: dict[Hashable, _Windows]
    _shapes: list[float] | None
    _back: dict[int, list[float]]
    _wide: tuple[int, ...]

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

    def warmed_up(self) -> bool:
        if self._start_bucket is None or self._closed_through is None:
            return False
        return self._closed_through - self._start_bucket + 1 >= self.warmup_buckets


__all__ = ["DAY_TYPE_PRIOR_EVENTS", "MAX_ALPHA", "PHI_PRIOR", "PHI_PRIOR_WEIGHT",
           "SCALE_ALPHA_PRIOR_WINDOWS", "SHAPE_PRIOR_EVENTS", "CountBaseline"]
