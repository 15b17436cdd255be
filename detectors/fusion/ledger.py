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

>>> from dataclasses import replace
>>> from detectors.fusion.versions import IncidentVersion
>>> v = IncidentVersion("w-1", 1, "new", "r1", "generic", "Minor", "Immediate", "Possible",
...                     7.0, 1e-7, ("a", "b"), 10.0, 20.0, (), "x")
>>> led = Ledger()
>>> led.publish(v, early_at=20.0).version    # fired early, at arrival
1
>>> led.publish(v) is None                     # the same content on time: silent
True
>>> led.retract(until=30.0)                    # confirmed on time: nothing to settle
[]
>>> w = replace(v, warning_id="w-2")
>>> led.publish(w, early_at=25.0).version      # fired early; never produced on time
1
>>> [(x.status, x.version) for x in led.retract(until=30.0)]
[('cancelled', 2)]
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, replace

from detectors.fusion.versions import IncidentVersion
from detectors.fusion.wording import without_action

#: warnings whose published contents are remembered (oldest forgotten first)
MAX_WARNINGS = 20_000

WITHDRAWN = ("Withdrawn: this early warning was raised on the evidence that had arrived; "
             "with all the evidence in event-time order it does not stand as an incident "
             "of its own.")


@dataclass(slots=True)
class _Published:
    number: int = 0  # versions published so far
    digests: dict[str, None] | None = None  # contents published (an ordered set)
    last: IncidentVersion | None = None  # the last version published
    last_digest: str = ""  # its digest
    # early versions not yet reached on time: (event time of their anomaly, digest)
    unconfirmed: list[tuple[float, str]] | None = None
    on_time: IncidentVersion | None = None  # the on-time correlator's latest version


def digest(v: IncidentVersion) -> str:
    """The content of a version, without its number (what a reader would see change)."""
    ev = ";".join(f"{g.anomaly_id}:{g.p_value:.6g}" for g in v.evidence)
    hist = ";".join(f"{e.decision.action}@{e.decision.at}:{e.accepted}" for e in v.history)
    text = "|".join((v.status, v.scenario, v.severity, v.urgency, v.certainty,
                     f"{v.score:.3f}", ",".join(v.departments), f"{v.first_seen:.3f}",
                     f"{v.last_seen:.3f}", ev, hist, v.explanation, v.bar_note or ""))
    return hashlib.sha1(text.encode()).hexdigest()[:20]


class Ledger:
    """Per warning id: the contents published, the last version published, the early
    versions the on-time correlator has not reached yet and its own latest version."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, _Published] = OrderedDict()
        self._early: dict[str, None] = {}  # ids with unconfirmed early versions
        self.retracted = 0

    def __len__(self) -> int:
        return len(self._ids)

    def publish(self, v: IncidentVersion, early_at: float | None = None
                ) -> IncidentVersion | None:
        """``v`` renumbered for publication, or None if a reader has it already.
        ``early_at``: fired early, on the arrival of the anomaly at that event time (None:
        on time, from the authoritative correlator).

        An early version is published unless its content was published before. An
        on-time version is silent if it reaches an early version (which it confirms) or
        repeats the last version published."""
        e = self._ids.get(v.warning_id)
        if e is None:
            e = self._ids[v.warning_id] = _Published(digests={}, unconfirmed=[])
            while len(self._ids) > MAX_WARNINGS:
                self._early.pop(self._ids.popitem(last=False)[0], None)
        assert e.digests is not None and e.unconfirmed is not None
        d = digest(v)
        if early_at is not None:
            if d in e.digests:
                return None
            e.unconfirmed.append((early_at, d))
            self._early[v.warning_id] = None
        else:
            e.on_time = v
            hit = next((i for i, (_, u) in enumerate(e.unconfirmed) if u == d), None)
            if hit is not None:  # reached what went out early: confirmed
                del e.unconfirmed[: hit + 1]
                self._settle(v.warning_id, e)
                return None
            if e.last is not None and e.last_digest == d:
                return None
        return self._out(e, v, d)

    def _out(self, e: _Published, v: IncidentVersion, d: str) -> IncidentVersion:
        assert e.digests is not None
        e.digests[d] = None
        e.number += 1
        status = "update" if v.status == "new" and e.number > 1 else v.status
        e.last = out = replace(v, version=e.number, status=status)
        e.last_digest = d
        return out

    def _settle(self, wid: str, e: _Published) -> None:
        if not e.unconfirmed:
            self._early.pop(wid, None)

    def retract(self, until: float) -> list[IncidentVersion]:
        """Settle early versions fired by anomalies older than ``until`` (the on-time
        correlator has taken everything before it) that it has not reached: a warning it
        never opened is withdrawn; one it holds gets its on-time version once more, if
        that is not the last one published."""
        out = []
        for wid in list(self._early):
            e = self._ids[wid]
            assert e.unconfirmed is not None
            keep = [(t, d) for t, d in e.unconfirmed if t >= until]
            if len(keep) == len(e.unconfirmed):
                continue
            e.unconfirmed = keep
            if keep:
                continue
            self._early.pop(wid)
            if e.on_time is None:
                out.append(self._withdraw(e))
            elif (d := digest(e.on_time)) != e.last_digest or e.last is None:
                out.append(self._out(e, e.on_time, d))
        return out

    def retract_all(self) -> list[IncidentVersion]:
        """Settle every early version (end of input)."""
        return self.retract(float("inf"))

    def pending(self) -> int:
        """Warnings with early versions not yet reached on time."""
        return len(self._early)

    def _withdraw(self, e: _Published) -> IncidentVersion:
        assert e.last is not None
        e.number += 1
        e.last = v = replace(e.last, version=e.number, status="cancelled", urgency="Past",
                             explanation=f"{WITHDRAWN}\n{without_action(e.last.explanation)}")
        e.last_digest = digest(v)
        self.retracted += 1
        return v


__all__ = ["Ledger", "digest"]
