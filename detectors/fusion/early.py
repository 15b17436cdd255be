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

The city-wide view an early firing consults has taken every city-wide copy that has
arrived, in arrival order (the authoritative one takes them in event-time order).

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

from detectors.base import Finding
from detectors.fusion.correlation import Correlator, IncidentVersion

#: the statuses an early firing publishes (closing an incident waits for event time)
EARLY_STATUSES = frozenset({"new", "update"})


class EarlyFiring:
    """The anomalies of one correlator's partition that have arrived and are not yet final,
    by region, and the city-wide view of everything that has arrived."""

    def __init__(self, correlator: Correlator) -> None:
        self.city = correlator.city.fork()
        self._held: dict[str, list[Finding]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._held.values())

    def add(self, f: Finding) -> None:
        """An anomaly arrived (a city-wide copy goes to the city view only)."""
        if f.city:
            self.city.add(f)
            self.city.pending.clear()  # a scratch view: its conditions are never published
        else:
            self._held.setdefault(f.region, []).append(f)

    def final(self, until: float) -> None:
        """The authoritative correlator has taken every anomaly older than ``until``."""
        for region in list(self._held):
            keep = [g for g in self._held[region] if g.t >= until]
            if keep:
                self._held[region] = keep
            else:
                del self._held[region]

    def clear(self) -> None:
        self._held.clear()

    def fire(self, c: Correlator, region: str) -> list[tuple[float, IncidentVersion]]:
        """The versions ``region``'s held anomalies lead to on top of ``c``'s state, each
        with the event time of the anomaly that caused it; ``c`` is not changed."""
        held = sorted((g for g in self._held.get(region, ()) if not c.seen(g.anomaly_id)),
                      key=lambda g: (g.t, g.anomaly_id))
        if not held:
            return []
        fork = c.fork(region, self.city)
        out: list[tuple[float, IncidentVersion]] = []
        for g in held:
            out.extend((g.t, v) for v in fork.process(g) if v.status in EARLY_STATUSES)
        self.city.pending.clear()
        return out


__all__ = ["EARLY_STATUSES", "EarlyFiring"]
