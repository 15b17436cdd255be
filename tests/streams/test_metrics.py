"""Worker metrics: each test builds its own registry and reads the values back."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from streams.core.regions import RegionRegistry
from streams.core.schemas import Anomaly, Warning
from streams.runtime.metrics import SEVERITIES, TocsinMetrics
from tests.streams.test_agents import T0, drive, make_worker, reading

REGIONS = ["harbour", "oldtown"]


def fresh(**kw: object) -> TocsinMetrics:
    return TocsinMetrics(CollectorRegistry(), regions=REGIONS, scenarios=["pollution"],
                         region_coords={"harbour": ("Harbour", 31.23, 121.5)}, **kw)  # type: ignore[arg-type]


def value(m: TocsinMetrics, metric: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(metric, labels)


def warning(wid: str, status: str, severity: str = "Severe", region: str = "harbour",
            delay_h: float = 2.0) -> Warning:
    first = T0
    return Warning(
        warning_id=wid, version=1, status=status, region=region, scenario="pollution",  # type: ignore[arg-type]
        severity=severity, urgency="Expected", certainty="Likely", score=12.0,  # type: ignore[arg-type]
        departments=["ecology_bureau", "citizen_hotline"], first_seen=first,
        last_seen=first + timedelta(hours=delay_h), evidence=[], explanation="x",
    )


def test_series_exist_from_the_start_with_zero() -> None:
    m = fresh()
    for src in ("env", "complaint", "market"):
        assert value(m, "tocsin_events_received_total", source=src) == 0.0
        assert value(m, "tocsin_events_late_total", source=src) == 0.0
    for sev in SEVERITIES:
        for r in REGIONS:
            assert value(m, "tocsin_warnings_active", severity=sev, region=r) == 0.0
    assert value(m, "tocsin_warnings_emitted_total", status="new", scenario="pollution") == 0.0
    assert value(m, "tocsin_region_info", region="harbour", name="Harbour",
                 latitude="31.23000", longitude="121.50000") == 1.0
    assert value(m, "tocsin_build_info", version=m.build._value["version"],  # type: ignore[attr-defined]
                 faust_version=m.build._value["faust_version"],  # type: ignore[attr-defined]
                 python_version=m.build._value["python_version"],  # type: ignore[attr-defined]
                 app_id="tocsin", partitions="1") == 1.0


def test_cumulative_counts_become_increments_once_per_batch() -> None:
    m = fresh()
    m.observe_source("env", {"received": 10, "valid": 8, "duplicate": 1}, 1,
                     Counter({"schema": 1}), 1000.0, 0.5, 10)
    m.observe_source("env", {"received": 25, "valid": 20, "duplicate": 1}, 3,
                     Counter({"schema": 2, "unknown_region": 1}), 2000.0, 0.25, 15)
    assert value(m, "tocsin_events_received_total", source="env") == 25
    assert value(m, "tocsin_events_valid_total", source="env") == 20
    assert value(m, "tocsin_events_duplicate_total", source="env") == 1
    assert value(m, "tocsin_events_late_total", source="env") == 3
    assert value(m, "tocsin_events_dead_lettered_total", source="env", reason="schema") == 3
    assert value(m, "tocsin_events_dead_lettered_total", source="env",
                 reason="unknown_region") == 1
    assert value(m, "tocsin_source_last_event_timestamp_seconds", source="env") == 2000.0
    assert value(m, "tocsin_detect_seconds_total", source="env") == 0.75
    assert value(m, "tocsin_batch_events_total", agent="ingest.env") == 25


def test_active_warnings_follow_the_lifecycle_and_delay_is_event_time() -> None:
    m = fresh()
    m.observe_warnings([warning("w1", "new"), warning("w2", "new", "Moderate", "oldtown", 0.5)],
                       now=T0.timestamp() + 3 * 3600)
    assert value(m, "tocsin_warnings_active", severity="Severe", region="harbour") == 1
    assert value(m, "tocsin_warnings_active", severity="Moderate", region="oldtown") == 1
    assert value(m, "tocsin_detection_delay_seconds_count", scenario="pollution") == 2
    assert value(m, "tocsin_detection_delay_seconds_sum", scenario="pollution") == 2.5 * 3600
    # updated to Extreme: moves severity, not counted as a second detection
    m.observe_warnings([warning("w1", "update", "Extreme")])
    assert value(m, "tocsin_warnings_active", severity="Severe", region="harbour") == 0
    assert value(m, "tocsin_warnings_active", severity="Extreme", region="harbour") == 1
    assert value(m, "tocsin_detection_delay_seconds_count", scenario="pollution") == 2
    m.observe_warnings([warning("w1", "resolved"), warning("w2", "cancelled")])
    assert m.active_warnings == 0
    assert value(m, "tocsin_warnings_active", severity="Extreme", region="harbour") == 0
    assert value(m, "tocsin_warnings_emitted_total", status="resolved", scenario="pollution") == 1
    assert value(m, "tocsin_warnings_emitted_total", status="new", scenario="pollution") == 2


def test_weak_findings_and_neighbour_copies_are_told_apart() -> None:
    m = fresh()
    base = dict(source="complaint", department="citizen_hotline", region="harbour",
                signal="complaint:odor:harbour", detector="count_surge", observed=3,
                expected=0.5, score=3.0, p_value=1e-3, event_time=T0, kind="complaint:odor")
    m.observe_anomalies([
        Anomaly(anomaly_id="complaint:odor:harbour@10", **base),  # type: ignore[arg-type]
        Anomaly(anomaly_id="complaint:odor:harbour@10~1", **base),  # type: ignore[arg-type]
        Anomaly(anomaly_id="complaint:odor:harbour@10", via="oldtown", **base),  # type: ignore[arg-type]
    ])
    assert value(m, "tocsin_anomalies_total", department="complaint", detector="count_surge",
                 level="anomaly") == 1
    assert value(m, "tocsin_anomalies_total", department="complaint", detector="count_surge",
                 level="weak") == 1


def test_signal_gauges_are_capped() -> None:
    m = fresh(max_signals=2)
    rows = [("harbour", "env", f"env:m{i}", float(i), 1.0) for i in range(4)]
    m.add_signal_reader(lambda: rows)
    assert value(m, "tocsin_signal_observed", region="harbour", department="env",
                 signal="env:m1") == 1.0
    assert value(m, "tocsin_signal_expected", region="harbour", department="env",
                 signal="env:m0") == 1.0
    assert value(m, "tocsin_signal_observed", region="harbour", department="env",
                 signal="env:m3") is None
    assert (value(m, "tocsin_metrics_signals_dropped_total") or 0) >= 2


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["new", "update", "resolved", "cancelled"]),
                          st.sampled_from(["w1", "w2", "w3"]),
                          st.sampled_from(["Extreme", "Severe", "Moderate", "Minor"]),
                          st.sampled_from(REGIONS)), max_size=30))
def test_active_gauge_equals_open_warnings(ops: list[tuple[str, str, str, str]]) -> None:
    m = fresh()
    open_: dict[str, tuple[str, str]] = {}
    for status, wid, sev, region in ops:
        m.observe_warnings([warning(wid, status, sev, region)])
        if status in ("new", "update"):
            open_[wid] = (sev, region)
        else:
            open_.pop(wid, None)
    total = sum(value(m, "tocsin_warnings_active", severity=s, region=r) or 0
                for s in SEVERITIES for r in REGIONS)
    assert total == len(open_) == m.active_warnings


def test_exposition_has_no_personal_data_labels_and_follows_naming() -> None:
    m = fresh()
    text = generate_latest(m.registry).decode()
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            _, _, name, kind = line.split()
            assert name.startswith("tocsin_"), name
            if kind == "counter":
                assert name.endswith("_total"), name
    labels = set(re.findall(r"(\w+)=\"", text))
    assert labels <= {"source", "reason", "department", "detector", "level", "status",
                      "scenario", "severity", "region", "agent", "topic", "partition",
                      "target", "outcome", "name", "latitude", "longitude", "version",
                      "faust_version", "python_version", "app_id", "partitions", "signal",
                      "le"}, labels


def test_worker_counts_what_its_agents_handle(tmp_path: Path, registry: RegionRegistry) -> None:
    worker, _ = make_worker(tmp_path, registry)
    m = worker.metrics
    records = [reading(i, 20.0 + (i % 3), T0 + timedelta(minutes=15 * i)) for i in range(30)]
    records += [b"\xff not json", records[5]]  # one garbage, one exact re-delivery

    asyncio.run(drive(worker, "ingest_env", records, b"harbour"))
    assert value(m, "tocsin_events_received_total", source="env") == 32
    assert value(m, "tocsin_events_valid_total", source="env") == 30
    assert value(m, "tocsin_events_duplicate_total", source="env") == 1
    dead = sum(s.value for mf in m.registry.collect() for s in mf.samples
               if s.name == "tocsin_events_dead_lettered_total" and s.labels["source"] == "env")
    assert dead == 1
    last = value(m, "tocsin_source_last_event_timestamp_seconds", source="env")
    assert last == (T0 + timedelta(minutes=15 * 29)).timestamp()
    assert (value(m, "tocsin_batch_processing_seconds_count", agent="ingest.env") or 0) >= 1
    observed = value(m, "tocsin_signal_observed", region="harbour", department="env",
                     signal="env:water_cod")
    assert observed is not None and 19.0 <= observed <= 23.0
    assert json.loads(json.dumps(worker.metrics.regions)) == registry.ids()
    assert datetime.now(UTC).timestamp() - (value(
        m, "tocsin_source_last_processed_timestamp_seconds", source="env") or 0) < 3600
