"""Hostile input at every ingest topic (hypothesis): malformed JSON, wrong types, huge
fields, NaN and infinities, future and ancient timestamps, unknown regions, invalid credit
codes, non-UTF-8 bytes. Bound: zero exceptions; every bad record is dead-lettered with a
reason and its exact original bytes; every good record is processed (valid, counted)."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.regions import RegionRegistry
from streams.core.settings import DEFAULT_REGISTRY, TocsinSettings
from streams.ingest.ingestor import Origin
from streams.pipeline.stages import SourceStage

REGISTRY = RegionRegistry.from_csv(DEFAULT_REGISTRY)
REGIONS = REGISTRY.ids()
T = "2026-03-02T08:00:00Z"


def good(source: str, i: int, region: str) -> dict[str, Any]:
    if source == "env":
        return {"reading_id": f"r-{i}", "sensor_id": "WQ-1", "metric": "water_cod",
                "value": 20.0 + i % 7, "unit": "mg/L", "region": region, "observed_at": T,
                "department": "ecology_bureau"}
    if source == "complaint":
        return {"complaint_id": f"c-{i}", "channel": "hotline", "category": "odor",
                "text": "smell near the river", "region": region, "received_at": T,
                "department": "citizen_hotline"}
    return {"event_id": f"m-{i}", "kind": "price_report", "commodity": "pork",
            "price": 30.0 + i % 5, "unit": "CNY/kg", "region": region, "occurred_at": T,
            "department": "market_regulation"}


TIME_FIELD = {"env": "observed_at", "complaint": "received_at", "market": "occurred_at"}
HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50), st.just("x" * 200_000), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
                     "2999-01-01T00:00:00Z", "not a time", "nowhere", "NaN", "Infinity",
                     "91350100M000100Y3", "000000000000000000"]),
)


@st.composite
def mutated(draw: st.DrawFn, source: str) -> bytes:
    """A good record with one field replaced, removed, or a field added."""
    rec = good(source, draw(st.integers(0, 10**6)), draw(st.sampled_from(REGIONS)))
    how = draw(st.sampled_from(["replace", "drop", "add", "region", "time"]))
    key = draw(st.sampled_from(sorted(rec)))
    if how == "replace":
        rec[key] = draw(HOSTILE_VALUES)
    elif how == "drop":
        rec.pop(key)
    elif how == "add":
        rec[draw(st.text(min_size=1, max_size=10))] = draw(HOSTILE_VALUES)
    elif how == "region":
        rec["region"] = draw(st.text(max_size=20).filter(lambda r: r not in REGIONS))
    else:
        rec[TIME_FIELD[source]] = draw(st.sampled_from(
            ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2999-01-01T00:00:00Z",
             "1900-01-01T00:00:00Z", "2026-13-40T99:00:00Z"]))
    text = json.dumps(rec, allow_nan=True)  # NaN/Infinity literals, as a careless producer
    return text.encode()


raw_junk = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.just(b"\xff\xfe\xfa not utf-8"), st.just(b"{"), st.just(b"[]"), st.just(b"null"),
    st.just(b'{"a": NaN}'), st.just(b"1e999"), st.just(b'"' + b"x" * 100_000 + b'"'),
)


def stage() -> SourceStage:
    return SourceStage(TocsinSettings(), REGISTRY)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(source=st.sampled_from(["env", "complaint", "market"]), data=st.data())
def test_no_record_crashes_ingest_and_bad_ones_are_dead_lettered_with_their_bytes(
        source: str, data: st.DataObject) -> None:
    raw = data.draw(st.one_of(raw_junk, mutated(source)))
    s = stage()
    origin = Origin(f"tocsin.{source}", 3, 42, b"key")
    res = s.process(source, raw, origin)  # must not raise
    c = s.counters
    assert c.received[source] == 1
    if res.dead is not None:
        assert res.dead.reason.strip() and res.dead.error_type.strip()
        assert base64.b64decode(res.dead.original_b64) == raw
        assert (res.dead.source_topic, res.dead.partition, res.dead.offset) == (
            origin.topic, 3, 42)
        assert c.dead[source] == 1 and c.valid[source] == 0
    else:
        # accepted: it must really be a well-formed record of this source, at a sane time
        assert c.valid[source] == 1 and c.dead[source] == 0
        obj = json.loads(raw)
        assert isinstance(obj, dict) and obj.get("region") in REGIONS
        assert "2000-01-01" <= str(obj[TIME_FIELD[source]])[:10] <= "2026-12-31"


def test_far_future_and_ancient_times_are_dead_lettered_not_poisoning_the_watermark(
        ) -> None:
    s = stage()
    for i, (t, err) in enumerate([("2999-01-01T00:00:00Z", "future_time"),
                                  ("9999-12-31T23:59:59Z", "future_time"),
                                  ("1900-01-01T00:00:00Z", "ancient_time")]):
        rec = good("env", i, REGIONS[0]) | {"observed_at": t}
        res = s.process("env", json.dumps(rec).encode(), Origin("tocsin.env", 0, i, None))
        assert res.dead is not None and res.dead.error_type == err, res
    # the partition's event time was not moved: an ordinary record is still on time
    assert s.watermark("env", 0) is None
    res = s.process("env", json.dumps(good("env", 99, REGIONS[0])).encode(),
                    Origin("tocsin.env", 0, 99, None))
    assert res.dead is None and s.late("env") == 0


@settings(max_examples=100, deadline=None)
@given(source=st.sampled_from(["env", "complaint", "market"]),
       ids=st.lists(st.integers(0, 10**6), min_size=1, max_size=20, unique=True),
       region=st.sampled_from(REGIONS))
def test_every_good_record_is_processed(source: str, ids: list[int], region: str) -> None:
    s = stage()
    for n, i in enumerate(ids):
        res = s.process(source, json.dumps(good(source, i, region)).encode(),
                        Origin(f"tocsin.{source}", 0, n, region.encode()))
        assert res.dead is None, res.dead
    assert s.counters.valid[source] == len(ids) and s.counters.dead[source] == 0
