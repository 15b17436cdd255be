"""What has been published of each warning, so early and on-time firings of one incident
make one clean sequence of versions.

A correlator fires twice for the same evidence: *early*, when an anomaly arrives
(:mod:`detectors.fusion.early`), and *on time*, when the event-time watermark has passed it
and the authoritative correlator takes it in order. The ledger publishes a version only if
its content is new for that warning: the on-time firing of what was already published
early is silent. Published version numbers count what was published (1, 2, 3...), and a
``new`` that follows an earlier publication of the same id goes out as an ``update``, so a
reader never sees a silent rewrite.

An early warning whose id the on-time correlator does not produce by the time its
watermark passes the anomaly that opened it (arrival order made a different incident of the
same evidence, or none) is *retracted*: published once more as ``cancelled``, with an
explanation saying so.

>>> from detectors.fusion.versions import IncidentVersion
>>> v = IncidentVersion("w-1", 1, "new", "r1", "generic", "Minor", "Immediate", "Possible",
...                     7.0, 1e-7, ("a", "b"), 10.0, 20.0, (), "x")
>>> led = Ledger()
>>> led.publish(v, early_at=20.0).version    # fired early, at arrival
1
>>> led.publish(v) is None                     # the same content on time: silent
True
>>> led.retract(until=30.0)                    # confirmed on time: nothing to retract
[]
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, replace

from detectors.fusion.versions import IncidentVersion

#: warnings whose published contents are remembered (oldest forgotten first)
MAX_WARNINGS = 20_000

WITHDRAWN = ("Withdrawn: this early warning was raised on the evidence that had arrived; "
             "with all the evidence in event-time order it does not stand as an incident "
             "of its own.")


@dataclass(slots=True)
class _Published:
    number: int = 0  # versions published so far
    digests: dict[str, None] | None = None  # contents published (an ordered set)
    early_at: float | None = None  # event time of the anomaly that opened it early
    last: IncidentVersion | None = None  # kept until confirmed on time (to retract it)


def digest(v: IncidentVersion) -> str:
    """The content of a version, without its number (what a reader would see change)."""
    ev = ";".join(f"{g.anomaly_id}:{g.p_value:.6g}" for g in v.evidence)
    hist = ";".join(f"{e.decision.action}@{e.decision.at}:{e.accepted}" for e in v.history)
    text = "|".join((v.status, v.scenario, v.severity, v.urgency, v.certainty,
                     f"{v.score:.3f}", ",".join(v.departments), f"{v.first_seen:.3f}",
                     f"{v.last_seen:.3f}", ev, hist, v.explanation, v.bar_note or ""))
    return hashlib.sha1(text.encode()).hexdigest()[:20]


class Ledger:
    """Per warning id: the contents published, the last version number and, for a warning
    fired early and not yet confirmed on time, what to retract."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, _Published] = OrderedDict()
        self._early: dict[str, None] = {}  # fired early, not yet confirmed on time
        self.retracted = 0

    def __len__(self) -> int:
        return len(self._ids)

    def publish(self, v: IncidentVersion, early_at: float | None = None
                ) -> IncidentVersion | None:
        """``v`` renumbered for publication, or None if its content was published before.
        ``early_at``: fired early, on the arrival of the anomaly at that event time (None:
        on time, from the authoritative correlator, which confirms the id)."""
        e = self._ids.get(v.warning_id)
        if e is None:
            e = self._ids[v.warning_id] = _Published(early_at=early_at)
            if early_at is not None:
                self._early[v.warning_id] = None
            while len(self._ids) > MAX_WARNINGS:
                self._early.pop(self._ids.popitem(last=False)[0], None)
        if early_at is None:
            e.early_at, e.last = None, None
            self._early.pop(v.warning_id, None)
        d = digest(v)
        if e.digests is None:
            e.digests = {}
        if d in e.digests:
            return None
        e.digests[d] = None
        e.number += 1
        status = "update" if v.status == "new" and e.number > 1 else v.status
        out = replace(v, version=e.number, status=status)
        if e.early_at is not None:
            e.last = out
        return out

    def retract(self, until: float) -> list[IncidentVersion]:
        """Withdraw early warnings opened by an anomaly older than ``until`` (the
        authoritative correlator has taken everything before it) that it never produced."""
        out = []
        for wid in list(self._early):
            e = self._ids[wid]
            if e.early_at is not None and e.early_at < until:
                out.append(self._withdraw(wid, e))
        return out

    def retract_all(self) -> list[IncidentVersion]:
        """Withdraw every early warning not confirmed (end of input)."""
        return self.retract(float("inf"))

    def pending(self) -> int:
        """Early warnings not yet confirmed on time."""
        return len(self._early)

    def _withdraw(self, wid: str, e: _Published) -> IncidentVersion:
        assert e.last is not None
        del self._early[wid]
        e.number += 1
        v = replace(e.last, version=e.number, status="cancelled", urgency="Past",
                    explanation=f"{WITHDRAWN} {e.last.explanation}")
        e.early_at, e.last = None, None
        self.retracted += 1
        return v


__all__ = ["Ledger", "digest"]
