from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.regions import RegionRegistry
from streams.core.schemas import Complaint, MarketEvent, SensorReading, json_schemas
from streams.core.signals import load_signals
from streams.core.units import normalise_price, normalise_sensor
from streams.core.uscc import check_char, is_valid_uscc, uscc_error
from streams.ingest.ingestor import Deduplicator, Ingestor, Origin

ORIGIN = Origin("tocsin.env.readings", 2, 41, b"harbour")

READING = {
    "reading_id": "r1", "sensor_id": "WQ-harbour", "metric": "water_cod", "value": 18.5,
    "unit": "mg/L", "region": "harbour", "observed_at": "2026-03-02T08:00:00+08:00",
    "department": "ecology_bureau",
}
COMPLAINT = {
    "complaint_id": "c1", "channel": "hotline", "category": "odor", "text": "smell",
    "region": "harbour", "received_at": "2026-03-02T00:00:00Z", "department": "citizen_hotline",
}
MARKET = {
    "event_id": "m1", "kind": "price_report", "commodity": "pork", "price": 13.0,
    "unit": "CNY/500g", "region": "harbour", "occurred_at": "2026-03-02T00:00:00Z",
    "department": "market_regulation", "entity_id": None,
}


def raw(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def test_uscc_checksum_known_code() -> None:
    body = "91350100M000100Y4"
    code = body + check_char(body)
    assert is_valid_uscc(code)
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert uscc_error(wrong) is not None and "checksum" in uscc_error(wrong)  # type: ignore[operator]
    assert "18 characters" in (uscc_error("123") or "")
    assert "alphabet" in (uscc_error("I" * 18) or "")


def test_event_time_normalised_to_utc() -> None:
    r = SensorReading.model_validate(READING)
    assert r.observed_at.isoformat() == "2026-03-02T00:00:00+00:00"
    assert json.loads(r.model_dump_json())["observed_at"] == "2026-03-02T00:00:00Z"


def test_naive_timestamp_rejected() -> None:
    with pytest.raises(ValueError):
        SensorReading.model_validate({**READING, "observed_at": "2026-03-02T08:00:00"})


def test_price_report_needs_price() -> None:
    with pytest.raises(ValueError, match="price_report needs"):
        MarketEvent.model_validate({**MARKET, "price": None})


def test_units_normalised(registry: RegionRegistry) -> None:
    ing = Ingestor(registry)
    res = ing.ingest("market", raw(MARKET), ORIGIN)
    assert res.record is not None
    assert res.record.price == pytest.approx(26.0) and res.record.unit == "CNY/kg"  # type: ignore[union-attr]
    no2 = normalise_sensor("no2", 10.0, "ppb", load_signals(None))
    assert no2 == (pytest.approx(18.8), "ug/m3")
    assert normalise_price(1.0, "CNY/jin") == (2.0, "CNY/kg")


@pytest.mark.parametrize(
    ("source", "obj", "error_type", "needle"),
    [
        ("env", {**READING, "region": "atlantis"}, "unknown_region", "atlantis"),
        ("env", {**READING, "unit": "furlongs"}, "bad_unit", "furlongs"),
        ("env", {**READING, "metric": "pm2.5"}, "schema", "metric"),
        ("env", {**READING, "value": "NaN"}, "schema", "finite"),
        ("env", {k: v for k, v in READING.items() if k != "reading_id"}, "schema", "reading_id"),
        ("complaint", {**COMPLAINT, "channel": "fax"}, "schema", "channel"),
        ("market", {**MARKET, "entity_id": "91310000MA1FL00000"}, "schema", "credit code"),
        ("market", {**MARKET, "unit": "CNY/stone"}, "bad_unit", "CNY/stone"),
    ],
)
def test_bad_records_become_dead_letters(
    registry: RegionRegistry, source: str, obj: dict, error_type: str, needle: str
) -> None:
    ing = Ingestor(registry)
    data = raw(obj)
    res = ing.ingest(source, data, ORIGIN)
    assert res.record is None and res.dead is not None
    assert res.dead.error_type == error_type
    assert needle in res.dead.reason
    assert res.dead.source_topic == ORIGIN.topic and res.dead.offset == 41
    import base64

    assert base64.b64decode(res.dead.original_b64) == data


def test_non_utf8_and_broken_json(registry: RegionRegistry) -> None:
    ing = Ingestor(registry)
    assert ing.ingest("env", b"\xff\xfe{", ORIGIN).dead.error_type == "encoding"  # type: ignore[union-attr]
    assert ing.ingest("env", b'{"reading_id": ', ORIGIN).dead.error_type == "json"  # type: ignore[union-attr]
    assert ing.ingest("env", b"[1,2]", ORIGIN).dead.error_type == "not_an_object"  # type: ignore[union-attr]


def test_exact_redelivery_dropped_and_conflict_dead_lettered(registry: RegionRegistry) -> None:
    ing = Ingestor(registry)
    assert ing.ingest("env", raw(READING), ORIGIN).record is not None
    assert ing.ingest("env", raw(READING), ORIGIN).duplicate
    changed = ing.ingest("env", raw({**READING, "value": 99.0}), ORIGIN)
    assert changed.dead is not None and changed.dead.error_type == "conflicting_id"


def test_dedup_window_is_bounded() -> None:
    d = Deduplicator(3)
    for i in range(10):
        assert d.check(str(i), b"x") == "new"
    assert len(d) == 3
    assert d.check("0", b"x") == "new"  # forgotten
    assert d.check("9", b"x") == "duplicate"


def test_json_schemas_cover_every_topic() -> None:
    s = json_schemas()
    assert set(s) >= {"tocsin.env.readings", "tocsin.citizen.complaints", "tocsin.market.events",
                      "tocsin.warnings", "tocsin.deadletter"}
    assert "reading_id" in s["tocsin.env.readings"]["properties"]
    assert "warning_id" in s["tocsin.warnings"]["properties"]
    assert Complaint.model_json_schema()["properties"]["channel"]["enum"] == [
        "hotline", "app", "web", "wechat"]


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=6),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(["env", "complaint", "market"]),
       base=st.sampled_from([READING, COMPLAINT, MARKET]),
       field=st.sampled_from(sorted({*READING, *COMPLAINT, *MARKET})),
       value=json_values)
def test_property_mutated_records_never_crash(
    registry: RegionRegistry, source: str, base: dict, field: str, value: object
) -> None:
    ing = Ingestor(registry)
    obj = {**base, field: value}
    data = json.dumps(obj, allow_nan=True).encode()
    res = ing.ingest(source, data, ORIGIN)
    assert (res.record is None) != (res.dead is None)
    if res.dead is not None:
        assert res.dead.reason


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), source=st.sampled_from(["env", "complaint", "market"]))
def test_property_arbitrary_bytes_never_crash(
    registry: RegionRegistry, data: bytes, source: str
) -> None:
    res = Ingestor(registry).ingest(source, data, ORIGIN)
    assert res.dead is not None or res.record is not None


@pytest.mark.parametrize("size", [10, 70 * 1024, 450 * 1024, 3 * 2**20])
def test_a_dead_letter_fits_one_kafka_message_whatever_the_record(size: int) -> None:
    """A dead letter over Kafka's 1 MB message limit could not be sent, and the batch
    holding it would fail: bytes are capped at 512 KiB, text at 64 KiB; the size and
    SHA-256 of the whole record always travel with it."""
    import hashlib

    from streams.ingest.ingestor import dead_letter

    raw = b'{"note": "' + b"a" * size + b'"}'
    d = dead_letter(raw, ORIGIN, "too long", "schema")
    assert len(d.model_dump_json().encode()) < 1_000_000
    assert d.original_size == len(raw)
    assert d.original_sha256 == hashlib.sha256(raw).hexdigest()
    assert d.truncated == (len(raw) > 512 * 1024)
    assert base64.b64decode(d.original_b64) == raw[:512 * 1024]
    assert (d.original_text is not None) == (len(raw) <= 64 * 1024)
