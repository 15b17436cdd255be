""":class:`FaultScreen` tells a faulty station from the environment: stuck values, readings
no instrument of that series can give (negative where it never was), and unit slips (a
level a thousand times off). Faults go to operators, not into incident evidence.

It runs beside :class:`~detectors.signals.shift.SustainedShift` on every sensor series
(and is exported by :mod:`detectors.signals.shift`)."""

from __future__ import annotations

import math
from array import array

from detectors.base import Score

HOUR = 3600.0
#: fault kinds a :class:`FaultScreen` reports
FAULT_KINDS = ("stuck", "impossible", "unit_slip", "erratic")
#: readings an erratic-spike check looks back over
ERRATIC_N = 6


class FaultScreen:
    """Flags readings that show a faulty instrument rather than the environment.

    * ``stuck``: ``stuck_n`` or more identical readings in a row, on a series that varied
      before;
    * ``impossible``: a negative reading on a series that was never negative;
    * ``unit_slip``: a reading about 1000 times the learned level (ug/m3 sent as mg/m3; a
      thousandth is not told apart from a reading near zero, which noise can give);
    * ``erratic``: a spike of ``spike_ratio`` times the level or more while the last
      readings jump between spikes and the level (a burst of spikes, not a plume).

    ``score_one`` is 1 for a faulty reading, else 0; ``explain_one`` names nothing (its
    p-value is 0 for a fault); :attr:`fault` is the current fault kind (or None) and stays
    set for ``hold_s`` of event time after the last faulty reading.

    >>> fs = FaultScreen()
    >>> for i in range(30):
    ...     fs.learn_one(10.0 + i % 3, i * 60.0)
    >>> fs.score_one(-4.0, 1800.0), fs.score_one(12000.0, 1800.0), fs.score_one(11.0, 1800.0)
    (1.0, 1.0, 0.0)
    """

    __slots__ = ("_last", "_level", "_min", "_ratios", "_run", "_t_fault", "_varied", "fault",
                 "hold_s", "seed", "spike_ratio", "stuck_n")

    def __init__(self, stuck_n: int = 6, hold_s: float = 6 * HOUR, spike_ratio: float = 5.0,
                 seed: int = 0) -> None:
        self.stuck_n = stuck_n
        self.hold_s = hold_s
        self.spike_ratio = spike_ratio
        self.seed = seed
        # the last ERRATIC_N readings as multiples of the level (0: not seen)
        self._ratios = array("f", [0.0]) * ERRATIC_N
        self._last = math.nan
        self._run = 0
        self._varied = False
        self._min = math.inf
        self._level = math.nan
        self._t_fault = -math.inf
        self.fault: str | None = None

    def kind(self, x: float, t: float = 0.0) -> str | None:
        """The fault this reading shows, if any (state unchanged)."""
        if not math.isfinite(x):
            return None
        if self._varied and x == self._last and self._run + 1 >= self.stuck_n:
            return "stuck"
        if x < 0 <= self._min and self._min < math.inf:
            return "impossible"
        lvl = self._level
        if lvl == lvl and lvl > 0 and x > 0:
            ratio = x / lvl
            if 300 <= ratio <= 3000:
                return "unit_slip"
            if ratio >= self.spike_ratio and self._erratic():
                return "erratic"
        return None

    def _erratic(self) -> bool:
        """Among the last readings, both spikes (``spike_ratio`` times the level or more)
        and readings back near the level: a burst of spikes, not a plume (which rises and
        stays)."""
        r = self._ratios
        high = sum(1 for v in r if v >= self.spike_ratio)
        low = sum(1 for v in r if 0.0 < v < 2.0)
        return high >= 1 and low >= 2 and r[-1] < 2.0

    def explain_one(self, x: float, t: float = 0.0) -> Score:
        k = self.kind(x, t)
        return Score(x, self._level, 0.0 if k else 1.0)

    def score_one(self, x: float, t: float = 0.0) -> float:
        return 1.0 if self.kind(x, t) else 0.0

    def learn_one(self, x: float, t: float = 0.0) -> None:
        if not math.isfinite(x):
            return
        k = self.kind(x, t)
        if k is not None:
            self.fault = k
            self._t_fault = t
        elif self.fault is not None and t - self._t_fault > self.hold_s:
            self.fault = None
        if x == self._last:
            self._run += 1
        else:
            if self._last == self._last:
                self._varied = True
            self._run = 1
            self._last = x
        lvl = self._level
        if lvl == lvl and lvl > 0:
            r = self._ratios
            r[:-1] = r[1:]
            r[-1] = max(x / lvl, 1e-6)
        if k is None and not (lvl == lvl and lvl > 0 and x / lvl >= self.spike_ratio):
            self._min = min(self._min, x)
            self._level = x if lvl != lvl else lvl + 0.05 * (x - lvl)

    def faulty(self, t: float) -> bool:
        """Is the station under a fault at ``t`` (a faulty reading within ``hold_s``)?"""
        return self.fault is not None and t - self._t_fault <= self.hold_s


__all__ = ["ERRATIC_N", "FAULT_KINDS", "FaultScreen"]
