"""Ingest: decode, validate, check regions and credit codes, normalise units, drop exact
re-deliveries, mask personal data in complaints (``streams/privacy.py``). Anything bad
becomes a dead letter with its original bytes and the reason (dead letters are an operator
quarantine for reprocessing, so they keep any personal data the record held)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from detectors.signals.catalogue import Catalogue
from streams.core.errors import ValidationFailure, validation_message
from streams.core.regions import RegionRegistry
from streams.core.schemas import SOURCE_MODELS, Complaint, DeadLetter, MarketEvent, SensorReading
from streams.core.signals import packaged
from streams.core.units import normalise_price, normalise_sensor
from streams.ingest.privacy import Pseudonymizer, mask_text

if TYPE_CHECKING:
    from streams.core.settings import TocsinSettings

Record = SensorReading | Complaint | MarketEvent

log = logging.getLogger(__name__)
_process_pseudonymizer: Pseudonymizer | None = None


def _random_pseudonymizer() -> Pseudonymizer:
    """One random key per process (created, and warned about, once)."""
    global _process_pseudonymizer
    if _process_pseudonymizer is None:
        log.warning("TOCSIN_PSEUDONYM_KEY is not set: reporters' phone numbers are "
                    "pseudonymised with a random key of this process, so their pseudonyms "
                    "do not link across restarts or workers")
        _process_pseudonymizer = Pseudonymizer(secrets.token_bytes(32))
    return _process_pseudonymizer


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

    def __init__(self, registry: RegionRegistry, dedup_window: int = 50_000,
                 pseudonymizer: Pseudonymizer | None = None, *,
                 max_ahead_s: float | None = 3600.0,
                 min_event_time: float = 946_684_800.0,
                 catalogue: Catalogue | None = None) -> None:
        self.registry = registry
        # the signal catalogue in force (None: the packaged one)
        self.catalogue = packaged() if catalogue is None else catalogue
        self.max_ahead_s = max_ahead_s  # None: no check against the clock
        self.min_event_time = min_event_time
        self.pseudonymizer = (
            _random_pseudonymizer() if pseudonymizer is None else pseudonymizer)
        self.dedup_window = dedup_window
        # (source, partition) -> ids seen: re-deliveries arrive on the record's partition,
        # and a partition's window travels with its checkpoint
        self._dedup: dict[tuple[str, int], Deduplicator] = {}

    def dedup_state(self, partition: int) -> dict[str, Deduplicator]:
        """The de-duplication windows of source partition ``partition``, by source."""
        return {src: d for (src, p), d in self._dedup.items() if p == partition}

    def adopt_dedup(self, partition: int, state: dict[str, Deduplicator]) -> None:
        """Take over ``partition``'s windows (from a checkpoint)."""
        self.drop_dedup(partition)
        for src, d in state.items():
            d.capacity = self.dedup_window  # this worker's setting, not the saved one
            while len(d._seen) > d.capacity:
                d._seen.popitem(last=False)
            self._dedup[src, partition] = d

    def drop_dedup(self, partition: int) -> None:
        for k in [k for k in self._dedup if k[1] == partition]:
            del self._dedup[k]

    def ingest(self, source: str, raw: bytes, origin: Origin) -> IngestResult:
        try:
            record = self._parse(source, raw)
        except ValidationFailure as e:
            return IngestResult(dead=dead_letter(raw, origin, e.reason, e.error_type))
        digest = hashlib.blake2b(raw, digest_size=8).digest()
        dedup = self._dedup.get((source, origin.partition))
        if dedup is None:
            dedup = self._dedup[source, origin.partition] = Deduplicator(self.dedup_window)
        verdict = dedup.check(record.message_id, digest)
        if verdict == "duplicate":
            return IngestResult(duplicate=True)
        if verdict == "conflict":
            return IngestResult(dead=dead_letter(
                raw, origin,
                f"id {record.message_id!r} was already used by a different record; "
                "ids must be unique per record", "conflicting_id",
            ))
        if isinstance(record, Complaint):
            # after de-duplication, which compares the original bytes
            record = self.protect(record)
        return IngestResult(record=record)

    def protect(self, c: Complaint) -> Complaint:
        """Personal data out of a complaint: its text masked, the reporter's phone number
        replaced by a keyed pseudonym."""
        update: dict[str, str] = {}
        text = mask_text(c.text)
        if text != c.text:
            update["text"] = text
        if c.reporter_phone is not None:
            update["reporter_phone"] = self.pseudonymizer.pseudonym(c.reporter_phone, "phone")
        return c.model_copy(update=update) if update else c

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
            raise ValidationFailure(validation_message(e), "schema") from None
        if rec.region not in self.registry:
            raise ValidationFailure(
                f"unknown region {rec.region!r}: not in the region registry", "unknown_region"
            )
        t = rec.event_time.timestamp()
        if self.max_ahead_s is not None and t > time.time() + self.max_ahead_s:
            raise ValidationFailure(
                f"event time {rec.event_time.isoformat()} is more than "
                f"{self.max_ahead_s:g} s ahead of this worker's clock; fix the producer's "
                "clock (TOCSIN_MAX_AHEAD_S sets the tolerance)", "future_time")
        if t < self.min_event_time:
            raise ValidationFailure(
                f"event time {rec.event_time.isoformat()} is before TOCSIN_MIN_EVENT_TIME; "
                "fix the producer's clock", "ancient_time")
        if isinstance(rec, SensorReading):
            value, unit = normalise_sensor(rec.metric, rec.value, rec.unit, self.catalogue)
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


def ingestor_for(settings: TocsinSettings, registry: RegionRegistry, catalogue: Catalogue,
                 pseudonymizer: Pseudonymizer | None = None) -> Ingestor:
    """The ingestor of a worker with ``settings`` (a source stage's, ``tocsin validate``'s):
    the same checks, tolerances and de-duplication window. ``pseudonymizer``: used when
    TOCSIN_PSEUDONYM_KEY is not set (None: a random key of this process)."""
    key = settings.pseudonym_key
    return Ingestor(registry, settings.dedup_window,
                    pseudonymizer if key is None else
                    Pseudonymizer(key.get_secret_value().encode()),
                    max_ahead_s=settings.max_ahead_s,
                    min_event_time=settings.min_event_time.timestamp(), catalogue=catalogue)


#: a dead letter must fit in one Kafka message (1 MB by default) whatever it carries
DEAD_BYTES_MAX = 512 * 1024
DEAD_TEXT_MAX = 64 * 1024


def dead_letter(raw: bytes, origin: Origin, reason: str, error_type: str) -> DeadLetter:
    text: str | None = None
    if len(raw) <= DEAD_TEXT_MAX:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    return DeadLetter(
        source_topic=origin.topic, partition=origin.partition, offset=origin.offset,
        key_b64=base64.b64encode(origin.key).decode() if origin.key is not None else None,
        original_b64=base64.b64encode(raw[:DEAD_BYTES_MAX]).decode(), original_text=text,
        original_size=len(raw), original_sha256=hashlib.sha256(raw).hexdigest(),
        truncated=len(raw) > DEAD_BYTES_MAX,
        reason=reason[:2000], error_type=error_type, failed_at=datetime.now(UTC),
    )
