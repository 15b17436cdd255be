"""CAP 1.2 rendering of warnings: schema validity (the official OASIS XSD in ../shared/cap)
and the rules of the specification the schema cannot express."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from streams.core.regions import Region, RegionRegistry
from streams.core.schemas import Certainty, Complaint, Evidence, Severity, Urgency, Warning
from streams.core.settings import DEFAULT_REGISTRY
from streams.publish.cap import (
    DEFAULT_SENDER,
    HEADLINE_MAX,
    CapError,
    cap_identifier,
    to_cap,
    to_cap_series,
)

CAP_XSD = Path(__file__).resolve().parents[2].parent / "shared" / "cap" / "CAP-v1.2.xsd"
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
REGISTRY = RegionRegistry.from_csv(DEFAULT_REGISTRY)


@cache
def _schema() -> etree.XMLSchema:
    if not CAP_XSD.is_file():
        pytest.fail(
            f"the OASIS CAP 1.2 schema is missing: expected {CAP_XSD} (the shared/ folder beside "
            "the repository, which CI always has); restore shared/cap/CAP-v1.2.xsd",
            pytrace=False,
        )
    return etree.XMLSchema(etree.parse(str(CAP_XSD)))


@pytest.fixture(autouse=True, scope="module")
def cap_schema() -> etree.XMLSchema:
    """Fail every test at once (no slow hypothesis shrinking) when the schema is missing."""
    return _schema()


def parse_valid(xml: str) -> Any:
    """Parse a rendered alert, asserting it is well-formed UTF-8 and valid CAP 1.2."""
    assert isinstance(xml, str)
    doc = etree.fromstring(xml.encode("utf-8"))
    schema = _schema()
    if not schema.validate(doc):
        raise AssertionError(f"not valid CAP 1.2: {schema.error_log}\n{xml}")
    return doc


def text(doc: Any, path: str) -> str:
    found = doc.findtext(path, namespaces=NS)
    assert found is not None, f"{path} missing"
    return str(found)


def texts(doc: Any, path: str) -> list[str]:
    return [str(e.text or "") for e in doc.findall(path, namespaces=NS)]


def params(doc: Any) -> list[tuple[str, str]]:
    return [
        (text(p, "cap:valueName"), text(p, "cap:value"))
        for p in doc.findall("cap:info/cap:parameter", namespaces=NS)
    ]


# -- realistic warnings -------------------------------------------------------------------------
def evidence(source: str, dept: str, region: str, kind: str, inst: str, observed: float,
             expected: float, p: float, at: datetime, ids: list[str]) -> Evidence:
    import math

    return Evidence(
        source=source, department=dept, region=region, signal=f"{kind}:{inst}",
        detector="robust_median" if source == "env" else "quasi_poisson", observed=observed,
        expected=expected, score=round(-math.log10(p), 3), p_value=p, event_time=at,
        event_ids=ids,
    )


def lifecycle(scenario: str, region: str, explanation: str,
              ev: list[Evidence], *, end: str = "resolved") -> list[Warning]:
    """new -> update -> resolved|cancelled versions of one warning, sent in order."""
    depts = sorted({e.department for e in ev})
    wid = f"tw-{region}-{hashlib.sha1(f'{region}|{scenario}'.encode()).hexdigest()[:16]}"
    base = dict(
        warning_id=wid, region=region, scenario=scenario, severity="Moderate",
        urgency="Immediate", certainty="Possible", score=11.437, departments=depts[:2],
        first_seen=ev[0].event_time, last_seen=ev[1].event_time, evidence=ev[:2],
        explanation=explanation,
    )
    new = Warning(version=1, status="new", sent_at=ev[1].event_time + timedelta(seconds=2.75),
                  **base)  # type: ignore[arg-type]
    upd = new.model_copy(update=dict(
        version=2, status="update", severity="Severe", certainty="Likely", score=23.9,
        departments=depts, evidence=ev, last_seen=ev[-1].event_time,
        sent_at=ev[-1].event_time + timedelta(seconds=1),
    ))
    last = upd.model_copy(update=dict(
        version=3, status=end, urgency="Past" if end == "resolved" else "Immediate",
        explanation=("Resolved: " if end == "resolved" else "") + explanation,
        sent_at=ev[-1].event_time + 12 * H,
    ))
    return [new, upd, last]


def pollution(end: str = "resolved") -> list[Warning]:
    ev = [
        evidence("env", "ecology_bureau", "harbour", "env:water_cod", "S-harbour-w", 58.2, 21.0,
                 6e-8, T0, ["rd-000193"]),
        evidence("complaint", "citizen_hotline", "harbour", "complaint:odor", "harbour", 14,
                 2.1, 3.2e-5, T0 + H, ["c-5521", "c-5522"]),
        evidence("complaint", "citizen_hotline", "harbour", "complaint:illness", "harbour", 6,
                 0.4, 2e-4, T0 + 2 * H, ["c-5530"]),
        evidence("market", "market_regulation", "harbour", "market:inspection_fail",
                 "harbour", 3, 0.2, 1e-3, T0 + 3 * H, ["m-88"]),
    ]
    return lifecycle(
        "pollution", "harbour",
        "Possible pollution in harbour: 3 departments (citizen_hotline, ecology_bureau, "
        "market_regulation) report anomalies since 2026-11-23 08:00 UTC. env:water_cod "
        "observed 58.2 vs expected 21 (p=6.0e-08); complaint:odor observed 14 vs expected 2.1 "
        "(p=3.2e-05). Residents say: \"smells like <solvent> & rotten eggs\" — 臭味, Geruch.",
        ev, end=end,
    )


def food_safety(end: str = "cancelled") -> list[Warning]:
    ev = [
        evidence("market", "market_regulation", "oldtown", "market:inspection_fail", "oldtown",
                 4, 0.3, 1e-4, T0, ["m-1201"]),
        evidence("complaint", "citizen_hotline", "oldtown", "complaint:food_safety",
                 "oldtown", 9, 1.2, 4e-6, T0 + 2 * H, ["c-9001"]),
        evidence("complaint", "citizen_hotline", "oldtown", "complaint:illness", "oldtown",
                 5, 0.5, 7e-4, T0 + 4 * H, ["c-9007"]),
    ]
    return lifecycle(
        "food_safety", "oldtown",
        "Possible food safety in oldtown: 2 departments report anomalies; inspections at "
        "\"Li & Sons <Noodles>\" failed 4× (expected 0.3); 食品安全 complaints 9 vs 1.2.",
        ev, end=end,
    )


def price_gouging(end: str = "resolved") -> list[Warning]:
    ev = [
        evidence("market", "market_regulation", "eastport", "market:price:pork", "stall-17",
                 48.5, 26.0, 2e-7, T0, ["m-3001"]),
        evidence("complaint", "citizen_hotline", "eastport", "complaint:price", "eastport",
                 11, 1.5, 5e-6, T0 + 30 * timedelta(minutes=1), ["c-4410"]),
        evidence("market", "market_regulation", "eastport", "market:price:pork", "stall-22",
                 51.0, 26.0, 8e-8, T0 + 2 * H, ["m-3007"]),
    ]
    return lifecycle(
        "price_gouging", "eastport",
        "Possible price gouging in eastport: pork ¥48.5/kg vs expected ¥26 (p<1e-6) & 11 "
        "complaints; 猪肉价格 > 1.8× normal.",
        ev, end=end,
    )


def flood(end: str = "cancelled") -> list[Warning]:
    ev = [
        evidence("env", "ecology_bureau", "lakeside", "env:water_level_m", "G-lakeside", 2.9,
                 2.0, 1e-9, T0, ["rd-7"]),
        evidence("complaint", "citizen_hotline", "lakeside", "complaint:flooding", "lakeside",
                 22, 0.8, 1e-12, T0 + H, ["c-1", "c-2"]),
        evidence("complaint", "citizen_hotline", "lakeside", "complaint:water_quality",
                 "lakeside", 4, 0.6, 3e-3, T0 + 90 * timedelta(minutes=1), ["c-3"]),
    ]
    return lifecycle(
        "flood", "lakeside",
        "Possible flood in lakeside: water level 2.9 m > warning stage 2.6 m; 积水 reports "
        "×22 <urgent> & rising.",
        ev, end=end,
    )


LIFECYCLES = {
    "pollution-resolved": pollution,
    "food_safety-cancelled": food_safety,
    "price_gouging-resolved": price_gouging,
    "flood-cancelled": flood,
}


def rendered(versions: list[Warning], **kw: Any) -> list[Any]:
    return [parse_valid(x) for x in to_cap_series(versions, REGISTRY, **kw)]


# -- schema validity ----------------------------------------------------------------------------
def test_the_cap_schema_is_there() -> None:
    assert CAP_XSD.is_file(), f"missing {CAP_XSD}"
    assert _schema().validate(etree.fromstring(b"<alert/>")) is False


@pytest.mark.parametrize("name", sorted(LIFECYCLES))
def test_every_version_validates_against_the_cap_xsd(name: str) -> None:
    docs = rendered(LIFECYCLES[name]())
    assert [text(d, "cap:msgType") for d in docs] == [
        "Alert", "Update", "Cancel" if name.endswith("cancelled") else "Update"
    ]
    for d in docs:
        assert text(d, "cap:status") == "Actual"
        assert d.tag == "{urn:oasis:names:tc:emergency:cap:1.2}alert"


def test_new_update_resolved_and_cancelled_map_to_cap_message_types() -> None:
    new, upd, resolved = (rendered(pollution("resolved")))
    cancelled = rendered(food_safety("cancelled"))[-1]
    assert text(new, "cap:msgType") == "Alert"
    assert texts(new, "cap:info/cap:responseType") == ["Assess"]
    assert text(new, "cap:info/cap:urgency") == "Immediate"
    assert text(upd, "cap:msgType") == "Update"
    assert texts(upd, "cap:info/cap:responseType") == ["Assess"]
    assert text(upd, "cap:info/cap:severity") == "Severe"
    assert text(upd, "cap:info/cap:certainty") == "Likely"
    # a resolved incident is over: Update + AllClear + Past
    assert text(resolved, "cap:msgType") == "Update"
    assert texts(resolved, "cap:info/cap:responseType") == ["AllClear"]
    assert text(resolved, "cap:info/cap:urgency") == "Past"
    assert "over" in text(resolved, "cap:info/cap:instruction")
    # a withdrawn warning: Cancel, even if its last urgency said otherwise
    assert text(cancelled, "cap:msgType") == "Cancel"
    assert texts(cancelled, "cap:info/cap:responseType") == ["None"]
    assert text(cancelled, "cap:info/cap:urgency") == "Past"
    assert "withdrawn" in text(cancelled, "cap:info/cap:instruction")


def test_special_characters_and_unicode_survive_the_round_trip() -> None:
    versions = pollution()
    doc = rendered(versions)[0]
    assert text(doc, "cap:info/cap:description") == versions[0].explanation
    assert "<solvent> & rotten" in text(doc, "cap:info/cap:description")
    assert "臭味" in text(doc, "cap:info/cap:description")
    xml = to_cap(versions[0], REGISTRY)
    assert "&lt;solvent&gt; &amp; rotten" in xml
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_control_characters_are_replaced_so_the_xml_stays_valid() -> None:
    w = pollution()[0].model_copy(update={"explanation": "odour\x00 at pier\x1b[31m 4 \ufffe"})
    doc = parse_valid(to_cap(w, REGISTRY))
    assert text(doc, "cap:info/cap:description") == "odour\ufffd at pier\ufffd[31m 4 \ufffd"


# -- rules the schema cannot express ------------------------------------------------------------
REF = re.compile(r"^([^\s,<&]+),([^\s,<&]+),(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d)$")


@pytest.mark.parametrize("name", sorted(LIFECYCLES))
def test_updates_and_cancels_reference_every_earlier_version(name: str) -> None:
    docs = rendered(LIFECYCLES[name]())
    issued: dict[str, tuple[str, str]] = {}  # identifier -> (sender, sent)
    for i, d in enumerate(docs):
        refs = d.findtext("cap:references", namespaces=NS)
        if text(d, "cap:msgType") == "Alert":
            assert refs is None
        else:
            assert refs, "an Update or Cancel needs references"
            triples = [REF.match(r) for r in refs.split(" ")]
            assert all(triples), refs
            got = [(m.group(1), m.group(2), m.group(3)) for m in triples if m]
            assert len(got) == i  # all earlier versions, no more
            for sender, ident, sent in got:
                assert ident in issued, f"{ident} references an alert never issued"
                assert (sender, sent) == issued[ident]
            assert [g[1] for g in got] == list(issued)  # in version order
        issued[text(d, "cap:identifier")] = (text(d, "cap:sender"), text(d, "cap:sent"))


def test_identifier_is_unique_per_version_and_incidents_tie_versions_together() -> None:
    ids = []
    for make in LIFECYCLES.values():
        versions = make()
        docs = rendered(versions)
        ids += [text(d, "cap:identifier") for d in docs]
        assert {text(d, "cap:incidents") for d in docs} == {versions[0].warning_id}
        assert [text(d, "cap:identifier") for d in docs] == [
            f"{v.warning_id}.v{v.version}" for v in versions
        ]
    assert len(ids) == len(set(ids))
    for ident in ids:
        assert not re.search(r"[\s,<&]", ident)
    # rendering again gives the same identifier (stable across re-runs)
    assert text(rendered(pollution())[1], "cap:identifier") == ids[1]


def test_identifier_escapes_characters_cap_forbids() -> None:
    assert cap_identifier("a b,c<d&e", 2) == "a%20b%2Cc%3Cd%26e.v2"
    assert cap_identifier("a%20b", 2) != cap_identifier("a b", 2)
    w = pollution()[0].model_copy(update={"warning_id": "tw harbour,1<&>"})
    doc = parse_valid(to_cap(w, REGISTRY))
    assert not re.search(r"[\s,<&]", text(doc, "cap:identifier"))
    assert ("warning_id", "tw harbour,1<&>") in params(doc)


def test_sent_never_goes_back_even_if_a_later_version_has_an_earlier_clock() -> None:
    new, upd, res = pollution()
    # the update's wall clock is behind the first version's (clock skew between workers)
    upd = upd.model_copy(update={"sent_at": new.sent_at - timedelta(minutes=5)})  # type: ignore[operator]
    docs = rendered([new, upd, res])
    sent = [datetime.fromisoformat(text(d, "cap:sent")) for d in docs]
    assert sent == sorted(sent)
    assert sent[1] == sent[0]
    # fractional seconds are dropped, not rounded up past the real time
    assert sent[0] == new.sent_at.replace(microsecond=0)  # type: ignore[union-attr]


def test_sent_falls_back_to_the_last_evidence_without_a_send_time() -> None:
    w = pollution()[0].model_copy(update={"sent_at": None})
    doc = parse_valid(to_cap(w, REGISTRY))
    assert datetime.fromisoformat(text(doc, "cap:sent")) == w.last_seen


def test_times_are_cap_times_and_expires_follows_effective() -> None:
    for make in LIFECYCLES.values():
        for d in rendered(make()):
            stamps = [text(d, "cap:sent")] + [
                text(d, f"cap:info/cap:{f}") for f in ("effective", "onset", "expires")
            ]
            for s in stamps:
                assert CAP_TIME.match(s), s
                assert not s.endswith("Z") and "." not in s
            sent, effective, onset, expires = map(datetime.fromisoformat, stamps)
            assert effective == sent
            assert onset <= effective
            assert expires > effective
    d = parse_valid(to_cap(pollution()[0], REGISTRY, expires_after=None))
    assert d.find("cap:info/cap:expires", namespaces=NS) is None
    d = parse_valid(to_cap(pollution()[0], REGISTRY, expires_after=timedelta(hours=2)))
    assert (datetime.fromisoformat(text(d, "cap:info/cap:expires"))
            - datetime.fromisoformat(text(d, "cap:info/cap:effective"))) == timedelta(hours=2)
    with pytest.raises(CapError, match="expires_after"):
        to_cap(pollution()[0], REGISTRY, expires_after=timedelta(0))


def check_circle(circle: str) -> tuple[float, float, float]:
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?) (\d+(?:\.\d+)?)", circle)
    assert m, f"circle {circle!r} is not 'lat,lon radius'"
    lat, lon, radius = (float(g) for g in m.groups())
    assert -90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0
    return lat, lon, radius


def test_area_is_the_region_with_a_circle_and_a_geocode() -> None:
    d = rendered(flood())[0]
    region = REGISTRY.get("lakeside")
    assert text(d, "cap:info/cap:area/cap:areaDesc") == region.name
    (circle,) = texts(d, "cap:info/cap:area/cap:circle")
    lat, lon, radius = check_circle(circle)
    assert (lat, lon, radius) == (pytest.approx(region.lat), pytest.approx(region.lon), 3.0)
    assert text(d, "cap:info/cap:area/cap:geocode/cap:valueName") == "tocsin-region"
    assert text(d, "cap:info/cap:area/cap:geocode/cap:value") == "lakeside"
    d = parse_valid(to_cap(flood()[0], REGISTRY, radius_km=0.75))
    assert check_circle(texts(d, "cap:info/cap:area/cap:circle")[0])[2] == 0.75
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(CapError, match="radius_km"):
            to_cap(flood()[0], REGISTRY, radius_km=bad)


def test_a_region_missing_from_the_registry_keeps_its_geocode_but_no_circle() -> None:
    w = flood()[0].model_copy(update={"region": "atlantis"})
    d = parse_valid(to_cap(w, REGISTRY))
    assert text(d, "cap:info/cap:area/cap:areaDesc") == "atlantis"
    assert texts(d, "cap:info/cap:area/cap:circle") == []
    assert text(d, "cap:info/cap:area/cap:geocode/cap:value") == "atlantis"


def test_circle_at_the_edges_of_the_globe() -> None:
    reg = RegionRegistry([Region("pole", "South Pole Station", -90.0, -180.0),
                          Region("dateline", "Date Line", 89.99999, 180.0)])
    for region in ("pole", "dateline"):
        w = flood()[0].model_copy(update={"region": region})
        d = parse_valid(to_cap(w, reg))
        check_circle(texts(d, "cap:info/cap:area/cap:circle")[0])


def test_headline_fits_in_160_characters() -> None:
    long_name = "Very Long District Name With Many Words " * 8
    reg = RegionRegistry([Region("harbour", long_name, 31.23, 121.5)])
    for xml in to_cap_series(pollution(), reg):
        h = text(parse_valid(xml), "cap:info/cap:headline")
        assert len(h) <= HEADLINE_MAX and h.endswith("…")
    for make in LIFECYCLES.values():
        for d in rendered(make()):
            h = text(d, "cap:info/cap:headline")
            assert 0 < len(h) <= HEADLINE_MAX
    heads = [text(d, "cap:info/cap:headline") for d in rendered(pollution())]
    assert heads[0] == "Moderate: Environmental pollution in Harbour District"
    assert heads[1].endswith("(version 2)") and heads[2].endswith("resolved")


def test_no_personal_data_leaves_tocsin() -> None:
    complaint = Complaint(
        complaint_id="c-5521", channel="hotline", category="odor",
        text="My name is Wang Fang, I live at 12 Pier Road, the water stinks",
        region="harbour", reporter_phone="+86 138 0013 8000", received_at=T0 + H,
        department="citizen_hotline",
    )
    versions = pollution()
    assert any(complaint.complaint_id in e.event_ids for e in versions[1].evidence)
    xmls = to_cap_series(versions, REGISTRY)
    for xml in xmls:
        assert complaint.text not in xml and "Wang Fang" not in xml and "Pier Road" not in xml
        assert complaint.reporter_phone not in xml  # type: ignore[operator]
        assert "13800138000" not in xml.replace(" ", "")
        # the evidence goes out aggregated: no event ids at all
        for e in versions[1].evidence:
            for eid in e.event_ids:
                assert eid not in xml
        doc = parse_valid(xml)
        names = {n for n, _ in params(doc)}
        assert names <= {"warning_id", "version", "tocsin_status", "scenario", "score",
                         "departments", "first_seen", "last_seen", "evidence_count",
                         "evidence"}
        tags = {etree.QName(e).localname for e in doc.iter()}
        assert not tags & {"contact", "addresses", "resource", "note"}


def test_categories_per_scenario_and_override() -> None:
    cats = {name: texts(rendered(make())[0], "cap:info/cap:category")
            for name, make in LIFECYCLES.items()}
    assert cats == {"pollution-resolved": ["Env"], "food_safety-cancelled": ["Health"],
                    "price_gouging-resolved": ["Other"], "flood-cancelled": ["Met"]}
    w = pollution()[0]
    d = parse_valid(to_cap(w, REGISTRY, category="CBRNE"))
    assert texts(d, "cap:info/cap:category") == ["CBRNE"]
    d = parse_valid(to_cap(w, REGISTRY, category=["Env", "Health", "Env"]))
    assert texts(d, "cap:info/cap:category") == ["Env", "Health"]
    d = parse_valid(to_cap(w.model_copy(update={"scenario": "chemical_leak"}), REGISTRY))
    assert texts(d, "cap:info/cap:category") == ["Env"]
    assert text(d, "cap:info/cap:event") == "Chemical leak"
    d = parse_valid(to_cap(w.model_copy(update={"scenario": "cross_department"}), REGISTRY))
    assert texts(d, "cap:info/cap:category") == ["Other"]
    d = parse_valid(to_cap(w.model_copy(update={"scenario": "heat_wave"}), REGISTRY))
    assert texts(d, "cap:info/cap:category") == ["Other"]
    assert text(d, "cap:info/cap:event") == "Heat wave"
    with pytest.raises(CapError, match="categor"):
        to_cap(w, REGISTRY, category="Weather")  # type: ignore[arg-type]
    with pytest.raises(CapError, match="category"):
        to_cap(w, REGISTRY, category=[])


def test_instruction_default_and_override() -> None:
    w = food_safety()[0]
    d = parse_valid(to_cap(w, REGISTRY))
    assert "Inspect" in text(d, "cap:info/cap:instruction")
    d = parse_valid(to_cap(w, REGISTRY, instruction="Close stall 7 & call <Dr. Li>."))
    assert text(d, "cap:info/cap:instruction") == "Close stall 7 & call <Dr. Li>."


def test_scope_sender_and_options() -> None:
    w = price_gouging()[0]
    d = parse_valid(to_cap(w, REGISTRY))
    assert text(d, "cap:scope") == "Restricted" and text(d, "cap:restriction")
    assert text(d, "cap:sender") == DEFAULT_SENDER
    d = parse_valid(to_cap(w, REGISTRY, scope="Public", sender="alerts@city.example.gov",
                           language="zh-CN", web="https://alerts.city.example.gov/w/1",
                           cap_status="Exercise"))
    assert text(d, "cap:scope") == "Public"
    assert d.find("cap:restriction", namespaces=NS) is None
    assert text(d, "cap:sender") == "alerts@city.example.gov"
    assert text(d, "cap:info/cap:language") == "zh-CN"
    assert text(d, "cap:info/cap:web") == "https://alerts.city.example.gov/w/1"
    assert text(d, "cap:status") == "Exercise"
    for bad in ("tocsin alerts@x.org", "a,b@x.org", "a<b", "a&b", ""):
        with pytest.raises(CapError, match="sender"):
            to_cap(w, REGISTRY, sender=bad)
    with pytest.raises(CapError, match="language"):
        to_cap(w, REGISTRY, language="english please")


def test_an_update_without_its_earlier_versions_is_refused() -> None:
    new, upd, res = pollution()
    with pytest.raises(CapError, match="pass version"):
        to_cap(upd, REGISTRY)
    with pytest.raises(CapError, match=r"version\(s\) 2"):
        to_cap(res, REGISTRY, previous=[new])
    with pytest.raises(CapError, match="previous version of"):
        to_cap(upd, REGISTRY, previous=food_safety()[:1])
    with pytest.raises(CapError, match="two different versions"):
        to_cap(res, REGISTRY, previous=[new, upd, upd.model_copy(update={"score": 1.0})])
    # later versions and exact duplicates in previous are fine
    parse_valid(to_cap(upd, REGISTRY, previous=[new, new, res]))
    # a first version that is not 'new' has nothing to reference
    with pytest.raises(CapError, match="first version"):
        to_cap(new.model_copy(update={"status": "cancelled"}), REGISTRY)


def test_previous_may_come_in_any_order() -> None:
    new, upd, res = pollution()
    a = to_cap(res, REGISTRY, previous=[upd, new])
    b = to_cap_series([new, upd, res], REGISTRY)[-1]
    assert a == b


def test_interleaved_warnings_reference_only_their_own_versions() -> None:
    p, f = pollution(), food_safety()
    docs = [parse_valid(x) for x in to_cap_series([p[0], f[0], p[1], f[1], f[2], p[2]],
                                                   REGISTRY)]
    for d in docs:
        refs = d.findtext("cap:references", namespaces=NS) or ""
        own = text(d, "cap:incidents")
        for r in refs.split():
            assert r.split(",")[1].startswith(own + ".v")


# -- property: every warning renders to valid CAP -------------------------------------------
_aware = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
                      timezones=st.just(UTC))
_word = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)


@st.composite
def warning_versions(draw: st.DrawFn) -> list[Warning]:
    first = draw(_aware)
    region = draw(st.sampled_from([*REGISTRY.ids(), "unknown_region"]))
    n = draw(st.integers(1, 4))
    end = draw(st.sampled_from(["update", "resolved", "cancelled"]))
    statuses = ["new"] + ["update"] * (n - 1)
    if n > 1:
        statuses[-1] = end
    wid = draw(st.one_of(
        st.from_regex(r"tw-[a-z]{1,10}-[0-9a-f]{16}", fullmatch=True),
        st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != ""),
    ))
    scenario = draw(st.one_of(
        st.sampled_from(["pollution", "food_safety", "price_gouging", "flood",
                         "product_quality", "cross_department", "chemical_leak"]),
        _word,
    ))
    out: list[Warning] = []
    t = first
    for version, status in enumerate(statuses, start=1):
        t = t + draw(st.timedeltas(timedelta(0), timedelta(days=2)))
        ev = [
            Evidence(
                source=draw(st.sampled_from(["env", "complaint", "market"])),
                department=draw(_word), region=region, signal=draw(st.text(max_size=40)),
                detector=draw(_word),
                observed=draw(st.floats(allow_nan=True, allow_infinity=True)),
                expected=draw(st.floats(allow_nan=True, allow_infinity=True)),
                score=draw(st.floats(0, 400)), p_value=draw(st.floats(0, 1)),
                event_time=draw(st.datetimes(min_value=datetime(2000, 1, 1),
                                             max_value=datetime(2099, 1, 1),
                                             timezones=st.just(UTC))),
                event_ids=draw(st.lists(_word, max_size=3)),
            )
            for _ in range(draw(st.integers(0, 3)))
        ]
        out.append(Warning(
            warning_id=wid, version=version, status=status,  # type: ignore[arg-type]
            region=region, scenario=scenario,
            severity=draw(st.sampled_from(get_args(Severity))),
            urgency=draw(st.sampled_from(get_args(Urgency))),
            certainty=draw(st.sampled_from(get_args(Certainty))),
            score=draw(st.floats(allow_nan=True, allow_infinity=True)),
            departments=draw(st.lists(_word, max_size=4)),
            first_seen=first, last_seen=t, evidence=ev,
            explanation=draw(st.text(max_size=300)),
            sent_at=draw(st.one_of(st.none(), _aware)),
        ))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(versions=warning_versions(), radius=st.floats(0.01, 500))
def test_every_generated_warning_renders_to_valid_cap(versions: list[Warning],
                                                      radius: float) -> None:
    xmls = to_cap_series(versions, REGISTRY, radius_km=radius)
    issued: dict[str, str] = {}
    last_sent: datetime | None = None
    for v, xml in zip(versions, xmls, strict=True):
        d = parse_valid(xml)
        ident = text(d, "cap:identifier")
        assert ident not in issued and not re.search(r"[\s,<&]", ident)
        sent = datetime.fromisoformat(text(d, "cap:sent"))
        assert last_sent is None or sent >= last_sent
        refs = (d.findtext("cap:references", namespaces=NS) or "").split()
        assert len(refs) == v.version - 1
        for r in refs:
            m = REF.match(r)
            assert m and issued[m.group(2)] == m.group(3)
        assert len(text(d, "cap:info/cap:headline")) <= HEADLINE_MAX
        expires = datetime.fromisoformat(text(d, "cap:info/cap:expires"))
        assert expires > datetime.fromisoformat(text(d, "cap:info/cap:effective"))
        for c in texts(d, "cap:info/cap:area/cap:circle"):
            check_circle(c)
        issued[ident] = text(d, "cap:sent")
        last_sent = sent
