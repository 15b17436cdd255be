"""Record conversions between the detectors' and correlator's objects and the wire schema
(anomalies, warnings, conditions), and the copies of an anomaly sent to other partitions."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from detectors.base import Finding
from detectors.fusion.citywide import ConditionVersion, explain_condition
from detectors.fusion.correlation import Correlator, IncidentVersion
from detectors.fusion.wording import PLAIN, Wording, audit_rule
from streams.core.regions import RegionRegistry
from streams.core.schemas import (
    Anomaly,
    Audit,
    Condition,
    Evidence,
    HistoryEntry,
    Warning,
)


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _num(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def finding_to_anomaly(f: Finding) -> Anomaly:
    return Anomaly(
        anomaly_id=f.anomaly_id, kind=f.kind, source=f.source,
        department=f.department, region=f.region, signal=f.signal, detector=f.detector,
        observed=_num(f.observed), expected=_num(f.expected), score=round(f.score, 3),
        p_value=f.p_value, event_time=_dt(f.t), event_ids=list(f.event_ids),
        via=f.via or None, entities=list(f.entities), window_s=f.window_s or None,
    )


def neighbour_copies(a: Anomaly, registry: RegionRegistry) -> list[Anomaly]:
    """The copies of ``a`` sent to its region's neighbours (keyed, and so partitioned, by
    the neighbour), so an incident straddling a boundary sees both sides."""
    if a.via is not None or a.region not in registry:
        return []
    return [a.model_copy(update={"region": n, "via": a.region,
                                 "anomaly_id": f"{a.anomaly_id}~{n}"})
            for n in sorted(registry.neighbours(a.region))]


def city_copy(a: Anomaly) -> Anomaly:
    """The copy of ``a`` sent to every anomalies partition, so each correlator sees which
    signal kinds are anomalous across the city at once (a common-mode condition)."""
    return a.model_copy(update={"city": True, "anomaly_id": f"{a.anomaly_id}~city"})


def anomaly_to_finding(a: Anomaly) -> Finding:
    return Finding(
        anomaly_id=a.anomaly_id, source=a.source, department=a.department, region=a.region,
        kind=a.kind, signal=a.signal, detector=a.detector, observed=a.observed,
        expected=a.expected, p_value=a.p_value, t=a.event_time.timestamp(),
        event_ids=tuple(a.event_ids), via=a.via or "", city=a.city,
        entities=tuple(a.entities), window_s=a.window_s or 0.0,
    )


#: detector name -> version, recorded in every warning's audit (bump on a behaviour change)
DETECTOR_VERSIONS = {
    "sensor_ensemble": "3", "sustained_shift": "1", "robust_baseline": "2",
    "count_surge": "2", "rate_surge": "2", "entity_risk": "1",
}


def fusion_rule(c: Correlator, v: IncidentVersion) -> tuple[str, dict[str, float]]:
    """The fusion rule as it applied to warning version ``v`` of correlator ``c``, in
    plain words, and the parameters that define it, for the audit trail."""
    params = {"window_s": c.window_s, "quiet_s": c.quiet_s, "support_p": c.support_p,
              "open_p": c.open_p, "neighbour_decay": c.neighbour_decay,
              "min_departments": float(c.min_departments)}
    rule = audit_rule(len(v.departments), [g.source for g in v.evidence], v.region,
                      c.window_s, any(g.via for g in v.evidence))
    return rule, params


def _audit(v: IncidentVersion, rule: str, parameters: dict[str, float]) -> Audit:
    return Audit(
        template=v.scenario, rule=rule,
        detectors={g.detector: DETECTOR_VERSIONS.get(g.detector, "?") for g in v.evidence},
        parameters=parameters,
        event_ids=sorted({e for g in v.evidence for e in g.event_ids}),
        feedback_bar=v.bar_note,
    )


def condition_to_record(c: ConditionVersion, sent_at: datetime | None = None,
                        wording: Wording = PLAIN) -> Condition:
    """The wire record of ``c``, its explanation in ``wording`` (the zone of the duty
    officers)."""
    text = explain_condition(c.status, c.level, c.kinds, c.departments, len(c.regions),
                             c.first_seen, wording)
    return Condition(
        condition_id=c.condition_id, version=c.version, status=c.status, level=c.level,
        kinds=list(c.kinds), departments=list(c.departments), regions=list(c.regions),
        first_seen=_dt(c.first_seen), last_seen=_dt(c.last_seen),
        explanation=text, sent_at=sent_at,
    )


#: entity notes added to one warning's explanation, at most
MAX_ENTITY_NOTES = 3


def _explanation(v: IncidentVersion) -> str:
    """The correlator's explanation, then what the risky market entities behind its
    evidence have on record (notes of the detect stage, streams/pipeline/entities.py)."""
    notes = list(dict.fromkeys(n for g in v.evidence for n in g.entities))
    if not notes:
        return v.explanation
    return f"{v.explanation}\nEntities: {'; '.join(notes[:MAX_ENTITY_NOTES])}."


def version_to_warning(v: IncidentVersion, sent_at: datetime | None = None,
                       rule: str = "", parameters: dict[str, float] | None = None) -> Warning:
    return Warning(
        warning_id=v.warning_id, version=v.version, status=v.status,
        region=v.region, scenario=v.scenario, severity=v.severity,
        urgency=v.urgency, certainty=v.certainty, score=v.score,
        departments=list(v.departments), first_seen=_dt(v.first_seen),
        last_seen=_dt(v.last_seen),
        evidence=[
            Evidence(
                source=g.source, department=g.department,
                region=g.origin, signal=g.signal, detector=g.detector,
                observed=_num(g.observed), expected=_num(g.expected), score=round(g.score, 3),
                p_value=g.p_value, event_time=_dt(g.t), event_ids=list(g.event_ids),
                window_s=g.window_s or None,
            )
            for g in v.evidence
        ],
        explanation=_explanation(v), sent_at=sent_at,
        history=[
            HistoryEntry(action=e.decision.action, by=e.decision.by, at=_dt(e.decision.at),
                         reason=e.decision.reason, accepted=e.accepted,
                         rejected_because=e.rejected_because)
            for e in v.history
        ],
        audit=_audit(v, rule, parameters or {}),
    )
