"""The lifecycle of a limit pre-warning of one station-metric: when a
:class:`~detectors.signals.forecast.LimitForecast` projects the series across its
regulatory limit before any reading is past it, a pre-warning opens (``new``); it is
``update``d when the projected crossing moves or its certainty changes, and when the limit
is actually crossed; it is ``resolved`` once the series is back on the safe side after a
crossing, and ``cancelled`` when the forecast is withdrawn before any crossing (the
projection no longer reaches the limit for ``hold`` readings in a row).

Pure logic, in event time: :meth:`PreWarning.step` takes one reading's verdict and
forecast and returns the version to publish, if any; the wire record is made by
:mod:`streams.pipeline.prewarnings`.

>>> from detectors.signals.forecast import Forecast
>>> life = PreWarning()
>>> ahead = Forecast(t=0.0, expected=110.0, crossing_in_s=3600.0, crossing_at=3600.0,
...                  limit=100.0, p_exceed=0.8)
>>> life.step(ahead, past=False).status
'new'
>>> life.step(Forecast(900.0, 105.0, 2700.0, 3600.0, 100.0, 0.8), past=False) is None
True
>>> life.step(Forecast(3600.0, 120.0, None, None, 100.0, 0.99), past=True).status
'update'
>>> clear = Forecast(7200.0, 60.0, None, None, 100.0, 0.0)
>>> life.step(clear, past=False) is None, life.step(clear, past=False).status
(True, 'resolved')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from detectors.signals.forecast import Forecast

#: the scenario of a pre-warning (its CAP event, category and instruction are in
#: ``streams.publish.cap_scenarios``)
SCENARIO = "limit_forecast"
#: the detector named in a pre-warning's evidence
DETECTOR = "limit_forecast"

PreStatus = Literal["new", "update", "resolved", "cancelled"]
PreCertainty = Literal["Likely", "Possible"]


def certainty_of(p_exceed: float) -> PreCertainty:
    """CAP certainty of a forecast: ``Likely`` (p > ~50 %) or ``Possible``."""
    return "Likely" if p_exceed > 0.5 else "Possible"


@dataclass(frozen=True, slots=True)
class PreVersion:
    """One version of a pre-warning: what :meth:`PreWarning.step` asks to publish."""

    episode: int  # the station-metric's pre-warnings so far, this one included
    version: int
    status: PreStatus
    opened: float  # event time the pre-warning opened
    forecast: Forecast  # the forecast at this version's reading
    crossed_at: float | None  # first reading past the limit in this episode, if any
    certainty: PreCertainty


@dataclass(slots=True)
class PreWarning:
    """Mutable lifecycle of the pre-warnings of one station-metric (checkpointed).

    ``p_open``: the forecast's probability of being past the limit at the horizon a new
    pre-warning needs (besides a projected crossing), on ``confirm`` readings in a row (the
    measured trade-off: docs/detectors.md, "Limit pre-warnings"); ``p_keep``: below it, and
    with no crossing projected, a reading counts toward withdrawal; ``hold``: readings in a
    row that withdraw (before a crossing) or resolve (after one); ``move_s``: how far the
    projected crossing must move for an update.
    """

    p_open: float = 0.8
    p_keep: float = 0.2
    confirm: int = 1
    hold: int = 2
    move_s: float = 1800.0
    armed: int = 0  # readings in a row that would open a pre-warning
    episode: int = 0
    version: int = 0
    opened: float = math.nan  # NaN: no pre-warning open
    crossing_at: float = math.nan  # the projected crossing last published
    certainty: str = ""
    crossed_at: float = math.nan  # NaN: not crossed in this episode
    clear_run: int = 0

    @property
    def active(self) -> bool:
        return not math.isnan(self.opened)

    def step(self, f: Forecast, past: bool) -> PreVersion | None:
        """Take the forecast ``f`` made after a reading (``past``: that reading is past the
        limit); the version to publish, or None."""
        if not self.active:
            if past or f.crossing_at is None or f.p_exceed < self.p_open:
                self.armed = 0
                return None
            self.armed += 1
            if self.armed >= self.confirm:
                self.armed = 0
                self.episode += 1
                self.version = 0
                self.opened = f.t
                self.crossed_at = math.nan
                self.clear_run = 0
                return self._emit("new", f)
            return None
        if past:
            self.clear_run = 0
            if math.isnan(self.crossed_at):
                self.crossed_at = f.t
                return self._emit("update", f)
            return None
        if not math.isnan(self.crossed_at):  # crossed, now back on the safe side
            return self._clear(f, "resolved")
        if f.crossing_at is not None or f.p_exceed >= self.p_keep:
            self.clear_run = 0
            if f.crossing_at is not None and (
                    abs(f.crossing_at - self.crossing_at) >= self.move_s
                    or certainty_of(f.p_exceed) != self.certainty):
                return self._emit("update", f)
            return None
        return self._clear(f, "cancelled")

    def _clear(self, f: Forecast, status: PreStatus) -> PreVersion | None:
        if f.crossing_at is not None:
            self.clear_run = 0
            return None
        self.clear_run += 1
        if self.clear_run < self.hold:
            return None
        out = self._emit(status, f)
        self.opened = math.nan
        self.crossing_at = math.nan
        self.clear_run = 0
        return out

    def _emit(self, status: PreStatus, f: Forecast) -> PreVersion:
        self.version += 1
        if f.crossing_at is not None:
            self.crossing_at = f.crossing_at
        certainty = certainty_of(f.p_exceed)
        if status in ("new", "update"):
            self.certainty = certainty
        crossed = None if math.isnan(self.crossed_at) else self.crossed_at
        return PreVersion(self.episode, self.version, status, self.opened, f, crossed,
                          certainty)


__all__ = ["DETECTOR", "SCENARIO", "PreCertainty", "PreStatus", "PreVersion", "PreWarning",
           "certainty_of"]
