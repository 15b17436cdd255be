"""Wire schemas: one UTF-8 JSON object per Kafka message. Field names are the public contract.
The source topics' records are :mod:`streams.core.source_records`'; ``tocsin schema`` prints
every topic's JSON Schema (:mod:`streams.core.contract`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field, TypeAdapter

from detectors.base import STATUSES, warning_region_of
from streams.core.source_records import (
    SOURCE_MODELS,
    SOURCES,
    Complaint,
    MarketEvent,
    SensorReading,
    Source,
)
from streams.core.wire import EventTime, FiniteFloat, Identifier, Label, WireModel

Status = Literal["new", "update", "resolved", "cancelled"]
assert get_args(Status) == STATUSES  # the correlator's statuses, on the wire
Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]


class Evidence(WireModel):
    """One anomaly behind a warning."""

    source: Source
    """The source topic it was found in: env, complaint or market."""
    department: str
    """The department whose records showed it."""
    region: str
    """The region it was observed in."""
    signal: str = Field(description="Signal key, e.g. 'env:water_cod:S-harbour-1'.")
    detector: str
    """The detector that fired (its version is in the warning's audit)."""
    observed: float
    """The observed value (a reading in the metric's canonical unit, or a count)."""
    expected: float
    """What the detector expected at that time."""
    score: float = Field(description="Higher = more anomalous (-log10 p).")
    p_value: float = Field(ge=0, le=1)
    """How likely a value at least this unusual is under normal behaviour."""
    event_time: EventTime
    """The event time of the record that made it fire."""
    event_ids: list[str] = Field(default_factory=list)
    """The source records behind it (reading, complaint or event ids)."""
    window_s: float | None = Field(
        None, ge=0, description="A count's window in seconds: observed and expected are the "
        "events in it; none for a level (a reading or a price).")


class Anomaly(Evidence):
    """Topic ``tocsin.anomalies``: one detector firing (internal, keyed by region)."""

    record: Literal["anomaly"] = "anomaly"
    """The record type on the anomalies topic."""
    anomaly_id: str
    kind: str = Field(description="Signal kind without the instance, e.g. 'env:water_cod'.")
    via: str | None = Field(
        None, description="Set on the copy sent to a neighbouring region: the region the "
        "anomaly was observed in (``region`` is then the neighbour).")
    city: bool = Field(
        False, description="Set on the copy sent to every anomalies partition for the "
        "city-wide (common-mode) view: never evidence of a local incident.")
    entities: list[str] = Field(
        default_factory=list, description="What the risky market entities behind its "
        "events have on record (credit codes only); added to market warnings' explanations.")


class SourceWatermark(WireModel):
    """Topic ``tocsin.anomalies``: a source partition has processed everything up to
    ``watermark`` (event time); it never emits an anomaly older than that minus the allowed
    lateness. Sent to every anomalies partition once per batch."""

    record: Literal["watermark"] = "watermark"
    source: Source
    partition: int = Field(ge=0)
    """The source topic's partition."""
    watermark: EventTime


class Feedback(WireModel):
    """Topic ``tocsin.feedback``: a duty officer's decision on a warning (keyed by region).
    Forwarded into ``tocsin.anomalies`` so the correlator that holds the region applies it
    in event-time order with the anomalies."""

    record: Literal["feedback"] = "feedback"
    warning_id: str = Field(min_length=1, max_length=200)
    """The warning decided on (any of its versions)."""
    region: str = Field(min_length=1, max_length=100,
                        description="The warning's region (routes the decision).")
    action: Literal["acknowledge", "confirm", "dismiss", "resolve"]
    """acknowledge: seen; confirm: a real incident; dismiss: a false alarm; resolve: over."""
    by: str = Field(min_length=1, max_length=100, description="Operator id (not a name).")
    at: EventTime
    """When the decision was taken (not more than an hour ahead of the clock)."""
    reason: str | None = Field(None, max_length=1000,
                               description="Why; required for dismiss (false alarm).")


#: decisions dated further ahead of the wall clock than this are refused
FEEDBACK_MAX_AHEAD_S = 3600.0


def check_feedback(fb: Feedback, now: datetime | None = None) -> Feedback:
    """Checks a schema cannot express; ``ValueError`` says what to fix."""
    now = now or datetime.now(UTC)
    if (fb.at - now).total_seconds() > FEEDBACK_MAX_AHEAD_S:
        raise ValueError(f"decision time {fb.at.isoformat()} is in the future; send the "
                         "time the decision was taken")
    if not warning_region_of(fb.warning_id, fb.region):
        raise ValueError(f"warning {fb.warning_id} does not belong to region {fb.region!r}; "
                         "send the warning's own region")
    return fb


AnomalyRecord = Annotated[Anomaly | SourceWatermark | Feedback,
                          Field(discriminator="record")]
ANOMALY_RECORD: TypeAdapter[Anomaly | SourceWatermark | Feedback] = TypeAdapter(AnomalyRecord)


class HistoryEntry(WireModel):
    """One operator decision in a warning's history."""

    action: Literal["acknowledge", "confirm", "dismiss", "resolve"]
    by: str
    """Operator id."""
    at: EventTime
    reason: str | None = None
    accepted: bool = True
    """False when the decision was refused (e.g. resolving a resolved warning)."""
    rejected_because: str | None = None


class Audit(WireModel):
    """What produced a warning version: enough to reproduce and to explain it."""

    template: str = Field(description="The scenario template that matched.")
    rule: str = Field(description="The fusion rule and its parameters.")
    detectors: dict[str, str] = Field(description="Detector name -> version.")
    parameters: dict[str, float] = Field(default_factory=dict)
    """The rule's numeric parameters in force."""
    event_ids: list[str] = Field(default_factory=list,
                                 description="Every source event behind the evidence.")
    feedback_bar: str | None = Field(None, description="Feedback adaptation in force, if any.")


class Warning(WireModel):
    """Topic ``tocsin.warnings``: one version of a cross-department early warning."""

    warning_id: str = Field(description="Stable across all versions of one incident.")
    version: int = Field(ge=1)
    """1 for the first version, one more for each update."""
    status: Status
    """new, update, resolved or cancelled (a dismissed false alarm)."""
    region: str
    """The region the warning is for (a region id of the registry)."""
    scenario: str
    """The scenario template that matched, e.g. industrial_discharge, food_safety."""
    severity: Severity
    """CAP severity."""
    urgency: Urgency
    """CAP urgency."""
    certainty: Certainty
    """CAP certainty."""
    score: float
    """Combined evidence strength (sum of the evidence's -log10 p)."""
    departments: list[str]
    """The departments whose records are evidence."""
    first_seen: EventTime
    """Event time of the first evidence."""
    last_seen: EventTime
    """Event time of the latest evidence."""
    evidence: list[Evidence]
    explanation: str
    """For the duty officer, in words."""
    sent_at: EventTime | None = None
    """Wall-clock time it was published."""
    history: list[HistoryEntry] = Field(default_factory=list)
    """Operator decisions so far."""
    audit: Audit | None = None


class Condition(WireModel):
    """Topic ``tocsin.conditions``: one version of a city-wide (common-mode) condition, a
    signal kind anomalous in many regions at once (haze, a city-wide price move, a hotline
    backlog). Local warnings of its kinds are held back while it lasts."""

    condition_id: str = Field(description="Stable across all versions of one condition.")
    version: int = Field(ge=1)
    status: Literal["new", "update", "resolved"]
    level: Literal["notice", "warning"] = Field(
        description="notice: one department shows it; warning: two or more.")
    kinds: list[str] = Field(description="Signal kinds city-wide in it, e.g. env:pm25.")
    departments: list[str]
    """The departments showing it."""
    regions: list[str] = Field(description="Regions whose anomalies made it city-wide.")
    first_seen: EventTime
    last_seen: EventTime
    explanation: str
    sent_at: EventTime | None = None


class EntityRiskRecord(WireModel):
    """Topic ``tocsin.entities.risk`` (compacted, keyed by entity code): an entity's risk
    score, sent when it changes materially. Names the entity by its code only."""

    entity_id: str = Field(description="Unified social credit code.")
    region: str
    """The region of its latest event."""
    score: float = Field(description="-log10 p of its adverse record against the population.")
    risk: float = Field(ge=0, le=1, description="1 - p.")
    weight: float = Field(description="Decayed adverse weight (recall 3, licence violation "
                          "2, failed inspection 1, complaint 0.5).")
    expected: float = Field(description="The population's mean adverse weight.")
    counts: dict[str, int] = Field(default_factory=dict,
                                   description="Recent adverse events by kind.")
    above_level: bool = Field(description="An entity_risk warning is open.")
    warning_id: str | None = None
    """Its open entity_risk warning, if any."""
    event_time: EventTime


class DeadLetter(WireModel):
    """Topic ``tocsin.deadletter``: a record that failed ingest, with its original bytes."""

    source_topic: str
    """The topic the record was read from."""
    partition: int
    offset: int
    key_b64: str | None = None
    """The record's key, base64."""
    original_b64: str = Field(
        description="The original bytes (the first 512 KiB when ``truncated``; the whole "
        "record stays at source_topic/partition/offset for that topic's retention).")
    original_text: str | None = Field(
        None, description="The original bytes as text, if valid UTF-8 and at most 64 KiB.")
    original_size: int | None = Field(None, description="Size of the original record, bytes.")
    original_sha256: str | None = Field(None, description="SHA-256 of the original record.")
    truncated: bool = False
    reason: str
    """What is wrong, e.g. "observed_at: Input should have timezone info"."""
    error_type: str
    """schema, json, encoding, not_an_object, unknown_region, unknown_metric, bad_unit,
    future_time, ancient_time, conflicting_id or replay_line."""
    failed_at: EventTime


PUBLIC_SCHEMAS: dict[str, type[BaseModel]] = {
    "tocsin.env.readings": SensorReading,
    "tocsin.citizen.complaints": Complaint,
    "tocsin.market.events": MarketEvent,
    "tocsin.anomalies": Anomaly,
    "tocsin.warnings": Warning,
    "tocsin.conditions": Condition,
    "tocsin.deadletter": DeadLetter,
    "tocsin.feedback": Feedback,
    "tocsin.entities.risk": EntityRiskRecord,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Each topic's JSON Schema, keyed by topic. Validation mode: what a consumer may
    validate a message against (every message Tocsin writes validates against it; the
    serialization mode would see only the catch-all datetime serializer's ``Any``)."""
    return {topic: m.model_json_schema(mode="validation") for topic, m in PUBLIC_SCHEMAS.items()}


__all__ = ["ANOMALY_RECORD", "FEEDBACK_MAX_AHEAD_S", "PUBLIC_SCHEMAS", "SEVERITIES", "SOURCES",
           "SOURCE_MODELS", "Anomaly", "Audit", "Certainty", "Complaint", "Condition",
           "DeadLetter", "EntityRiskRecord", "EventTime", "Evidence", "Feedback", "FiniteFloat",
           "HistoryEntry", "Identifier", "Label", "MarketEvent", "SensorReading", "Severity",
           "Source", "SourceWatermark", "Status", "Urgency", "Warning", "check_feedback",
           "json_schemas"]
