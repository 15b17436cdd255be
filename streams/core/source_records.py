"""The three source topics' records, as departments send them (one UTF-8 JSON object per
Kafka message, keyed by region; docs/sources.md). Field names are the public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, field_validator, model_validator

from streams.core.uscc import uscc_error
from streams.core.wire import (
    Department,
    EventTime,
    FiniteFloat,
    Identifier,
    Label,
    WireModel,
    finite,
)

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Region = Annotated[Identifier, Field(
    description="A region id of the region registry in force (TOCSIN_REGION_REGISTRY); "
    "also the message key.")]


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
    """Unique per reading: a re-sent reading with the same id and bytes is dropped as a
    re-delivery; the same id with other content is rejected (conflicting_id)."""
    sensor_id: Identifier
    """The station or instrument; one series per sensor and metric."""
    metric: Label
    """A metric of the signal catalogue in force (``tocsin signals``)."""
    value: FiniteFloat
    """The measured value, in ``unit`` (converted to the metric's canonical unit)."""
    unit: Annotated[str, Field(min_length=1, max_length=32)]
    """One of the metric's accepted units (``tocsin signals``)."""
    region: Region
    lat: Latitude | None = None
    """WGS84 latitude, degrees (optional)."""
    lon: Longitude | None = None
    """WGS84 longitude, degrees (optional)."""
    observed_at: EventTime
    """When it was measured: ISO 8601 with a time zone (``Z`` or ``+08:00``)."""
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
    """Unique per complaint (re-deliveries are dropped by it)."""
    channel: Literal["hotline", "app", "web", "wechat"]
    """How the report came in."""
    category: Label
    """What it is about, e.g. odor, noise, water, food_safety; counted per category."""
    text: Annotated[str, Field(max_length=10_000)]
    """The citizen's words (masked for phone numbers and ids before anything is stored)."""
    region: Region
    lat: Latitude | None = None
    """WGS84 latitude, degrees (optional)."""
    lon: Longitude | None = None
    """WGS84 longitude, degrees (optional)."""
    reporter_phone: Annotated[str, Field(max_length=64)] | None = None
    """Replaced by a keyed pseudonym at ingest (TOCSIN_PSEUDONYM_KEY)."""
    received_at: EventTime
    """When it was received: ISO 8601 with a time zone."""
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
    """Unique per event (re-deliveries are dropped by it)."""
    kind: Literal["price_report", "inspection", "recall", "license_violation"]
    """price_report needs commodity, price and unit; inspection needs passed."""
    entity_id: str | None = None
    """Unified social credit code (18 characters, checksum checked) of the business."""
    entity_name: Annotated[str, Field(max_length=256)] | None = None
    """The business's name (for the duty officer; entities are matched by entity_id)."""
    commodity: Label | None = None
    """What is priced, e.g. pork, rice."""
    price: Annotated[float, Field(ge=0), AfterValidator(finite)] | None = None
    """A price report's price, in ``unit``."""
    unit: Annotated[str, Field(max_length=32)] | None = None
    """The price's unit, e.g. CNY/kg, CNY/500g, CNY/jin, CNY/L, CNY/item."""
    passed: bool | None = None
    """An inspection's outcome."""
    violation: Annotated[str, Field(max_length=256)] | None = None
    """What was found wrong (inspection, recall, license_violation)."""
    region: Region
    occurred_at: EventTime
    """When it happened: ISO 8601 with a time zone."""
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
SOURCE_MODELS: dict[str, type[SensorReading] | type[Complaint] | type[MarketEvent]] = {
    "env": SensorReading,
    "complaint": Complaint,
    "market": MarketEvent,
}

__all__ = ["SOURCES", "SOURCE_MODELS", "Complaint", "MarketEvent", "SensorReading", "Source"]
