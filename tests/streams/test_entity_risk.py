"""Entity risk in the live path (streams/pipeline/entities.py): the warning lifecycle, the
bounded metric view, no personal data, the snapshot, and the in-process pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from streams.core.regions import RegionRegistry
from streams.core.schemas import Anomaly, Complaint, MarketEvent
from streams.core.settings import TocsinSettings
from streams.core.topics import CATALOGUE, ENTITY_RISK
from streams.core.uscc import check_char
from streams.ingest.ingestor import Origin
from streams.pipeline.detection import Detection, DetectParams
from streams.pipeline.entities import ENTITY_SCENARIO, EntityTracker, top_of
from streams.pipeline.inprocess import Pipeline
from streams.pipeline.stages import CorrelationStage, partition_for
from streams.publish.alertmanager import receiving_departments
from streams.publish.cap import to_cap
from streams.runtime import snapshot
from streams.runtime.entity_metrics import EntityCollector

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = 86400.0


def code(i: int) -> str:
    body = f"91110000{i:09d}"
    return body + check_char(body)


RISKY = code(777)


def market(i: int, entity: str, kind: str, t: float, passed: bool | None = None,
           name: str | None = None) -> MarketEvent:
    return MarketEvent(event_id=f"m-{i}", kind=kind, entity_id=entity,  # type: ignore[arg-type]
                       entity_name=name, passed=passed, region="harbour",
                       occurred_at=datetime.fromtimestamp(t, UTC),
                       department="market_regulation")


def population(tr: EntityTracker, t0: float, n: int = 200) -> float:
    """``n`` inspected firms, one in ten failing; returns the time after them."""
    for i in range(n):
        tr.observe(market(i, code(i), "inspection", t0 + 600 * i, passed=i % 10 != 0),
                   t0 + 600 * i)
    return t0 + 600 * n


def run_risky(tr: EntityTracker, t: float, kinds: list[str]) -> list[str]:
    statuses = []
    for k, kind in enumerate(kinds):
        tk = t + 3 * DAY * k
        step = tr.observe(market(1000 + k, RISKY, kind, tk,
                                 passed=False if kind == "inspection" else None), tk)
        statuses += [w.status for w in step.warnings]
    return statuses


def test_lifecycle_new_update_resolved() -> None:
    tr = EntityTracker(DetectParams())
    t = population(tr, T0.timestamp())
    statuses = run_risky(tr, t, ["recall", "inspection", "license_violation", "inspection"])
    # a recall alone (score ~4) stays below the level 6; the violation crosses it
    assert statuses == ["new", "update"]
    w = tr.sweep(t + 200 * DAY).warnings
    assert [(x.status, x.version, x.scenario) for x in w] == [("resolved", 3, ENTITY_SCENARIO)]
    assert tr.n_open == 0


def test_warning_names_entity_and_goes_to_the_market_regulator(registry: RegionRegistry
                                                                ) -> None:
    tr = EntityTracker(DetectParams())
    t = population(tr, T0.timestamp())
    out = []
    for k, kind in enumerate(["recall", "license_violation", "recall"]):
        tk = t + DAY * k
        out += tr.observe(market(2000 + k, RISKY, kind, tk), tk).warnings
    w = out[0]
    assert w.departments == ["market_regulation"] and w.evidence[0].source == "market"
    assert RISKY in w.explanation and "recall" in w.explanation
    assert w.evidence[0].event_ids == ["m-2000", "m-2001"]
    assert receiving_departments(w) == ["market"]
    xml = to_cap(w, registry)
    assert "<category>Safety</category>" in xml and "High-risk market entity" in xml


def test_topic_records_on_material_change_only() -> None:
    tr = EntityTracker(DetectParams())
    t = population(tr, T0.timestamp())
    step = tr.observe(market(3000, RISKY, "recall", t), t)
    assert [r.entity_id for r in step.records] == [RISKY]
    # the same moment, a neutral price report: no material change, no record
    assert tr.observe(MarketEvent(
        event_id="p-1", kind="price_report", entity_id=RISKY, commodity="pork", price=30.0,
        unit="CNY/kg", region="harbour", occurred_at=datetime.fromtimestamp(t, UTC),
        department="market_regulation"), t).records == []
    # decayed a year later: a last record, and it leaves the view
    late = [r for r in tr.sweep(t + 365 * DAY).records if r.entity_id == RISKY]
    assert len(late) == 1 and late[0].score < 1.0
    assert RISKY not in dict(tr.top(10))


def test_top_n_is_bounded_and_stale_entities_leave_the_view() -> None:
    tr = EntityTracker(DetectParams())
    t = population(tr, T0.timestamp())
    for i in range(50):
        for k in range(1 + i % 4):
            tr.observe(market(5000 + 10 * i + k, code(300 + i), "recall", t), t)
    top = tr.top(5)
    assert len(top) == 5 and [v for _, v in top] == sorted((v for _, v in top), reverse=True)
    reg = CollectorRegistry()
    reg.register(EntityCollector(lambda: top_of([tr], 5)))
    text = generate_latest(reg).decode()
    assert text.count("tocsin_entity_risk_score{") == 5
    tr.sweep(t + 2 * 365 * DAY)
    assert top_of([tr], 5) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.sampled_from(
    ["recall", "license_violation", "inspection", "price_report"]), st.floats(0, 60)),
    max_size=60), st.integers(0, 8))
def test_view_never_exceeds_n(events: list[tuple[int, str, float]], n: int) -> None:
    tr = EntityTracker(DetectParams())
    t0 = T0.timestamp()
    for i, (e, kind, day) in enumerate(sorted(events, key=lambda x: x[2])):
        t = t0 + day * DAY
        ev = (MarketEvent(event_id=f"p-{i}", kind="price_report", entity_id=code(e),
                          commodity="pork", price=1.0, unit="CNY/kg", region="harbour",
                          occurred_at=datetime.fromtimestamp(t, UTC), department="m")
              if kind == "price_report" else
              market(i, code(e), kind, t, passed=False if kind == "inspection" else None))
        step = tr.observe(ev, t)
        assert all(0.0 <= r.risk <= 1.0 for r in step.records)
    top = tr.top(n)
    assert len(top) <= n
    assert all(score >= 1.0 for _, score in top)


def test_no_personal_data_leaves() -> None:
    tr = EntityTracker(DetectParams())
    t = population(tr, T0.timestamp())
    blobs = []
    for k in range(4):
        tk = t + DAY * k
        c = Complaint(complaint_id=f"c-{k}", channel="hotline", category="food_safety",
                      text="Zhang San 13812345678 got sick", region="harbour",
                      reporter_phone="13812345678", received_at=datetime.fromtimestamp(tk, UTC),
                      department="citizen_hotline", entity_id=RISKY)
        step = tr.observe(c, tk)
        step.extend(tr.observe(market(4000 + k, RISKY, "recall", tk, name="Zhang San Shop"),
                               tk))
        blobs += [r.model_dump_json() for r in step.records]
        blobs += [w.model_dump_json() for w in step.warnings]
    reg = CollectorRegistry()
    reg.register(EntityCollector(lambda: tr.top(10)))
    blobs.append(generate_latest(reg).decode())
    everything = "\n".join(blobs)
    assert RISKY in everything and "c-0" in everything  # complaints named by id only
    for secret in ("Zhang", "13812345678", "sick"):
        assert secret not in everything


def test_snapshot_keeps_the_tracker_and_upgrades_version_1() -> None:
    p = DetectParams()
    det = Detection(p)
    t = population(det.entities, T0.timestamp())
    run_risky(det.entities, t, ["recall", "license_violation"])
    ext = {"detect_params": p, "templates": [], "generic_template": None}
    back = snapshot.restore(snapshot.capture({"d": det}, ext), ext)["d"]
    assert isinstance(back, Detection) and back.entities.p is p
    assert back.entities.top(3) == det.entities.top(3) and back.entities.n_open == 1
    state = {k: v for k, v in vars(Detection(p)).items() if k != "entities"}
    up = snapshot._with_entities(state)
    assert isinstance(up["entities"], EntityTracker)


def test_topic_is_compacted() -> None:
    spec = next(s for s in CATALOGUE if s.name == ENTITY_RISK)
    assert spec.configs()["cleanup.policy"] == "compact"


def test_pipeline_repeated_violations_raise_entity_risk(registry: RegionRegistry) -> None:
    s = TocsinSettings()
    pipe = Pipeline(s, registry)
    key = b"harbour"
    part = partition_for(key, s.partitions)
    t0 = T0.timestamp()
    lines = []
    for i in range(200):  # the population: inspected firms
        lines.append({"event_id": f"i-{i}", "kind": "inspection", "entity_id": code(i),
                      "passed": i % 10 != 0, "t": t0 + 600 * i})
    t = t0 + 600 * 200
    for k, kind in enumerate(["license_violation", "recall", "license_violation", "recall"]):
        lines.append({"event_id": f"v-{k}", "kind": kind, "entity_id": RISKY,
                      "t": t + 2 * DAY * k})
    for n, obj in enumerate(lines):
        at = datetime.fromtimestamp(obj.pop("t"), UTC)
        raw = json.dumps({**obj, "region": "harbour", "department": "market_regulation",
                          "occurred_at": at.isoformat()}).encode()
        pipe.feed("market", raw, Origin("tocsin.market.events", part, n, key))
    pipe.finish()
    assert not pipe.dead_letters
    ent = [w for w in pipe.warnings if w.scenario == ENTITY_SCENARIO]
    assert [w.status for w in ent][:1] == ["new"]
    assert all(w.evidence[0].signal == f"entity:{RISKY}" for w in ent)
    recs = [r for r in pipe.entity_records if r.entity_id == RISKY]
    assert recs and recs[-1].above_level and recs[-1].warning_id == ent[0].warning_id
    assert recs[-1].counts == {"license_violation": 2, "recall": 2}
    assert pipe.sources.entity_top(1) == [(RISKY, recs[-1].score)]
    assert timedelta(0) <= ent[-1].last_seen - ent[0].first_seen


def test_notes_name_the_entities_behind_a_findings_events() -> None:
    tr = EntityTracker(DetectParams())
    t = population(tr, T0.timestamp())
    tr.observe(market(6000, RISKY, "recall", t - 10 * DAY), t - 10 * DAY)
    ids = []
    for k in range(3):
        tr.observe(market(6100 + k, RISKY, "inspection", t + k, passed=False), t + k)
        ids.append(f"m-{6100 + k}")
    notes = tr.notes((*ids, "m-0"), t + 3)
    assert len(notes) == 1
    assert notes[0].startswith(f"3 of the failed inspections are at entity {RISKY}, which "
                               "also had 1 recall in the last 30 days (risk score ")
    assert tr.notes(("m-nothing",), t) == []


def anomaly(i: str, kind: str, t: datetime, entities: list[str]) -> Anomaly:
    source = kind.split(":")[0]
    return Anomaly(anomaly_id=i, kind=kind, source=source,  # type: ignore[arg-type]
                   department=f"{source}_dept", region="harbour", signal=f"{kind}:harbour",
                   detector="count_surge", observed=9.0, expected=1.0, score=5.0,
                   p_value=1e-6, event_time=t, event_ids=[f"ev-{i}"], entities=entities)


def test_market_warning_explanation_names_entities_without_changing_decisions() -> None:
    s = TocsinSettings()
    note = f"3 of the failed inspections are at entity {RISKY} (risk score 7.0)"
    out = {}
    for with_notes in (True, False):
        stage = CorrelationStage(s, expect_all_sources=False)
        part = partition_for(b"harbour", s.partitions)
        ws = stage.add(part, anomaly("a1", "market:inspection_fail", T0,
                                     [note] if with_notes else []), 0.0)
        ws += stage.add(part, anomaly("a2", "complaint:food_safety", T0 + timedelta(hours=1),
                                      []), 0.0)
        out[with_notes] = ws + stage.flush()
    assert out[True], "food_safety should open, or the test checks nothing"
    assert all(w.scenario == "food_safety" for w in out[True])
    assert [(w.warning_id, w.version, w.status, w.severity, w.score) for w in out[True]] == \
        [(w.warning_id, w.version, w.status, w.severity, w.score) for w in out[False]]
    assert all(f"Entities: {note}." in w.explanation for w in out[True])
    assert not any("Entities:" in w.explanation for w in out[False])


def test_entity_risk_alerts_route_to_the_market_regulator() -> None:
    from streams.publish.alertmanager import warning_alerts
    from tests.streams.test_alertmanager import DEPLOY, amtool

    tr = EntityTracker(DetectParams())
    t = population(tr, T0.timestamp())
    ws = []
    for k, kind in enumerate(["recall", "license_violation"]):
        ws += tr.observe(market(7000 + k, RISKY, kind, t + k), t + k).warnings
    [w] = ws
    [a] = warning_alerts(w, runbook_url="https://docs.example.org/runbook.md",
                         dashboard_url="http://grafana.example.org/d/tocsin-region")
    assert a["labels"]["scenario"] == ENTITY_SCENARIO and a["labels"]["department"] == "market"
    assert a["annotations"]["runbook_url"].endswith("#entity_risk")
    proc = amtool("config", "routes", "test", f"--config.file={DEPLOY}",
                  *(f"{k}={v}" for k, v in a["labels"].items()))
    assert proc.stdout.strip() == "market-regulator", proc.stdout + proc.stderr


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17),
       st.booleans())
def test_complaint_entity_id_is_a_checked_credit_code(body: str, corrupt: bool) -> None:
    good = body + check_char(body)
    bad = body + ("0" if check_char(body) != "0" else "1")
    base = {"complaint_id": "c-1", "channel": "app", "category": "food_safety", "text": "",
            "region": "harbour", "received_at": T0.isoformat(), "department": "hotline"}
    if corrupt:
        with pytest.raises(ValueError, match="checksum"):
            Complaint.model_validate({**base, "entity_id": bad})
    else:
        c = Complaint.model_validate({**base, "entity_id": f" {good.lower()} "})
        assert c.entity_id == good


def test_a_flush_waits_for_records_another_flush_is_sending() -> None:
    """The correlate agent and an ingest agent (entity risk) flush the same outbox: a
    flush returns only once the broker has every record put before it."""
    import asyncio
    from typing import Any

    from streams.publish.kafka_sinks import Outbox

    async def run() -> list[str]:
        log: list[str] = []
        gate = asyncio.Event()

        async def send(topic: Any, key: bytes | None, value: bytes,
                       partition: int | None) -> Any:
            async def delivered() -> None:
                if value == b"slow":
                    await gate.wait()
                log.append(f"acked {value.decode()}")
            await asyncio.sleep(0)  # queueing yields, as aiokafka's send does
            return asyncio.ensure_future(delivered())

        box = Outbox(send)
        box.put("t", None, b"slow")
        first = asyncio.create_task(box.flush())
        await asyncio.sleep(0)  # the first flush has taken the record
        box.put("t", None, b"fast")
        second = asyncio.create_task(box.flush())
        for _ in range(5):
            await asyncio.sleep(0)
        log.append("second done" if second.done() else "second waiting")
        gate.set()
        await asyncio.gather(first, second)
        return log

    log = asyncio.run(run())
    assert log[0] == "second waiting"
    assert "acked slow" in log and "acked fast" in log


def test_detect_puts_the_notes_on_the_findings_and_keeps_the_output() -> None:
    from detectors.base import Finding

    tr = EntityTracker(DetectParams())
    t = population(tr, T0.timestamp())
    tr.take()
    tr.observe(market(8000, RISKY, "inspection", t, passed=False), t)
    rec = market(8001, RISKY, "inspection", t + 60, passed=False)
    f = Finding("market:inspection_fail:harbour@1", "market", "market_regulation", "harbour",
                "market:inspection_fail", "market:inspection_fail:harbour", "rate_surge",
                4.0, 1.0, 1e-4, t + 60, ("m-8000", "m-8001", "m-3"))
    [g] = tr.detect(rec, [f])
    assert g.entities and g.entities[0].startswith(
        f"2 of the failed inspections are at entity {RISKY}")
    assert (g.anomaly_id, g.p_value, g.event_ids) == (f.anomaly_id, f.p_value, f.event_ids)
    assert [r.entity_id for r in tr.take().records] == [RISKY]
    assert tr.take().records == []
