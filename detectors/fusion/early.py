"""Early firing: what the correlator would publish if the anomalies that have arrived were
all the evidence there is (the Dataflow model's early trigger).

The authoritative :class:`~detectors.fusion.correlation.Correlator` takes anomalies in
event-time order, once the watermark says none earlier can still come: up to the allowed
lateness after they happened. Early firing does not wait. When an anomaly of a region
arrives, a scratch copy of that region's correlator state (:meth:`Correlator.fork`) takes
every anomaly of the region that has arrived but is not yet final, in event-time order,
and whatever incidents it opens or extends are published at once. When the watermark later
passes those anomalies, the authoritative correlator reaches the same versions, which the
:class:`~detectors.fusion.ledger.Ledger` recognises and does not publish again; where
arrival order made a difference, its versions follow as updates, and early warnings it
never produces are withdrawn.

The city-wide view an early firing consults (:class:`ArrivedCity`) is the authoritative
one plus every city-wide copy that has arrived and is not final yet, each at its own event
time, so a kind is common at ``t`` exactly when the authoritative view will say so.

>>> from detectors.base import Finding
>>> from detectors.fusion.correlation import Correlator
>>> c = Correlator(window_s=6 * 3600)
>>> early = EarlyFiring(c)
>>> f = lambda i, src, dep, kind, t: Finding(str(i), src, dep, "r1", kind, kind, "d",
...                                           5.0, 1.0, 1e-6, t)
>>> early.add(f(1, "env", "eco", "env:water_cod", 1000.0))
>>> early.fire(c, "r1")
[]
>>> early.add(f(2, "complaint", "hotline", "complaint:odor", 2000.0))
>>> [(t, v.status) for t, v in early.fire(c, "r1")]    # fired on arrival
[(2000.0, 'new')]
>>> c.open_incidents()                                 # the authoritative state: untouched
0
"""

from __future__ import annotations

import bisect
import math

from detectors.base import Finding
from detectors.fusion.citywide import CityView
from detectors.fusion.correlation import Correlator, IncidentVersion
from detectors.fusion.feedback import Decision

#: the statuses an early firing publishes (closing an incident waits for event time)
EARLY_STATUSES = frozenset({"new", "update"})


class ArrivedCity(CityView):
    """The authoritative city-wide view (read, never written) plus the city-wide copies
    that have arrived but are not final, each region's at all their event times (anomalies
    arrive out of order: keeping only the latest would miss a region at an earlier ``t``).
    ``at`` is the (event time, id) of the anomaly being taken: copies that sort after it
    do not count yet, as in the authoritative view, which takes them in that order. Its
    conditions are never published: only :meth:`is_common` matters."""

    def __init__(self, base: CityView) -> None:
        super().__init__(base.min_regions, base.window_s, base.market_window_s, base.quiet_s)
        self.base = base
        self.at: tuple[float, str] = (math.inf, "")
        # kind -> region -> sorted (event time, anomaly id)
        self._times: dict[str, dict[str, list[tuple[float, str]]]] = {}

    def add(self, f: Finding) -> None:  # type: ignore[override]
        times = self._times.setdefault(f.kind, {}).setdefault(f.origin, [])
        bisect.insort(times, (f.t, f.anomaly_id))

    def region_set(self, kind: str, t: float) -> set[str]:
        w = self._window(kind)
        upto = self.at if self.at[0] == t else (t, "\U0010ffff")
        out = self.base.region_set(kind, t)
        for region, times in self._times.get(kind, {}).items():
            i = bisect.bisect_left(times, (t - w, ""))
            if i < len(times) and times[i] < upto:
                out.add(region)
        return out

    def advance(self, t: float) -> None:
        return None

    def final(self, until: float) -> None:
        """The authoritative view has taken every copy older than ``until``."""
        for kind, by_region in list(self._times.items()):
            for region, times in list(by_region.items()):
                del times[: bisect.bisect_left(times, (until, ""))]
                if not times:
                    del by_region[region]
            if not by_region:
                del self._times[kind]


class EarlyFiring:
    """The anomalies of one correlator's partition that have arrived and are not yet final,
    by region, and the city-wide view of everything that has arrived."""

    def __init__(self, correlator: Correlator) -> None:
        self.city = ArrivedCity(correlator.city)
        # region -> (event time, buffer key, anomaly or decision), as the buffer holds them
        self._held: dict[str, list[tuple[float, str, Finding | Decision]]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._held.values())

    def add(self, f: Finding) -> None:
        """An anomaly arrived (a city-wide copy goes to the city view only)."""
        if f.city:
            self.city.add(f)
        else:
            self._held.setdefault(f.region, []).append((f.t, f.anomaly_id, f))

    def decide(self, d: Decision, region: str, key: str) -> None:
        """A duty officer's decision on a warning of ``region`` arrived (``key``: its key
        in the reorder buffer, which orders it among anomalies of the same time)."""
        self._held.setdefault(region, []).append((d.at, key, d))

    def final(self, until: float) -> None:
        """The authoritative correlator has taken everything older than ``until``."""
        self.city.final(until)
        for region in list(self._held):
            keep = [h for h in self._held[region] if h[0] >= until]
            if keep:
                self._held[region] = keep
            else:
                del self._held[region]

    def fire(self, c: Correlator, region: str) -> list[tuple[float, IncidentVersion]]:
        """The versions ``region``'s held anomalies and decisions lead to on top of ``c``'s
        state, each with the event time of what caused it; ``c`` is not changed. A
        decision's own version goes out whatever its status (a dismissal cancels at once);
        quiet incidents resolve only in event time, never early."""
        held = sorted((h for h in self._held.get(region, ())
                       if isinstance(h[2], Decision) or not c.seen(h[1])),
                      key=lambda h: h[:2])
        if not held:
            return []
        fork = c.fork(region, self.city, any(isinstance(h[2], Decision) for h in held))
        out: list[tuple[float, IncidentVersion]] = []
        for t, key, item in held:
            self.city.at = (t, key)
            if isinstance(item, Decision):
                fork.advance(t)  # (what resolves quiet by then does so in event time)
                out.extend((t, v) for v in fork.feedback(item, region))
            else:
                out.extend((t, v) for v in fork.process(item) if v.status in EARLY_STATUSES)
        self.city.at = (math.inf, "")
        return out


__all__ = ["EARLY_STATUSES", "ArrivedCity", "EarlyFiring"]
