"""The sustained-shift view of a sensor series, and its fault screen.

:class:`SustainedShift` is the slow view beside :class:`~detectors.signals.sensor.SensorEnsemble`'s
fast one. The ensemble predicts the next reading from the recent past, so a leak that ramps
up over hours never leaves its prediction: the ramp becomes the new normal. This view
instead compares the recent *level* of the series, over windows that fit any cadence
(exponential windows of 30 min, 1 h and 3 h of event time), with a seasonal expectation
learned from normal data only:

* expectation = hour-of-day offset (working days apart from weekends and holidays, by the
  ``calendar``'s local days) + a slow level, both
  time-decayed means, so a 1-minute and a 4-hour cadence learn at the same pace;
* residual windows are standardised by their own learned spread (the spread of a 3 h mean
  of an autocorrelated series is learned as it is, never assumed from a single reading);
* a guard band: while any window is above ``guard_z``, nothing is learned (an excursion
  never becomes the expectation); after ``accept_after_s`` of continuous excursion the new
  level is accepted as normal and reported once (``accepted_at``);
* ``direction`` says which way is bad (``up``, ``down`` or ``both``).

:class:`FaultScreen` tells a faulty station from the environment: stuck values, readings
no instrument of that series can give (negative where it never was), and unit slips (a
level a thousand times off). Faults go to operators, not into incident evidence. It is in
:mod:`.fault_screen` (exported here).
"""

from __future__ import annotations

import math
from array import array

from detectors.base import Score, normal_sf
from detectors.signals import calibration as _cal
from detectors.signals.calendar import HolidayCalendar
from detectors.signals.fault_screen import ERRATIC_N, FAULT_KINDS, FaultScreen

HOUR = 3600.0
DAY = 86400.0
#: exponential window lengths (event-time seconds) of the level view
TAUS = (1800.0, 3600.0, 3 * 3600.0)
#: how much of an excursion the statistic's tail calibrator learns from
CALIB_EXCURSION_S = 2 * HOUR
#: the Unix epoch began on a Thursday: day index 0 is a Thursday
_EPOCH_WEEKDAY = 3

# _nums layout: window sums and weights (3 + 3), learned window variances (3), variance
# weight, level, level weight, last time, readings, excursion start (nan: none), accepted
# at (nan), single-reading variance, then the tail calibrator of the statistic
(_S0, _W0, _V0) = (0, 3, 6)
_VW, _LVL, _LVLW, _TLAST, _N, _EXC, _ACC, _V1, _CAL = range(9, 18)
_SIZE = _CAL + _cal.STATE_SIZE
_INIT = array("d", [0.0]) * _SIZE
for _i in (_LVL, _TLAST, _EXC, _ACC):
    _INIT[_i] = math.nan


def _slot(t: float) -> int:
    """Hour of day, weekdays 0-23 and weekends 24-47."""
    day = int(t // DAY)
    weekend = (day + _EPOCH_WEEKDAY) % 7 >= 5
    return int(t % DAY // HOUR) + (24 if weekend else 0)


class SustainedShift:
    """Recent level against a guarded seasonal expectation (see the module docstring).

    ``score_one(x, t)`` is ``1 - p`` of the strongest standardised window (Bonferroni over
    the windows), computed as if ``x`` were learned, without learning it.

    >>> import random
    >>> rng = random.Random(3)
    >>> det = SustainedShift(seed=3)
    >>> t = 0.0
    >>> for i in range(24 * 12):  # twelve quiet days at a 1 h cadence
    ...     t = i * 3600.0
    ...     det.learn_one(20 + 3 * math.sin(t / 86400 * 2 * math.pi) + rng.gauss(0, 1), t)
    >>> det.score_one(21.0, t + 3600) < 0.9
    True
    >>> for k in range(1, 5):  # a ramp, 2 sd more every hour
    ...     x = 20 + 3 * math.sin((t + k * 3600) / 86400 * 2 * math.pi) + 2 * k
    ...     s = det.score_one(x, t + k * 3600); det.learn_one(x, t + k * 3600)
    >>> s > 0.9999
    True
    """

    __slots__ = ("_memo", "_nums", "_prof", "accept_after_s", "calendar", "direction",
                 "guard_z", "level_tau_s", "min_readings", "season_tau_s", "seed", "var_tau_s")

    def __init__(self, direction: str = "up", guard_z: float = 3.0,
                 accept_after_s: float = 48 * HOUR, season_tau_s: float = 10 * DAY,
                 level_tau_s: float = 2 * DAY, var_tau_s: float = 7 * DAY,
                 min_readings: int = 24, seed: int = 0,
                 calendar: HolidayCalendar | None = None) -> None:
        if direction not in ("up", "down", "both"):
            raise ValueError(f"direction={direction!r}: use 'up', 'down' or 'both'")
        self.direction = direction
        self.guard_z = guard_z
        self.accept_after_s = accept_after_s
        self.season_tau_s = season_tau_s
        self.level_tau_s = level_tau_s
        self.var_tau_s = var_tau_s
        self.min_readings = min_readings
        self.seed = seed  # no randomness enters
        # which days are working days (None: weekends in UTC, no holidays); one object
        # shared by every series (pickled once with them)
        self.calendar = calendar
        # per slot: offset mean, weight, last update time
        self._prof = array("d", [0.0, 0.0, math.nan]) * 48
        self._nums = _INIT[:]
        # the last look(): (x, t, expected, window means, z-scores), reused by learn_one
        self._memo: tuple[float, float, float, list[float], list[float]] | None = None

    # the last look() is a cache, not state: left out of pickles (checkpoints, copies)
    def __getstate__(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__ if k != "_memo"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.calendar = None  # (pickled before the calendar: the default)
        for k, v in state.items():
            object.__setattr__(self, k, v)
        self._memo = None

    def _slot(self, t: float) -> int:
        """Hour of day, 0-23 on working days and 24-47 on weekends and holidays."""
        cal = self.calendar
        if cal is None:
            return _slot(t)
        return int(t % DAY // HOUR) + 24 * cal.day_type(t)

    # -- model ----------------------------------------------------------------------------
    def expected(self, t: float) -> float:
        lvl = self._nums[_LVL]
        i = 3 * self._slot(t)
        off = self._prof[i] if self._prof[i + 1] > 0 else 0.0
        return lvl + off if lvl == lvl else math.nan

    def _windows(self, r: float, t: float) -> tuple[list[float], list[float]]:
        """Window means of the residual with ``r`` at ``t`` added, and their z-scores."""
        nums = self._nums
        t_last = nums[_TLAST]
        dt = max(0.0, t - t_last) if t_last == t_last else 0.0
        means, zs = [], []
        floor = 1e-3 * (abs(nums[_LVL]) + 1e-6) if nums[_LVL] == nums[_LVL] else 1e-9
        for k, tau in enumerate(TAUS):
            d = math.exp(-dt / tau)
            s = nums[_S0 + k] * d + r
            w = nums[_W0 + k] * d + 1.0
            m = s / w
            means.append(m)
            var = nums[_V0 + k]
            sd = math.sqrt(var) if var > 0 else 0.0
            zs.append(m / max(sd, floor))
        return means, zs

    def _stat(self, zs: list[float]) -> float:
        if self.direction == "up":
            return max(zs)
        if self.direction == "down":
            return -min(zs)
        return max(abs(z) for z in zs)

    def warmed_up(self) -> bool:
        return self._nums[_N] >= self.min_readings and self._nums[_VW] > 0.0

    # -- contract -------------------------------------------------------------------------
    def look(self, x: float, t: float) -> tuple[float, float]:
        """(expected value, the strongest standardised window in the bad direction) for
        ``x`` at ``t``: one computation, which the next ``learn_one(x, t)`` reuses; the z is
        0 before warm-up."""
        e = self.expected(t)
        if not math.isfinite(x) or e != e:
            return e, 0.0
        means, zs = self._windows(x - e, t)
        self._memo = (x, t, e, means, zs)
        return e, (self._stat(zs) if self.warmed_up() else 0.0)

    def explain_one(self, x: float, t: float = 0.0) -> Score:
        e, z = self.look(x, t)
        if not math.isfinite(x) or e != e or not self.warmed_up():
            return Score(x, e, 1.0)
        return Score(x, e, self._p(z))

    def _p(self, stat: float) -> float:
        """The tail probability of ``stat``: the larger of the Gaussian one (Bonferroni over
        the windows) and the series' own learned tail (weather that recurs, a drain that
        fills with every storm, is no surprise there however many sd it spans)."""
        gauss = min(1.0, len(TAUS) * normal_sf(stat))
        return max(gauss, self._learned_tail(max(stat, 0.0)))

    def _learned_tail(self, s: float) -> float:
        """P(stat >= s) from this series' history: the tracked 98% quantile ``u`` and an
        exponential tail beyond it with the mean exceedance as its scale (a lighter tail
        than a fitted Pareto: a few windy days must not make a 9-sd leak look common)."""
        nums = self._nums
        u, e1, ne = nums[_CAL], nums[_CAL + 2], nums[_CAL + 4]
        tail = 1.0 - _cal.Q
        if ne < 3 or s <= u:
            return 1.0 if s <= 0.0 or u <= 0.0 else (
                tail if s >= u else math.exp(math.log(tail) * s / u))
        return max(tail * math.exp(-(s - u) / max(e1, 1e-9)), 1e-300)

    def p_of(self, stat: float) -> float:
        """The p-value of a statistic on this series' scale (1 before warm-up)."""
        return self._p(stat) if self.warmed_up() else 1.0

    def score_one(self, x: float, t: float = 0.0) -> float:
        return self.explain_one(x, t).likelihood


    @property
    def in_excursion(self) -> bool:
        return self._nums[_EXC] == self._nums[_EXC]

    @property
    def accepted_at(self) -> float | None:
        """Event time a sustained shift was last accepted as the new normal (else None)."""
        a = self._nums[_ACC]
        return None if a != a else a

    def learn_one(self, x: float, t: float = 0.0) -> None:
        if not math.isfinite(x):
            return
        nums = self._nums
        if nums[_LVL] != nums[_LVL]:
            nums[_LVL] = x
            nums[_LVLW] = 1.0
            nums[_TLAST] = t
            nums[_N] = 1.0
            return
        memo, self._memo = self._memo, None
        if memo is not None and memo[0] == x and memo[1] == t:
            e, means, zs = memo[2], memo[3], memo[4]
        else:
            e = self.expected(t)
            means, zs = self._windows(x - e, t)
        r = x - e
        dt = max(0.0, t - nums[_TLAST])
        for k in range(len(TAUS)):
            d = math.exp(-dt / TAUS[k])
            nums[_S0 + k] = nums[_S0 + k] * d + r
            nums[_W0 + k] = nums[_W0 + k] * d + 1.0
        warm = self.warmed_up()
        stat = self._stat(zs)
        excursion = warm and stat > self.guard_z
        # the statistic's own tail is learned from normal readings and from the first
        # CALIB_EXCURSION_S of an excursion (recurring storms are learned; a long incident
        # does not become its own normal)
        exc_start = nums[_EXC]
        if warm and (not excursion or exc_start != exc_start
                     or t - exc_start < CALIB_EXCURSION_S):
            _cal.tail_learn(nums, _CAL, _cal.Q, _cal.ETA, _cal.ALPHA, _cal.WINSOR,
                            max(stat, 0.0))
        if excursion:
            if nums[_EXC] != nums[_EXC]:
                nums[_EXC] = t
            elif t - nums[_EXC] >= self.accept_after_s:
                self._accept(r, t)
        else:
            nums[_EXC] = math.nan
            self._learn_normal(x, r, means, t, dt)
        nums[_TLAST] = max(t, nums[_TLAST])
        nums[_N] += 1.0

    def _learn_normal(self, x: float, r: float, means: list[float], t: float,
                      dt: float) -> None:
        nums = self._nums
        # the slow level follows the de-seasonalised reading
        i = 3 * self._slot(t)
        prof = self._prof
        off = prof[i] if prof[i + 1] > 0 else 0.0
        dl = math.exp(-dt / self.level_tau_s)
        lw = nums[_LVLW] * dl + 1.0
        nums[_LVL] += (x - off - nums[_LVL]) / lw
        nums[_LVLW] = min(lw, 1e6)
        # this slot's offset from the level
        last = prof[i + 2]
        ds = math.exp(-(t - last) / self.season_tau_s) if last == last else 0.0
        sw = prof[i + 1] * ds + 1.0
        prof[i] += (x - nums[_LVL] - prof[i]) / sw
        prof[i + 1] = sw
        prof[i + 2] = t
        # the spread of each window mean (and of one reading)
        dv = math.exp(-dt / self.var_tau_s)
        vw = nums[_VW] * dv + 1.0
        if nums[_N] >= 2:
            for k in range(len(TAUS)):
                nums[_V0 + k] += (means[k] * means[k] - nums[_V0 + k]) / vw
            nums[_V1] += (r * r - nums[_V1]) / vw
            nums[_VW] = vw

    def _accept(self, r: float, t: float) -> None:
        """A shift that lasted ``accept_after_s``: its level is the new normal."""
        nums = self._nums
        nums[_LVL] += r
        for k in range(len(TAUS)):
            nums[_S0 + k] = 0.0
            nums[_W0 + k] = 0.0
        nums[_EXC] = math.nan
        nums[_ACC] = t


__all__ = ["ERRATIC_N", "FAULT_KINDS", "TAUS", "FaultScreen", "SustainedShift"]
