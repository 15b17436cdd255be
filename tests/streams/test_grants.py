"""Sharing grants: loading, per-audience views, release records, and the worker's delivery."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.errors import ConfigError
from streams.core.regions import RegionRegistry
from streams.core.schemas import Anomaly, Audit, Evidence, HistoryEntry, SourceWatermark, Warning
from streams.core.topics import CATALOGUE, RELEASES, grant_topics, view_topic
from streams.publish.grants import (
    PACKAGED_SAMPLE,
    WARNING_FIELDS,
    Grant,
    check_grants,
    load_grants,
    release_record,
    view,
)
from tests.streams.test_agents import T0, drive, make_worker, topic_of

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LATER = datetime(2099, 1, 1, tzinfo=UTC)


def evidence(i: int, dept: str, signal: str, source: str = "env") -> Evidence:
    return Evidence(source=source, department=dept, region="harbour",  # type: ignore[arg-type]
                    signal=signal, detector="d", observed=61.25 + i, expected=20.5,
                    score=6.0, p_value=1e-6, event_time=T0, event_ids=[f"EVID-{i}"])


def warning(scenario: str = "pollution", region: str = "harbour") -> Warning:
    ev = [evidence(1, "ecology_bureau", "env:water_cod:S-harbour-1"),
          evidence(2, "ecology_bureau", "env:water_cod:S-harbour-2"),
          evidence(3, "citizen_hotline", "complaint:odor:harbour", "complaint")]
    return Warning(
        warning_id=f"tw-{region}-1", version=2, status="update", region=region,
        scenario=scenario, severity="Severe", urgency="Expected", certainty="Likely",
        score=12.5, departments=["ecology_bureau", "citizen_hotline"], first_seen=T0,
        last_seen=T0 + timedelta(hours=1), evidence=ev, explanation="COD up; odour reports.",
        history=[HistoryEntry(action="acknowledge", by="op-7", at=T0, reason="seen")],
        audit=Audit(template=scenario, rule="fisher", detectors={"d": "1"},
                    event_ids=["EVID-1", "EVID-2", "EVID-3"]),
    )


def grant(**kw: Any) -> Grant:
    base: dict[str, Any] = {
        "audience": "public_health", "purpose": "follow-up", "scenarios": ["all"],
        "regions": ["all"], "detail": "full", "fields": ["warning_id", "severity"],
        "expires": LATER}
    return Grant.model_validate({**base, **kw})


def write(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    p = tmp_path / "grants.yaml"
    p.write_text(yaml.safe_dump({"grants": entries}), encoding="utf-8")
    return p


GOOD = {"audience": "market_regulator", "purpose": "enforcement", "scenarios": ["all"],
        "regions": ["all"], "detail": "full", "fields": ["warning_id"],
        "expires": "2027-12-31T23:59:59Z"}


# -- loading --------------------------------------------------------------------------------
def test_packaged_sample_loads_and_names_real_scenarios_and_regions(
    registry: RegionRegistry
) -> None:
    grants = load_grants(PACKAGED_SAMPLE)
    assert [g.audience for g in grants] == [
        "market_regulator", "public_health", "harbour_district_office"]
    mr = grants[0]
    assert mr.detail == "full" and "evidence" in mr.fields and "audit" not in mr.fields
    assert mr.expires == datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert grants[2].regions == ["harbour", "eastport"]
    from detectors.fusion.templates import DEFAULT_FILE, load_templates

    names = {t.name for t in load_templates(DEFAULT_FILE).scenarios}
    check_grants(grants, names, set(registry.ids()))


@pytest.mark.parametrize(("change", "expected"), [
    ({"fields": ["warning_id", "reporter_phone"]}, "unknown warning field(s) 'reporter_phone'"),
    ({"detail": "everything"}, "detail: must be full or summary"),
    ({"expires": "next tuesday"}, "expires:"),
    ({"expires": "2027-12-31T23:59:59"}, "with a time zone"),
    ({"audience": "Market Regulator"}, "audience:"),
    ({"scenarios": ["all", "flood"]}, "[all] covers every scenario"),
    ({"colour": "red"}, "colour: unknown key"),
    ({"fields": []}, "at least one warning field"),
])
def test_bad_entries_name_the_file_the_entry_and_the_fix(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    bad = {**GOOD, "audience": "public_health", **change}
    p = write(tmp_path, [GOOD, bad])
    with pytest.raises(ConfigError) as err:
        load_grants(p)
    msg = str(err.value)
    assert str(p) in msg and "grants[1]" in msg and expected in msg
    assert "grants[0]" not in msg


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read grants file"):
        load_grants(tmp_path / "missing.yaml")
    (tmp_path / "x.yaml").write_text("grants: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_grants(tmp_path / "x.yaml")
    p = write(tmp_path, [GOOD, GOOD])
    with pytest.raises(ConfigError, match=r"grants\[1\] \(audience 'market_regulator'\): "
                       "audience listed twice"):
        load_grants(p)


def test_unknown_scenario_or_region_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown scenario.*'floood'"):
        check_grants([grant(scenarios=["floood"])], {"flood"}, {"harbour"})
    with pytest.raises(ConfigError, match=r"unknown region.*'atlantis'"):
        check_grants([grant(regions=["atlantis"])], {"flood"}, {"harbour"})


# -- views ----------------------------------------------------------------------------------
def test_full_view_has_exactly_the_granted_fields() -> None:
    g = grant(fields=["severity", "warning_id", "evidence", "region"])
    v = view(warning(), g, NOW)
    assert v is not None
    assert list(v) == ["severity", "warning_id", "evidence", "region"]
    assert v["severity"] == "Severe" and v["warning_id"] == "tw-harbour-1"
    assert v["evidence"][0]["event_ids"] == ["EVID-1"]  # full detail keeps the evidence
    assert v["evidence"][0]["event_time"] == "2026-03-02T00:00:00Z"
    json.dumps(v)  # JSON-ready


def test_audit_and_history_only_when_listed() -> None:
    v = view(warning(), grant(fields=list(WARNING_FIELDS)), NOW)
    assert v is not None and "audit" in v and "history" in v
    v = view(warning(), grant(fields=["warning_id", "evidence"]), NOW)
    assert v is not None and "audit" not in v and "history" not in v


def test_coverage_by_scenario_and_region() -> None:
    w = warning("pollution", "harbour")
    assert view(w, grant(scenarios=["pollution"], regions=["harbour"]), NOW) is not None
    assert view(w, grant(scenarios=["food_safety", "flood"]), NOW) is None
    assert view(w, grant(regions=["oldtown"]), NOW) is None
    assert view(w, grant(scenarios=["all"], regions=["oldtown", "harbour"]), NOW) is not None


def test_summary_drops_event_ids_values_and_operator_ids() -> None:
    g = grant(detail="summary", fields=["warning_id", "evidence", "audit", "history"])
    v = view(warning(), g, NOW)
    assert v is not None
    assert v["evidence"] == [
        {"department": "citizen_hotline", "kind": "complaint:odor", "count": 1},
        {"department": "ecology_bureau", "kind": "env:water_cod", "count": 2},
    ]
    assert "event_ids" not in v["audit"] and v["audit"]["template"] == "pollution"
    assert v["history"] == [{"action": "acknowledge", "at": "2026-03-02T00:00:00Z",
                             "accepted": True}]
    text = json.dumps(v)
    assert "EVID-" not in text and "61.25" not in text and "20.5" not in text
    assert "op-7" not in text


def test_expired_grant_gives_nothing() -> None:
    g = grant(expires=NOW)
    assert view(warning(), g, NOW) is not None  # expires is the last instant in force
    assert view(warning(), g, NOW + timedelta(seconds=1)) is None


def test_release_record_has_no_content() -> None:
    g = grant(detail="summary", fields=["warning_id", "explanation", "evidence"])
    rec = release_record(warning(), g, NOW)
    assert rec == {
        "audience": "public_health", "purpose": "follow-up", "warning_id": "tw-harbour-1",
        "version": 2, "fields": ["warning_id", "explanation", "evidence"], "detail": "summary",
        "released_at": "2026-06-01T00:00:00Z", "grant_expires": "2099-01-01T00:00:00Z"}
    assert "COD" not in json.dumps(rec) and "EVID" not in json.dumps(rec)


SCENARIOS = ["pollution", "flood", "food_safety"]
REGIONS = ["harbour", "oldtown", "lakeside"]


@st.composite
def warnings(draw: st.DrawFn) -> Warning:
    n = draw(st.integers(1, 6))
    ev = [Evidence(
        source=draw(st.sampled_from(["env", "complaint", "market"])),
        department=draw(st.sampled_from(["ecology_bureau", "citizen_hotline", "market_dept"])),
        region="harbour", signal=f"{draw(st.sampled_from(['env:cod', 'market:price:pork']))}"
        f":{draw(st.text('abc123-', min_size=1, max_size=5))}",
        detector="d", observed=draw(st.floats(-1e6, 1e6)), expected=1.0, score=3.0,
        p_value=0.001, event_time=T0,
        event_ids=[f"EVID-{i}-{j}" for j in range(draw(st.integers(0, 3)))])
        for i in range(n)]
    ids = [e for x in ev for e in x.event_ids]
    return Warning(
        warning_id="tw-x-1", version=draw(st.integers(1, 9)),
        status=draw(st.sampled_from(["new", "update", "resolved", "cancelled"])),
        region=draw(st.sampled_from(REGIONS)), scenario=draw(st.sampled_from(SCENARIOS)),
        severity="Minor", urgency="Future", certainty="Possible", score=3.0,
        departments=sorted({e.department for e in ev}), first_seen=T0, last_seen=T0,
        evidence=ev, explanation="x",
        audit=draw(st.none() | st.just(Audit(template="t", rule="r", detectors={},
                                             event_ids=ids))))


@st.composite
def grants(draw: st.DrawFn) -> Grant:
    return grant(
        fields=draw(st.lists(st.sampled_from(WARNING_FIELDS), min_size=1, unique=True)),
        detail=draw(st.sampled_from(["full", "summary"])),
        scenarios=draw(st.just(["all"]) | st.lists(st.sampled_from(SCENARIOS), min_size=1,
                                                    unique=True)),
        regions=draw(st.just(["all"]) | st.lists(st.sampled_from(REGIONS), min_size=1,
                                                  unique=True)),
        expires=NOW + timedelta(days=draw(st.integers(-3, 3))))


@settings(max_examples=200, deadline=None)
@given(warnings(), grants())
def test_views_never_exceed_the_grant(w: Warning, g: Grant) -> None:
    v = view(w, g, NOW)
    covered = g.covers(w.scenario, w.region) and g.expires >= NOW
    assert (v is not None) == covered
    if v is None:
        return
    assert set(v) <= set(g.fields)
    if g.detail == "summary":
        assert "EVID-" not in json.dumps(v)
        for item in v.get("evidence", []):
            assert set(item) == {"department", "kind", "count"}


# -- the worker -----------------------------------------------------------------------------
def test_topic_catalogue_has_releases_and_grant_topics(tmp_path: Path) -> None:
    from streams.core.settings import TocsinSettings

    assert RELEASES in {t.name for t in CATALOGUE}
    assert view_topic("public_health") == "tocsin.warnings.view.public_health"
    assert grant_topics(TocsinSettings()) == ()
    names = [t.name for t in grant_topics(TocsinSettings(grants=PACKAGED_SAMPLE))]
    assert names == ["tocsin.warnings.view.market_regulator",
                     "tocsin.warnings.view.public_health",
                     "tocsin.warnings.view.harbour_district_office"]


def test_worker_refuses_a_bad_grants_file(tmp_path: Path, registry: RegionRegistry) -> None:
    p = write(tmp_path, [{**GOOD, "regions": ["atlantis"]}])
    with pytest.raises(ConfigError, match="atlantis"):
        make_worker(tmp_path, registry, grants=p)


def test_correlate_agent_releases_views_under_valid_grants_only(
    tmp_path: Path, registry: RegionRegistry
) -> None:
    grants_file = write(tmp_path, [
        {**GOOD, "audience": "ecology_office", "scenarios": ["pollution"],
         "regions": ["harbour"], "detail": "summary",
         "fields": ["warning_id", "version", "status", "severity", "evidence"],
         "expires": "2099-12-31T23:59:59Z"},
        {**GOOD, "audience": "old_partner", "fields": ["warning_id", "evidence"],
         "expires": "2020-01-01T00:00:00Z"},
    ])
    worker, sent = make_worker(tmp_path / "w", registry, grants=grants_file)

    def anomaly(i: str, source: str, dept: str, kind: str, t: datetime) -> bytes:
        return Anomaly(
            anomaly_id=i, kind=kind, source=source, department=dept,  # type: ignore[arg-type]
            region="harbour", signal=f"{kind}:harbour", detector="d", observed=9.0,
            expected=1.0, score=6.0, p_value=1e-6, event_time=t, event_ids=[f"EVID-{i}"],
        ).model_dump_json().encode()

    n = worker.settings.partitions
    t1 = T0 + timedelta(hours=10)
    later = T0 + timedelta(hours=13)
    marks = [SourceWatermark(source=src, partition=p,  # type: ignore[arg-type]
                             watermark=later).model_dump_json().encode()
             for src in ("env", "complaint", "market") for p in range(n)]
    records = [anomaly("e1", "env", "ecology_bureau", "env:water_cod", t1),
               anomaly("c1", "complaint", "citizen_hotline", "complaint:odor",
                       t1 + timedelta(hours=1)), *marks]
    asyncio.run(drive(worker, "correlate", records, b"harbour"))

    warnings = [Warning.model_validate_json(v) for _, v, _ in topic_of(sent, "tocsin.warnings")]
    assert [(w.scenario, w.version) for w in warnings] == [("pollution", 1)]
    wid = warnings[0].warning_id.encode()

    views = topic_of(sent, "tocsin.warnings.view.ecology_office")
    assert [k for k, _, _ in views] == [wid]
    v = json.loads(views[0][1])
    assert list(v) == ["warning_id", "version", "status", "severity", "evidence"]
    assert v["version"] == 1 and "EVID-" not in views[0][1].decode()
    assert {e["kind"] for e in v["evidence"]} == {"env:water_cod", "complaint:odor"}
    assert topic_of(sent, "tocsin.warnings.view.old_partner") == []  # expired

    releases = [json.loads(r) for _, r, _ in topic_of(sent, "tocsin.releases")]
    assert len(releases) == len(views) == 1
    assert releases[0]["audience"] == "ecology_office"
    assert (releases[0]["warning_id"], releases[0]["version"]) == (wid.decode(), 1)
    assert releases[0]["fields"] == list(v)


def test_topics_create_makes_audience_topics_idempotently(isolated_settings: Any) -> None:
    from streams.core.topics import create_topics, topic_name

    s = isolated_settings.model_copy(update={"grants": PACKAGED_SAMPLE})
    first = create_topics(s)
    views = [topic_name(s, view_topic(g.audience)) for g in load_grants(PACKAGED_SAMPLE)]
    assert all(first[v] == "created" for v in views)
    assert first[topic_name(s, RELEASES)] == "created"
    assert set(create_topics(s).values()) == {"exists"}
