"""Wire schemas: one UTF-8 JSON object per Kafka message. Field names are the public contract."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_serializer,
    field_validator,
    model_validator,
)

from detectors.base import STATUSES, warning_region_of
from streams.core.uscc import uscc_error

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f]+$")]
Label = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Department = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def _utc(v: datetime) -> datetime:
    try:
        return v.astimezone(UTC)
    except OverflowError as e:  # e.g. 0001-01-01T00:00+01:00: no UTC equivalent
        raise ValueError(f"time {v.isoformat()} is out of range") from e


EventTime = Annotated[AwareDatetime, AfterValidator(_utc)]


def _finite(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


FiniteFloat = Annotated[float, AfterValidator(_finite)]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    @field_serializer("*", when_used="json", check_fields=False)
    def _ser(self, v: Any) -> Any:
        if isinstance(v, datetime):
            return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return v


def _credit_code(v: str | None) -> str | None:
    """A unified social credit code, upper-cased; ``ValueError`` if it is not one."""
    if v is None:
        return None
    v = v.strip().upper()
    err = uscc_error(v)
    if err:
        raise ValueError(err)
    return v


class SensorReading(WireModel):
    """Topic ``tocsin.env.readings``: one environmental sensor reading."""

    reading_id: Identifier
    sensor_id: Identifier
    metric: Label
    value: FiniteFloat
    unit: Annotated[str, Field(min_length=1, max_length=32)]
    region: Identifier
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    observed_at: EventTime
    department: Department

    @property
    def message_id(self) -> str:
        return self.reading_id

    @property
    def event_time(self) -> datetime:
        return self.observed_at


class Complaint(WireModel):
    """Topic ``tocsin.citizen.complaints``: one citizen report.

    The free text may hold personal data.
    """

    complaint_id: Identifier
    channel: Literal["hotline", "app", "web", "wechat"]
    category: Label
    text: Annotated[str, Field(max_length=10_000)]
    region: Identifier
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    reporter_phone: Annotated[str, Field(max_length=64)] | None = None
    received_at: EventTime
    department: Department
    entity_id: str | None = Field(
        None, description="Unified social credit code of the business complained about, "
        "if the complaint names one (counts towards its entity risk).")

    @field_validator("entity_id")
    @classmethod
    def _credit_code(cls, v: str | None) -> str | None:
        return _credit_code(v)

    @property
    def message_id(self) -> str:
        return self.complaint_id

    @property
    def event_time(self) -> datetime:
        return self.received_at


class MarketEvent(WireModel):
    """Topic ``tocsin.market.events``: price report, inspection, recall or licence violation."""

    event_id: Identifier
    kind: Literal["price_report", "inspection", "recall", "license_violation"]
    entity_id: str | None = None
    entity_name: Annotated[str, Field(max_length=256)] | None = None
    commodity: Label | None = None
    price: Annotated[float, Field(ge=0), AfterValidator(_finite)] | None = None
    unit: Annotated[str, Field(max_length=32)] | None = None
    passed: bool | None = None
    violation: Annotated[str, Field(max_length=256)] | None = None
    region: Identifier
    occurred_at: EventTime
    department: Department

    @field_validator("entity_id")
    @classmethod
    def _credit_code(cls, v: str | None) -> str | None:
        return _credit_code(v)

    @model_validator(mode="after")
    def _kind_fields(self) -> MarketEvent:
        if self.kind == "price_report":
            missing = [f for f in ("commodity", "price", "unit") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"price_report needs {', '.join(missing)}")
        if self.kind == "inspection" and self.passed is None:
            raise ValueError("inspection needs passed (true or false)")
        return self

    @property
    def message_id(self) -> str:
        return self.event_id

    @property
    def event_time(self) -> datetime:
        return self.occurred_at


#: the three source departments' record streams
Source = Literal["env", "complaint", "market"]
SOURCES: tuple[Source, ...] = get_args(Source)
Status = Literal["new", "update", "resolved", "cancelled"]
assert get_args(Status) == STATUSES  # the correlator's statuses, on the wire
Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]


class Evidence(WireModel):
    """One anomaly behind a warning."""

    source: Source
    department: str
    region: str
    signal: str = Field(description="Signal key, e.g. 'env:water_cod:S-harbour-1'.")
    detector: str
    observed: float
    expected: float
    score: float = Field(description="Higher = more anomalous (-log10 p).")
    p_value: float = Field(ge=0, le=1)
    event_time: EventTime
    event_ids: list[str] = Field(default_factory=list)
    window_s: float | None = Field(
        None, ge=0, description="A count's window in seconds: observed and expected are the "
        "events in it; none for a level (a reading or a price).")


class Anomaly(Evidence):
    """Topic ``tocsin.anomalies``: one detector firing (internal, keyed by region)."""

    record: Literal["anomaly"] = "anomaly"
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
    watermark: EventTime


class Feedback(WireModel):
    """Topic ``tocsin.feedback``: a duty officer's decision on a warning (keyed by region).
    Forwarded into ``tocsin.anomalies`` so the correlator that holds the region applies it
    in event-time order with the anomalies."""

    record: Literal["feedback"] = "feedback"
    warning_id: str = Field(min_length=1, max_length=200)
    region: str = Field(min_length=1, max_length=100,
                        description="The warning's region (routes the decision).")
    action: Literal["acknowledge", "confirm", "dismiss", "resolve"]
    by: str = Field(min_length=1, max_length=100, description="Operator id (not a name).")
    at: EventTime
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
    at: EventTime
    reason: str | None = None
    accepted: bool = True
    rejected_because: str | None = None


class Audit(WireModel):
    """What produced a warning version: enough to reproduce and to explain it."""

    template: str = Field(description="The scenario template that matched.")
    rule: str = Field(description="The fusion rule and its parameters.")
    detectors: dict[str, str] = Field(description="Detector name -> version.")
    parameters: dict[str, float] = Field(default_factory=dict)
    event_ids: list[str] = Field(default_factory=list,
                                 description="Every source event behind the evidence.")
    feedback_bar: str | None = Field(None, description="Feedback adaptation in force, if any.")


class Warning(WireModel):
    """Topic ``tocsin.warnings``: one version of a cross-department early warning."""

    warning_id: str = Field(description="Stable across all versions of one incident.")
    version: int = Field(ge=1)
    status: Status
    region: str
    scenario: str
    severity: Severity
    urgency: Urgency
    certainty: Certainty
    score: float
    departments: list[str]
    first_seen: EventTime
    last_seen: EventTime
    evidence: list[Evidence]
    explanation: str
    sent_at: EventTime | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
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
    score: float = Field(description="-log10 p of its adverse record against the population.")
    risk: float = Field(ge=0, le=1, description="1 - p.")
    weight: float = Field(description="Decayed adverse weight (recall 3, licence violation "
                          "2, failed inspection 1, complaint 0.5).")
    expected: float = Field(description="The population's mean adverse weight.")
    counts: dict[str, int] = Field(default_factory=dict,
                                   description="Recent adverse events by kind.")
    above_level: bool = Field(description="An entity_risk warning is open.")
    warning_id: str | None = None
    event_time: EventTime


class DeadLetter(WireModel):
    """Topic ``tocsin.deadletter``: a record that failed ingest, with its original bytes."""

    source_topic: str
    partition: int
    offset: int
    key_b64: str | None = None
    original_b64: str = Field(
        description="The original bytes (the first 512 KiB when ``truncated``; the whole "
        "record stays at source_topic/partition/offset for that topic's retention).")
    original_text: str | None = Field(
        None, description="The original bytes as text, if valid UTF-8 and at most 64 KiB.")
    original_size: int | None = Field(None, description="Size of the original record, bytes.")
    original_sha256: str | None = Field(None, description="SHA-256 of the original record.")
    truncated: bool = False
    reason: str
    error_type: str
    failed_at: EventTime


SOURCE_MODELS: dict[str, type[SensorReading] | type[Complaint] | type[MarketEvent]] = {
    "env": SensorReading,
    "complaint": Complaint,
    "market": MarketEvent,
}

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
    return {topic: m.model_json_schema(mode="serialization") for topic, m in PUBLIC_SCHEMAS.items()}
