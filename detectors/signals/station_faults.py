"""Station faults that only a comparison tells apart: a step or a drift at one station.

:class:`~detectors.signals.shift.FaultScreen` catches what one series shows by itself (stuck,
impossible, unit slips, spike bursts). A *step* (an offset after maintenance, a
recalibration) or a *drift* (a slowly failing cell) looks like the environment at first
sight, and a local pollution incident also shows at one station only. Two signs tell a
fault apart, and this screen acts on either only when it is strong:

* **a step beside a quiet twin** (``step``): the station's hourly means jump by
  ``SHIFT_Z`` sd or more at once (the hours before within ``PRE_Z``, the level reached in
  the first two hours), then stay flat with the noise they had before, for ``TWIN_MIN_H``
  hours, while every co-located twin (another station of the same metric in the same
  region, warmed up, reporting) stays quiet (hourly means within ``TWIN_QUIET_Z`` sd, their
  mean within ``TWIN_MEAN_Z``). Weather and incidents move the stations of one place
  together; an instrument moves alone. A recalibration is a step too (and its return step
  ends the verdict).
* **a drift slower than any incident** (``drift``): over the last ``DRIFT_H`` hours the
  hourly means rose from normal (under ``DRIFT_START_Z``) steadily (every quarter of the
  window higher than the one before by ``DRIFT_STEP`` of the whole rise, none by more than
  ``1 - 2 * DRIFT_STEP`` of it) along a straight line: to ``SHIFT_Z`` sd beside a quiet
  twin, or alone to ``DRIFT_ALONE_Z`` sd (R^2 >= ``DRIFT_ALONE_R2``) where the city's
  stations of the metric are known not to rise. Incident onsets (a step to a 6 h ramp, an
  exponential rise, two stages) reach their plateau well within that; a night-only source
  goes up and down.

Nothing is judged while the city's median shift of the metric is ``COMMON_MAX_Z`` or more.
A station without a twin and with an incident-like shift (an onset, then a plateau) is
never flagged. A verdict lasts as long as the shift (hourly means at ``HOLD_Z`` sd or
more, the same sign); a twin that starts to show the shift too ends it.

The input is the residual of each reading against the station's own expectation (the
seasonal one of :class:`~detectors.signals.shift.SustainedShift`); this screen standardises
hourly means of it by their spread learned on quiet hours.

>>> import random
>>> rng = random.Random(1)
>>> site = ColocatedSite("r1", "pm25")
>>> H = 3600.0
>>> for h in range(120):  # two stations, four quiet days, then "a" steps up by 6 sd
...     off = 6.0 if h >= 96 else 0.0
...     ka = site.observe("a", off + rng.gauss(0, 1), h * H)
...     kb = site.observe("b", rng.gauss(0, 1), h * H + 60)
>>> ka, kb
('step', None)
>>> lone = ColocatedSite("r2", "pm25")
>>> for h in range(120):  # a lone station with the same step: an incident, maybe
...     k = lone.observe("a", (6.0 if h >= 96 else 0.0) + rng.gauss(0, 1), h * H)
>>> print(k)
None
"""

from __future__ import annotations

import math
from array import array
from itertools import pairwise

HOUR = 3600.0
#: fault kinds this screen reports (beside :data:`detectors.signals.shift.FAULT_KINDS`)
STATION_FAULT_KINDS = ("drift", "step")
#: an hourly mean this many sd off starts a shift; one at HOLD_Z or more keeps it going
SHIFT_Z = 4.0
HOLD_Z = 2.0
#: a step: the hours before it within PRE_Z sd, its first two hours at STEP_FIRST of its
#: level or more, then flat (hourly means within STEP_FLAT of the level, or STEP_FLAT_Z sd:
#: the noise it had), for TWIN_MIN_H hours while the twins stay quiet
PRE_Z = 2.0
STEP_FIRST = 0.8
STEP_FLAT = 0.25
STEP_FLAT_Z = 3.0
#: ... and its hourly means (after the first) spread no more than STEP_NOISE times those
#: of the STEP_NOISE_H hours before it, plus a quarter of an sd
STEP_NOISE = 1.5
STEP_NOISE_H = 12
TWIN_MIN_H = 8
#: a twin is quiet when every hourly mean of it over the shift is within TWIN_QUIET_Z sd
#: and their mean within TWIN_MEAN_Z; it needs TWIN_MIN_BINS of them to be judged
TWIN_QUIET_Z = 3.0
TWIN_MEAN_Z = 1.0
TWIN_MIN_BINS = 2
#: a twin must have reported within this long to count
TWIN_MAX_AGE_S = 4 * HOUR
#: a drift is judged over the last DRIFT_H hours (quarters of it): it starts within
#: DRIFT_START_Z sd, rises by a share of DRIFT_STEP of the whole rise in every quarter
#: (no quarter takes more than 1 - 2 * DRIFT_STEP of it: no onset then plateau), fits a
#: straight line; with a quiet twin to SHIFT_Z sd (R^2 >= DRIFT_R2), alone to DRIFT_ALONE_Z
#: (R^2 >= DRIFT_ALONE_R2)
DRIFT_H = 36
DRIFT_START_Z = 1.0
DRIFT_STEP = 0.2
DRIFT_R2 = 0.8
DRIFT_ALONE_Z = 5.0
DRIFT_ALONE_R2 = 0.9
#: the city's median shift (peers' z) below which a rise can be one station's drift
COMMON_MAX_Z = 1.0
#: hourly means a station learns its spread from before it is judged
WARM_BINS = 48
#: the spread of hourly means: 1.4826 times the median absolute hourly mean of the last
#: this many hours not under a verdict (robust: a fault or an incident of hours barely
#: widens it, and a spread learned too small early on is not locked in)
SPREAD_HOURS = 7 * 24


class StationTrack:
    """One station's hourly means of residual, standardised (the last ``DRIFT_H``)."""

    __slots__ = ("bin_h", "bin_n", "bin_sum", "hist", "hist_i", "hist_n", "kind", "pre",
                 "run_h", "run_sign", "spread", "t_last", "u", "u_h")

    def __init__(self) -> None:
        self.bin_h = -1  # the hour being summed
        self.bin_sum = 0.0
        self.bin_n = 0
        # raw hourly means not under a verdict, a ring; their robust spread (0: none yet)
        self.hist = array("f", [0.0]) * SPREAD_HOURS
        self.hist_i = 0
        self.hist_n = 0
        self.spread = 0.0
        self.u = array("d", [math.nan]) * DRIFT_H  # standardised hourly means, newest last
        self.u_h = -1  # the hour of u[-1]
        self.run_h = -1  # the first hour of the current shift (-1: none)
        self.run_sign = 0.0
        self.pre = math.nan  # the mean of the (up to) three hourly means before the shift
        self.kind: str | None = None
        self.t_last = -math.inf

    @property
    def warm(self) -> bool:
        return self.hist_n >= WARM_BINS and self.spread > 0.0

    def since(self, h0: int) -> list[float]:
        """Standardised hourly means from hour ``h0`` on (the ones kept)."""
        lo = max(0, DRIFT_H - 1 - (self.u_h - h0))
        return [v for v in self.u[lo:] if v == v]

    def close(self) -> None:
        """Close the hour being summed: standardise its mean, follow the shift."""
        m = self.bin_sum / self.bin_n
        h = self.bin_h
        z = m / self.spread if self.warm else math.nan
        # hours under a verdict never teach the spread (a median: a shift of hours barely
        # moves it, and one learned too small early on still grows)
        if self.kind is None:
            self.hist[self.hist_i] = abs(m)
            self.hist_i = (self.hist_i + 1) % SPREAD_HOURS
            self.hist_n = min(self.hist_n + 1, SPREAD_HOURS)
            kept = sorted(self.hist[:self.hist_n])
            self.spread = 1.4826 * kept[len(kept) // 2]
        if self.u_h < 0:
            self.u_h = h
        gap = min(h - self.u_h, DRIFT_H)
        if gap > 0:
            self.u[:-gap] = self.u[gap:]
            for i in range(DRIFT_H - gap, DRIFT_H):
                self.u[i] = math.nan
            self.u_h = h
        before = [v for v in self.u[-4:-1] if v == v]
        self.u[-1] = z
        if z != z:
            return
        if self.run_h >= 0 and z * self.run_sign >= HOLD_Z:
            return
        self.run_h, self.run_sign, self.kind = -1, 0.0, None
        if abs(z) >= SHIFT_Z:
            self.run_h, self.run_sign = h, math.copysign(1.0, z)
            self.pre = sum(before) / len(before) if before else math.nan

    def in_shift(self, sign: float) -> bool:
        return self.run_h >= 0 and self.run_sign == sign

    def step(self) -> bool:
        """Is the current shift a step: normal before, at its level at once, then flat with
        the noise it had before (a plume comes and goes; an offset keeps the noise)?"""
        run = [v * self.run_sign for v in self.since(self.run_h)]
        if len(run) < 3 or self.pre != self.pre or abs(self.pre) >= PRE_Z:
            return False
        level = sorted(run)[len(run) // 2]
        if level < SHIFT_Z or max(run[:2]) < STEP_FIRST * level:
            return False
        flat = max(STEP_FLAT_Z, STEP_FLAT * level)
        if any(abs(v - level) > flat for v in run[1:]):
            return False
        before = [v for v in self.u[:DRIFT_H - 1 - (self.u_h - self.run_h)] if v == v]
        before = before[-STEP_NOISE_H:]
        return len(before) >= 3 and _sd(run[1:]) <= STEP_NOISE * _sd(before) + 0.25


def _sd(vals: list[float]) -> float:
    n = len(vals)
    if n < 2:
        return 0.0
    m = sum(vals) / n
    return math.sqrt(sum((v - m) ** 2 for v in vals) / (n - 1))


def _r2(vals: list[float]) -> float:
    """R^2 of a straight line through ``vals`` (NaN where missing) against their index; 0
    for a falling or flat line."""
    pts = [(float(i), v) for i, v in enumerate(vals) if v == v]
    n = len(pts)
    if n < 3:
        return 0.0
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    syy = sum((p[1] - my) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    return sxy * sxy / (sxx * syy) if sxx > 0 and syy > 0 and sxy > 0 else 0.0


def drifting(u: list[float], sign: float, top_z: float, r2: float) -> bool:
    """Do hourly means ``u`` (oldest first, NaN where missing) rise steadily in the
    direction ``sign`` from normal to ``top_z`` sd or more, along a line (R^2 >= ``r2``)?

    >>> line = [0.25 * (i - 4) for i in range(36)]
    >>> drifting(line, 1.0, 5.0, 0.9), drifting(line[::-1], 1.0, 5.0, 0.9)
    (True, False)
    >>> ramp = [0.0] * 12 + [6.0 * min(1.0, i / 6) for i in range(24)]  # onset, plateau
    >>> drifting(ramp, 1.0, 5.0, 0.8)
    False
    """
    q = len(u) // 4
    quarters = []
    for k in range(4):
        part = [v * sign for v in u[k * q:(k + 1) * q] if v == v]
        if len(part) < max(2, q // 2):
            return False
        quarters.append(sum(part) / len(part))
    rise = quarters[3] - quarters[0]
    if abs(quarters[0]) >= DRIFT_START_Z or quarters[3] < top_z:
        return False
    if any(not DRIFT_STEP * rise <= b - a <= (1.0 - 2.0 * DRIFT_STEP) * rise
           for a, b in pairwise(quarters)):
        return False
    return _r2([v * sign for v in u]) >= r2


class ColocatedSite:
    """The stations of one metric in one region (see the module docstring).

    ``observe(station, residual, t, common)`` takes one reading's residual against the
    station's expectation and the city's median shift of the metric (the peers' z; NaN
    when unknown, which rules out a drift judged alone) and returns the fault kind the
    station is under (``step``, ``drift``) or None. Readings must come in event-time
    order per station; a reading from an hour already closed is not binned.
    """

    __slots__ = ("metric", "region", "tracks")

    def __init__(self, region: str, metric: str) -> None:
        self.region = region
        self.metric = metric
        self.tracks: dict[str, StationTrack] = {}

    def kind(self, station: str) -> str | None:
        tr = self.tracks.get(station)
        return None if tr is None else tr.kind

    def observe(self, station: str, residual: float, t: float,
                common: float = math.nan) -> str | None:
        tr = self.tracks.get(station)
        if tr is None:
            tr = self.tracks[station] = StationTrack()
        if not math.isfinite(residual) or not math.isfinite(t):
            return tr.kind
        h = int(t // HOUR)
        if h < tr.bin_h:  # late for its hour
            return tr.kind
        if h > tr.bin_h:
            if tr.bin_n:
                tr.close()
                self._judge(station, tr, common)
            tr.bin_h, tr.bin_sum, tr.bin_n = h, 0.0, 0
        tr.bin_sum += residual
        tr.bin_n += 1
        tr.t_last = max(tr.t_last, t)
        return tr.kind

    def _twins(self, station: str, t: float) -> list[StationTrack]:
        return [o for sid, o in self.tracks.items()
                if sid != station and o.warm and t - o.t_last <= TWIN_MAX_AGE_S]

    def _judge(self, station: str, tr: StationTrack, common: float) -> None:
        if tr.run_h < 0:
            return
        sign = tr.run_sign
        twins = self._twins(station, tr.t_last)
        # a twin that shows the same shift: the place, not the instrument
        if any(o.in_shift(sign) for o in twins):
            tr.kind = None
            return
        if tr.kind == "step":  # a step stands on its twins' quiet
            if not _quiet(tr.run_h, twins):
                tr.kind = None
            return
        if tr.kind is not None or common >= COMMON_MAX_Z:  # (a city-wide rise)
            return
        if tr.bin_h - tr.run_h + 1 >= TWIN_MIN_H and _quiet(tr.run_h, twins) and tr.step():
            tr.kind = "step"
        elif _quiet(tr.u_h - DRIFT_H + 1, twins):
            if drifting(list(tr.u), sign, SHIFT_Z, DRIFT_R2):
                tr.kind = "drift"
        elif common == common and drifting(list(tr.u), sign, DRIFT_ALONE_Z, DRIFT_ALONE_R2) \
                and not any(o.since(tr.u_h - DRIFT_H + 1) for o in twins):
            # alone: only where the city's stations are known not to rise with it
            tr.kind = "drift"


def _quiet(h0: int, twins: list[StationTrack]) -> bool:
    """Did every twin with enough hourly means from hour ``h0`` on stay quiet, and at
    least one have enough?"""
    judged = 0
    for o in twins:
        vals = o.since(h0)
        if len(vals) < TWIN_MIN_BINS:
            continue
        if max(abs(v) for v in vals) > TWIN_QUIET_Z or abs(sum(vals) / len(vals)) > TWIN_MEAN_Z:
            return False
        judged += 1
    return judged > 0


__all__ = ["STATION_FAULT_KINDS", "ColocatedSite", "StationTrack", "drifting"]
