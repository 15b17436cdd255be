"""Station health: is each sensor series reporting as it should?

Per series (a station's metric), in event time: its **cadence**, learned as the median of
its recent gaps between readings; the readings **received** and those **missing** (a gap
of several cadences counts the readings that should have come in it); **silence** (no
reading for ``silent_after`` cadences while its partition's event time moves on);
**stuck** values (the same value ``stuck_run`` times running, where the series used to
vary); and the instrument **faults** the fault screen flagged. The status of a series is
the worst that applies: ``faulty`` (its last reading was screened out as a fault),
``silent``, ``stuck``, ``ok``, or ``learning`` before its cadence is known.

Silence is judged in event time against ``now``, the newest event time of the partition:
a station that stops while the others go on is silent; a whole feed that stops is the
source-quiet alert's job.

>>> h = StationHealth()
>>> for i in range(10):
...     h.learn_one("S-1", "pm25", 30.0 + i % 3, 900.0 * i)
>>> h.status("S-1", "pm25", now=900.0 * 9)
'ok'
>>> h.status("S-1", "pm25", now=900.0 * 20)    # eleven cadences later, nothing came
'silent'
>>> h.learn_one("S-1", "pm25", 31.0, 900.0 * 20)
>>> h.missing                                    # the ten readings the gap swallowed
10
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

#: the statuses, most severe first (one definition: metrics and dashboards use it)
STATUSES = ("faulty", "silent", "stuck", "ok", "learning")
#: recent gaps the cadence is the median of
GAPS = 9


@dataclass(slots=True)
class _Series:
    first_t: float
    last_t: float
    last_value: float
    received: int = 1
    missing: int = 0
    run: int = 1  # readings in a row with the same value
    varied: bool = False  # the value has changed at least once
    fault: str = ""  # the fault kind of its last reading ("" when sound)
    gaps: list[float] = field(default_factory=list)

    @property
    def cadence(self) -> float:
        return statistics.median(self.gaps) if len(self.gaps) >= 3 else math.nan


class StationHealth:
    """Cadence, received, missing, silence, stuck values and faults per sensor series.

    Parameters: ``silent_after`` (cadences without a reading before a series is silent),
    ``stuck_run`` (identical readings in a row of a series that used to vary),
    ``gap_tolerance`` (a gap longer than this many cadences loses readings)."""

    def __init__(self, silent_after: float = 3.0, stuck_run: int = 8,
                 gap_tolerance: float = 1.5) -> None:
        self.silent_after = silent_after
        self.stuck_run = stuck_run
        self.gap_tolerance = gap_tolerance
        self._series: dict[tuple[str, str], _Series] = {}
        self.missing = 0  # readings missing so far, all series

    def __len__(self) -> int:
        return len(self._series)

    def learn_one(self, station: str, metric: str, value: float, t: float,
                  fault: str | None = None) -> None:
        """A reading of ``station``'s ``metric`` at event time ``t`` (``fault``: the fault
        kind the screen gave it, None when sound)."""
        s = self._series.get((station, metric))
        if s is None:
            self._series[station, metric] = _Series(t, t, value, fault=fault or "")
            return
        s.fault = fault or ""
        if t <= s.last_t:  # late or repeated: counted, it says nothing of the cadence
            s.received += 1
            return
        gap, cadence = t - s.last_t, s.cadence
        if math.isfinite(cadence) and cadence > 0 and gap > self.gap_tolerance * cadence:
            lost = max(0, round(gap / cadence) - 1)
            s.missing += lost
            self.missing += lost
        s.gaps.append(gap)
        del s.gaps[:-GAPS]
        s.received += 1
        s.run = s.run + 1 if value == s.last_value else 1
        s.varied = s.varied or value != s.last_value
        s.last_t, s.last_value = t, value

    def status(self, station: str, metric: str, now: float) -> str:
        s = self._series.get((station, metric))
        return "learning" if s is None else self._status(s, now)

    def _status(self, s: _Series, now: float) -> str:
        cadence = s.cadence
        if s.fault:
            return "faulty"
        if not math.isfinite(cadence) or cadence <= 0:
            return "learning"
        if now - s.last_t > self.silent_after * cadence:
            return "silent"
        if s.varied and s.run >= self.stuck_run:
            return "stuck"
        return "ok"

    def expected(self, station: str, metric: str, now: float) -> float:
        """Readings the series should have sent from its first one up to ``now``."""
        s = self._series.get((station, metric))
        if s is None or not math.isfinite(s.cadence) or s.cadence <= 0:
            return math.nan
        return (now - s.first_t) / s.cadence + 1.0

    def summary(self, now: float) -> dict[str, int]:
        """Series per status at ``now``."""
        out = dict.fromkeys(STATUSES, 0)
        for s in self._series.values():
            out[self._status(s, now)] += 1
        return out

    def attention(self, now: float, n: int) -> list[tuple[str, str, str, float]]:
        """The ``n`` series most in need of attention: (station, metric, status, share of
        expected readings missing), worst status first, then most missing (``ok`` series
        too, after the others: the view shows the least complete even when all report)."""
        rows = []
        for (station, metric), s in self._series.items():
            st = self._status(s, now)
            if st == "learning":
                continue
            exp = self.expected(station, metric, now)
            share = 1.0 - s.received / exp if math.isfinite(exp) and exp > 0 else 0.0
            rows.append((STATUSES.index(st), -share, station, metric, st, max(0.0, share)))
        rows.sort()
        return [(r[2], r[3], r[4], r[5]) for r in rows[:n]]


def merge_health(views: list[tuple[StationHealth, float]], n: int
                 ) -> tuple[dict[str, int], int, list[tuple[str, str, str, float]]]:
    """Several partitions' health, each judged at its own ``now``: series per status,
    readings missing, and the ``n`` series most in need of attention."""
    summary = dict.fromkeys(STATUSES, 0)
    worst: list[tuple[str, str, str, float]] = []
    for h, now in views:
        for status, k in h.summary(now).items():
            summary[status] += k
        worst.extend(h.attention(now, n))
    worst.sort(key=lambda r: (STATUSES.index(r[2]), -r[3]))
    return summary, sum(h.missing for h, _ in views), worst[:n]


__all__ = ["STATUSES", "StationHealth", "merge_health"]
