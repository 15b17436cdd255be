"""What the correlator publishes: an incident's versions (:class:`IncidentVersion`, a
``Warning`` on the wire), their severity, urgency and certainty, and the explanation a
duty officer reads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detectors.base import CLOSED_STATUSES, P_FLOOR, Finding, fisher_combine
from detectors.fusion.history import Entry
from detectors.fusion.templates import Template

if TYPE_CHECKING:
    from detectors.fusion.correlation import _Incident


@dataclass(frozen=True, slots=True)
class IncidentVersion:
    """One published version of an incident (becomes a ``Warning`` on the wire)."""

    warning_id: str
    version: int
    status: str  # new | update | resolved
    region: str
    scenario: str
    severity: str
    urgency: str
    certainty: str
    score: float
    p_value: float
    departments: tuple[str, ...]
    first_seen: float
    last_seen: float
    evidence: tuple[Finding, ...]
    explanation: str
    history: tuple[Entry, ...] = ()
    combination: str = ""  # the signal kinds that opened it (the feedback bar's key)
    bar_note: str | None = None  # the feedback adaptation in force when it opened


def render(inc: _Incident, status: str, tpl: Template, history: tuple[Entry, ...]
           ) -> IncidentVersion:
    """Version ``inc.version`` of incident ``inc`` (of scenario template ``tpl``, with
    the operators' ``history``) in ``status``; records its severity and score in ``inc``
    (the trend the next version's urgency compares with)."""
    ev = tuple(sorted(inc.evidence.values(), key=lambda g: (g.t, g.signal)))
    depts = tuple(sorted({g.department for g in ev}))
    p = fisher_combine([g.p_value for g in ev])
    score = -math.log10(max(p, P_FLOOR))
    nd = len(depts)
    severity = tpl.severity_for(score, nd)
    inc.severity = severity
    certainty = tpl.certainty_for(score, nd)
    # urgency from the trend: a new incident or growing evidence needs action now; an
    # update that adds no strength (a decision, a weaker signal) can be planned for
    if status in CLOSED_STATUSES:
        urgency = "Past"
    elif status == "new" or score >= inc.last_score + 1.0:
        urgency = "Immediate"
    else:
        urgency = "Expected"
    inc.last_score = max(inc.last_score, score)
    return IncidentVersion(
        warning_id=inc.warning_id, version=inc.version, status=status, region=inc.region,
        scenario=inc.scenario, severity=severity, urgency=urgency, certainty=certainty,
        score=round(score, 3), p_value=p, departments=depts,
        first_seen=inc.first_seen, last_seen=inc.last_seen, evidence=ev,
        explanation=explain(inc.region, tpl, ev, p, status),
        history=history, combination=inc.combination,
        bar_note=inc.bar_note,
    )


def explain(region: str, tpl: Template, ev: tuple[Finding, ...], p: float, status: str) -> str:
    """One short paragraph a duty officer can read."""
    from datetime import UTC, datetime

    def ts(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")

    depts = sorted({g.department for g in ev})
    parts = []
    for g in sorted(ev, key=lambda g: g.p_value)[:5]:
        exp = "n/a" if math.isnan(g.expected) else f"{g.expected:.3g}"
        parts.append(f"{g.kind} observed {g.observed:.3g} vs expected {exp} (p={g.p_value:.1e})")
    head = {"resolved": "Resolved: ", "cancelled": "Cancelled (dismissed as a false alarm): "
            }.get(status, "")
    since = ts(min(g.t for g in ev)) if ev else "?"
    return (
        f"{head}Possible {tpl.title.lower()} in {region}: {len(depts)} departments "
        f"({', '.join(depts)}) report anomalies since {since}. "
        + "; ".join(parts)
        + f". Combined chance of this by coincidence: p={p:.1e}."
        + (f" Recommended: {tpl.instruction}"
           if tpl.instruction and status not in CLOSED_STATUSES else "")
    )


__all__ = ["IncidentVersion", "explain", "render"]
