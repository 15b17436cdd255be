"""Limit pre-warnings: the lifecycle (detectors/signals/prewarning.py), the detect stage's
wiring (streams/pipeline/prewarnings.py), the in-process pipeline, CAP, Alertmanager
routing, checkpoints and the measurement (streams/evaluation/prewarn.py)."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.fusion.templates import DEFAULT_FILE, load_templates
from detectors.signals.forecast import Forecast
from detectors.signals.limits import Limit
from detectors.signals.prewarning import PreVersion, PreWarning, certainty_of
from detectors.state import dumps, loads
from streams.core.regions import RegionRegistry
from streams.core.schemas import SensorReading, Warning
from streams.core.settings import DEFAULT_REGISTRY, load_settings
from streams.evaluation.prewarn import measure
from streams.ingest.ingestor import Origin
from streams.pipeline.detection import Detection, DetectParams
from streams.pipeline.inprocess import Pipeline
from streams.pipeline.prewarnings import HORIZON_S, PreWarnings, default_limits, to_warning
from streams.publish.alertmanager import warning_alerts
from streams.publish.cap import to_cap_series
from streams.publish.kafka_sinks import CapSink, Outbox
from streams.runtime import snapshot
from tests.streams.test_agents import drive, make_worker, topic_of
from tests.streams.test_alertmanager import DEPLOY, amtool
from tests.streams.test_cap import parse_valid, text, texts

T0 = datetime(2026, 5, 4, tzinfo=UTC).timestamp()
COD = Limit("water_cod", 30.0, "mg/L", "above", "GB 3838-2002 class IV")


def fc(t: float, crossing_in: float | None, p: float = 0.9, expected: float = 35.0
       ) -> Forecast:
    return Forecast(t, expected, crossing_in, None if crossing_in is None else t + crossing_in,
                    30.0, p)


# -- the lifecycle ------------------------------------------------------------------------
def test_new_update_and_resolved_after_a_crossing() -> None:
    life = PreWarning()
    assert life.step(fc(0, 3600, p=0.5), past=False) is None  # not likely enough
    v1 = life.step(fc(900, 3600), past=False)
    assert v1 is not None and (v1.status, v1.version, v1.opened) == ("new", 1, 900)
    assert v1.certainty == "Likely"
    assert life.step(fc(1800, 2700), past=False) is None  # same crossing time: no version
    v2 = life.step(fc(2700, 7200), past=False)  # crossing moved by an hour
    assert v2 is not None and (v2.status, v2.version) == ("update", 2)
    v3 = life.step(fc(3600, None, p=0.99), past=True)
    assert v3 is not None and (v3.status, v3.crossed_at) == ("update", 3600)
    assert life.step(fc(4500, None), past=True) is None
    assert life.step(fc(5400, None, p=0.0), past=False) is None  # one clear reading: held
    v4 = life.step(fc(6300, None, p=0.0), past=False)
    assert v4 is not None and (v4.status, v4.version, v4.episode) == ("resolved", 4, 1)
    assert not life.active


def test_a_withdrawn_forecast_cancels_and_a_new_one_is_a_new_episode() -> None:
    life = PreWarning()
    assert life.step(fc(0, 5400), past=False) is not None
    assert life.step(fc(900, None, p=0.1), past=False) is None
    v = life.step(fc(1800, None, p=0.1), past=False)
    assert v is not None and (v.status, v.version, v.crossed_at) == ("cancelled", 2, None)
    again = life.step(fc(9000, 3600), past=False)
    assert again is not None and (again.status, again.version, again.episode) == ("new", 1, 2)


def test_no_pre_warning_once_the_reading_is_past_the_limit() -> None:
    life = PreWarning()
    assert life.step(fc(0, 900), past=True) is None
    assert certainty_of(0.4) == "Possible" and certainty_of(0.9) == "Likely"


steps = st.lists(st.tuples(st.none() | st.floats(0, HORIZON_S), st.floats(0, 1),
                           st.booleans()), max_size=60)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_lifecycle_properties(seq: list[tuple[float | None, float, bool]]) -> None:
    """Each episode starts ``new`` at version 1, numbers its versions 1, 2, ..., ends at most
    once with resolved (only after a crossing) or cancelled (only before one), and never
    opens on a reading past the limit."""
    life = PreWarning()
    open_ep: int | None = None
    last_version = 0
    for i, (lead, p, past) in enumerate(seq):
        v = life.step(fc(900.0 * i, lead, p), past)
        if v is None:
            continue
        if v.status == "new":
            assert open_ep is None and v.version == 1 and not past and lead is not None
            open_ep, last_version = v.episode, 1
            continue
        assert open_ep == v.episode and v.version == last_version + 1
        last_version = v.version
        if v.status == "resolved":
            assert v.crossed_at is not None and not past
        if v.status == "cancelled":
            assert v.crossed_at is None and not past
        if v.status in ("resolved", "cancelled"):
            open_ep = None
    assert life.active == (open_ep is not None)


# -- the detect stage ---------------------------------------------------------------------
def reading(i: int, value: float, sensor: str = "WQ-harbour", metric: str = "water_cod",
            region: str = "harbour") -> SensorReading:
    return SensorReading(
        reading_id=f"rd-{i}", sensor_id=sensor, metric=metric, value=value, unit="mg/L",
        region=region, observed_at=datetime.fromtimestamp(T0 + 900 * i, UTC),
        department="ecology")


def slow_rise(i: int) -> float:
    """Flat at 18 (a small daily wobble) for two days, then 0.5 mg/L more every 15 min."""
    return 18.0 + 0.3 * math.sin(i / 7.0) + max(0, i - 192) * 0.5


def test_a_slow_rise_is_pre_warned_before_the_first_reading_past_the_limit() -> None:
    det = Detection(DetectParams(limits=default_limits()))
    got: list[tuple[int, Warning]] = []
    first_past = None
    for i in range(300):
        x = slow_rise(i)
        if x > 30.0 and first_past is None:
            first_past = i
        assert det.process("env", reading(i, x)) is not None
        got.extend((i, w) for w in det.prewarnings.take())
    assert first_past is not None and got, "no pre-warning"
    i_new, w = got[0]
    assert w.status == "new" and i_new < first_past
    assert (first_past - i_new) * 900 >= 1800, "less than 30 min of lead"
    assert (w.scenario, w.urgency, w.departments, w.region) == (
        "limit_forecast", "Expected", ["ecology"], "harbour")
    assert w.certainty in ("Likely", "Possible") and w.version == 1
    assert "GB 3838-2002" in w.explanation and "WQ-harbour" in w.explanation
    assert w.audit is not None and w.audit.parameters["limit"] == 30.0
    assert w.audit.parameters["lead_s"] > 0 and "crossing_at" in w.audit.parameters
    assert w.evidence[0].signal == "env:water_cod:WQ-harbour"
    assert {x.warning_id for _, x in got} == {w.warning_id}
    statuses = [x.status for _, x in got]
    assert "update" in statuses and [x.version for _, x in got] == list(
        range(1, len(got) + 1))


def test_a_stations_limit_override_in_the_catalogue_is_the_one_forecast(
        tmp_path: Path) -> None:
    """A station's override (here 60 mg/L where the metric-wide limit is 30) is the limit
    its series is forecast against; another station keeps the metric-wide one."""
    from detectors.signals.catalogue import load_catalogue
    from streams.core.signals import DEFAULT_FILE as DEFAULT_SIGNALS

    text = Path(DEFAULT_SIGNALS).read_text(encoding="utf-8").replace(
        "      - value: 30\n", "      - value: 30\n        stations:\n"
        "          WQ-lenient: {value: 60, source: \"permit 17 (test)\"}\n", 1)
    path = tmp_path / "signals.yaml"
    path.write_text(text, encoding="utf-8")
    cat = load_catalogue(path)
    assert [x.limit for x in cat.limits_for("water_cod", "harbour", "WQ-lenient")] == [60.0]
    got: dict[str, list[Warning]] = {}
    for sensor in ("WQ-harbour", "WQ-lenient"):
        det = Detection(DetectParams(catalogue=cat))
        for i in range(300):
            det.process("env", reading(i, slow_rise(i), sensor=sensor))
            got.setdefault(sensor, []).extend(det.prewarnings.take())
    assert got["WQ-harbour"] and got["WQ-harbour"][0].audit is not None
    assert got["WQ-harbour"][0].audit.parameters["limit"] == 30.0
    # 18 + 0.5 per reading after 192 reaches 60 only after reading 276: pre-warned later,
    # against 60, citing the permit
    lenient = got["WQ-lenient"]
    assert lenient and lenient[0].audit is not None
    assert lenient[0].audit.parameters["limit"] == 60.0 and "permit 17" in lenient[0].explanation


def test_no_limit_no_forecast_and_other_metrics_untouched() -> None:
    det = Detection(DetectParams(limits={}))
    for i in range(300):
        det.process("env", reading(i, slow_rise(i)))
        assert det.prewarnings.take() == []
    assert det.prewarnings.series == {}


def test_pre_warning_state_survives_a_snapshot_and_a_version_1_detection_upgrades() -> None:
    params = DetectParams(limits=default_limits())
    det = Detection(params)
    for i in range(230):
        det.process("env", reading(i, slow_rise(i)))
    det.prewarnings.take()
    ext = {"detect_params": params}
    back = snapshot.restore(snapshot.capture({"d": det}, ext), ext)["d"]
    assert isinstance(back, Detection)
    for i in range(230, 300):
        det.process("env", reading(i, slow_rise(i)))
        back.process("env", reading(i, slow_rise(i)))
        a, b = det.prewarnings.take(), back.prewarnings.take()
        assert [(w.warning_id, w.version, w.status) for w in a] == [
            (w.warning_id, w.version, w.status) for w in b]
    old = snapshot._with_prewarnings({"p": params})
    assert old["prewarnings"].series == {}
    assert loads(dumps(det.prewarnings)).series.keys() == det.prewarnings.series.keys()


# -- the in-process pipeline, CAP and Alertmanager ----------------------------------------
def pipeline_prewarnings() -> tuple[Pipeline, list[Warning]]:
    s = load_settings()
    pipe = Pipeline(s, RegionRegistry.from_csv(DEFAULT_REGISTRY))
    out: list[Warning] = []
    for i in range(300):
        r = reading(i, slow_rise(i))
        raw = json.dumps({**r.model_dump(mode="json")}).encode()
        out.extend(pipe.feed("env", raw, Origin("tocsin.env.readings", 0, i, b"WQ-harbour")))
    out.extend(pipe.finish())
    assert all(w.scenario != "limit_forecast" for w in out)  # feed returns incidents only
    return pipe, pipe.prewarnings


def test_the_in_process_pipeline_emits_them_apart_from_incidents() -> None:
    pipe, out = pipeline_prewarnings()
    pre = [w for w in out if w.scenario == "limit_forecast"]
    assert pre and pre == out
    assert all(w.scenario != "limit_forecast" for w in pipe.warnings)
    assert pre[0].status == "new" and pre[0].urgency == "Expected"


def test_cap_renders_a_pre_warning_lifecycle() -> None:
    _, out = pipeline_prewarnings()
    pre = [w for w in out if w.scenario == "limit_forecast"]
    registry = RegionRegistry.from_csv(DEFAULT_REGISTRY)
    docs = [parse_valid(x) for x in to_cap_series(pre, registry)]
    first = docs[0]
    assert text(first, "cap:msgType") == "Alert"
    assert text(first, "cap:info/cap:urgency") == "Expected"
    assert text(first, "cap:info/cap:event") == "Regulatory limit exceedance forecast"
    assert texts(first, "cap:info/cap:category") == ["Env"]


def test_the_cap_sink_renders_them_without_a_scenario_template() -> None:
    """The worker's CAP sink: no template names limit_forecast, so cap_scenarios speaks."""
    _, out = pipeline_prewarnings()
    pre = [w for w in out if w.scenario == "limit_forecast"]

    async def send(topic: object, key: bytes | None, value: bytes) -> None:
        return None

    sink = CapSink(Outbox(send), "tocsin.warnings.cap",
                   registry=RegionRegistry.from_csv(DEFAULT_REGISTRY),
                   templates=load_templates(DEFAULT_FILE), sender="tocsin@example.org",
                   partitions=1)
    xml = sink.render(pre[0])
    assert xml is not None
    doc = parse_valid(xml.decode())
    assert text(doc, "cap:info/cap:event") == "Regulatory limit exceedance forecast"
    assert texts(doc, "cap:info/cap:category") == ["Env"]
    assert "regulatory limit" in text(doc, "cap:info/cap:instruction")
    assert text(doc, "cap:info/cap:certainty") == pre[0].certainty


def test_alertmanager_routes_a_pre_warning_to_the_ecology_bureau() -> None:
    _, out = pipeline_prewarnings()
    w = next(w for w in out if w.scenario == "limit_forecast")
    alerts = warning_alerts(w, runbook_url="https://r", dashboard_url="https://d")
    assert [a["labels"]["department"] for a in alerts] == ["ecology"]
    proc = amtool("config", "routes", "test", f"--config.file={DEPLOY}",
                  *(f"{k}={v}" for k, v in alerts[0]["labels"].items()))
    assert proc.stdout.strip() == "ecology-bureau", proc.stdout + proc.stderr


# -- the measurement ----------------------------------------------------------------------
def pre(station: str, opened: float, status: str = "new") -> Warning:
    r = reading(0, 20.0, sensor=station)
    v = PreVersion(1, 1 if status == "new" else 2, status, opened,  # type: ignore[arg-type]
                   fc(opened, 3600.0), None, "Likely")
    return to_warning(v, r, COD, r.reading_id)


def test_measure_counts_lead_share_and_false_pre_warnings() -> None:
    crossings = {"A": [T0 + 7200.0], "B": [T0 + 3600.0]}
    warnings = [pre("A", T0), pre("C", T0), pre("B", T0 - 2 * HORIZON_S)]
    m = measure(crossings, warnings, days=30.0)
    assert (m["crossings"], m["prewarned"], m["median_lead_min"]) == (2, 1, 120.0)
    assert (m["prewarnings"], m["false_prewarnings"]) == (3, 2)
    assert m["false_per_station_month"] == 1.0


# -- the live worker's ingest agent (test agents, no broker) ------------------------------
def test_the_ingest_agent_publishes_them_on_the_warnings_topic(tmp_path: Path) -> None:
    """The ingest batch hands its pre-warnings to the publisher (tocsin.warnings, CAP);
    nothing of scenario limit_forecast goes to the anomalies topic."""
    registry = RegionRegistry.from_csv(DEFAULT_REGISTRY)
    worker, sent = make_worker(tmp_path, registry, publish_cap=True)
    raws = [json.dumps(reading(i, slow_rise(i)).model_dump(mode="json")).encode()
            for i in range(260)]
    asyncio.run(drive(worker, "ingest_env", raws, b"WQ-harbour"))
    pre = [Warning.model_validate_json(v) for _, v, _ in topic_of(sent, "tocsin.warnings")]
    assert pre and {w.scenario for w in pre} == {"limit_forecast"}
    assert pre[0].status == "new" and pre[0].departments == ["ecology"]
    cap = topic_of(sent, "tocsin.warnings.cap")
    assert len(cap) == len(pre) and b"<urgency>Expected</urgency>" in cap[0][1]
    assert all(b"limit_forecast" not in v for _, v, _ in topic_of(sent, "tocsin.anomalies"))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=120),
       st.sampled_from(sorted(default_limits())))
def test_any_series_gives_valid_versions_in_order(values: list[float], metric: str) -> None:
    """Whatever the readings, each pre-warning's versions are numbered 1, 2, ... from new,
    and every record is a valid Warning of one department."""
    limit = default_limits()[metric]
    pw = PreWarnings()
    seen: dict[str, list[str]] = {}
    for i, x in enumerate(values):
        pw.observe(reading(i, x, metric=metric), T0 + 900 * i, limit)
        for w in pw.take():
            got = seen.setdefault(w.warning_id, [])
            assert w.version == len(got) + 1 and (w.status == "new") == (not got)
            assert w.departments == ["ecology"] and w.urgency == "Expected"
            got.append(w.status)
    for statuses in seen.values():
        assert all(s not in ("resolved", "cancelled") for s in statuses[:-1])
