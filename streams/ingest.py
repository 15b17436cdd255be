"""Ingest: decode, validate, check regions and credit codes, normalise units, drop exact
re-deliveries. Anything bad becomes a dead letter with its original bytes and the reason."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from .errors import ValidationFailure
from .regions import RegionRegistry
from .schemas import SOURCE_MODELS, Complaint, DeadLetter, MarketEvent, SensorReading
from .units import normalise_price, normalise_sensor

Record = SensorReading | Complaint | MarketEvent


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a raw record came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    record: Record | None = None
    dead: DeadLetter | None = None
    duplicate: bool = False


def _validation_reason(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        loc = ".".join(str(x) for x in err["loc"]) or "record"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{e.error_count() - 5} more)" if e.error_count() > 5 else ""
    return "; ".join(parts) + more


class Deduplicator:
    """Remembers the last ``capacity`` message ids (and a digest of their bytes)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, bytes] = OrderedDict()

    def check(self, message_id: str, digest: bytes) -> str:
        """``"new"``, ``"duplicate"`` (same id, same bytes) or ``"conflict"``
        (same id, new bytes)."""
        old = self._seen.get(message_id)
        if old is None:
            self._seen[message_id] = digest
            if len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
            return "new"
        self._seen.move_to_end(message_id)
        return "duplicate" if old == digest else "conflict"

    def __len__(self) -> int:
        return len(self._seen)


class Ingestor:
    """Turns raw bytes from one of the three source topics into validated records."""

    def __init__(self, registry: RegionRegistry, dedup_window: int = 200_000) -> None:
        self.registry = registry
        self._dedup = {src: Deduplicator(dedup_window) for src in SOURCE_MODELS}

    def ingest(self, source: str, raw: bytes, origin: Origin) -> IngestResult:
        try:
            record = self._parse(source, raw)
        except ValidationFailure as e:
            return IngestResult(dead=dead_letter(raw, origin, e.reason, e.error_type))
        digest = hashlib.blake2b(raw, digest_size=8).digest()
        verdict = self._dedup[source].check(record.message_id, digest)
        if verdict == "duplicate":
            return IngestResult(duplicate=True)
        if verdict == "conflict":
            return IngestResult(dead=dead_letter(
                raw, origin,
                f"id {record.message_id!r} was already used by a different record; "
                "ids must be unique per record", "conflicting_id",
            ))
        return IngestResult(record=record)

    def parse_obj(self, source: str, obj: Any) -> Record:
        """Validate an already-decoded JSON object (raises ValidationFailure)."""
        model = SOURCE_MODELS.get(source)
        if model is None:
            raise ValidationFailure(f"unknown source {source!r}", "unknown_source")
        if not isinstance(obj, dict):
            raise ValidationFailure(
                f"a message must be a JSON object, got {type(obj).__name__}", "not_an_object"
            )
        try:
            rec: Record = model.model_validate(obj)
        except ValidationError as e:
            raise ValidationFailure(_validation_reason(e), "schema") from None
        if rec.region not in self.registry:
            raise ValidationFailure(
                f"unknown region {rec.region!r}: not in the region registry", "unknown_region"
            )
        if isinstance(rec, SensorReading):
            value, unit = normalise_sensor(rec.metric, rec.value, rec.unit)
            if value != rec.value or unit != rec.unit:
                rec = rec.model_copy(update={"value": value, "unit": unit})
        elif isinstance(rec, MarketEvent) and rec.price is not None and rec.unit is not None:
            price, unit = normalise_price(rec.price, rec.unit)
            if price != rec.price or unit != rec.unit:
                rec = rec.model_copy(update={"price": price, "unit": unit})
        return rec

    def _parse(self, source: str, raw: bytes) -> Record:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValidationFailure(
                f"not UTF-8: {e.reason} at byte {e.start}", "encoding") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValidationFailure(f"malformed JSON: {e.msg} at char {e.pos}", "json") from None
        except RecursionError:
            raise ValidationFailure("malformed JSON: nested too deeply", "json") from None
        return self.parse_obj(source, obj)


def dead_letter(raw: bytes, origin: Origin, reason: str, error_type: str) -> DeadLetter:
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return DeadLetter(
        source_topic=origin.topic, partition=origin.partition, offset=origin.offset,
        key_b64=base64.b64encode(origin.key).decode() if origin.key is not None else None,
        original_b64=base64.b64encode(raw).decode(), original_text=text,
        reason=reason[:2000], error_type=error_type, failed_at=datetime.now(UTC),
    )
