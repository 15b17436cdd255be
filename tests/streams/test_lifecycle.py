"""The warning lifecycle end to end (in-process, the stages the worker runs): feedback,
replay and restart idempotence, CAP validity of everything the demo scenario emits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from streams.core.regions import RegionRegistry
from streams.core.schemas import Anomaly, Feedback, Warning
from streams.core.settings import TocsinSettings
from streams.evaluation.replay_score import read_replay, run_pipeline
from streams.pipeline.inprocess import Pipeline
from streams.pipeline.stages import CorrelationStage, partition_for
from streams.publish.cap import to_cap_series
from streams.tools.simulate import SimConfig, simulate

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
CAP_XSD = Path(__file__).resolve().parents[2].parent / "shared" / "cap" / "CAP-v1.2.xsd"


def anomaly(i: str, dept: str, kind: str, t: datetime, p: float, region: str = "harbour"
            ) -> Anomaly:
    source = kind.split(":")[0]
    return Anomaly(anomaly_id=i, kind=kind, source=source, department=dept, region=region,
                   signal=f"{kind}:{region}", detector="sensor_ensemble" if source == "env"
                   else "count_surge", observed=9.0, expected=1.0, score=5.0, p_value=p,
                   event_time=t, event_ids=[f"ev-{i}"])


def false_alarm(stage: CorrelationStage, tag: str, t: datetime) -> list[Warning]:
    """A stuck COD sensor and two odour calls, the same combination every time."""
    part = partition_for(b"harbour", stage.settings.partitions)
    out = stage.add(part, anomaly(f"{tag}-env", "ecology_bureau", "env:water_cod", t, 1e-9),
                    0.0)
    out += stage.add(part, anomaly(f"{tag}-odor", "citizen_hotline", "complaint:odor",
                                   t + timedelta(hours=1), 1e-3), 0.0)
    return out + stage.flush()


def feedback(stage: CorrelationStage, w: Warning, action: str, at: datetime,
             reason: str | None = None) -> list[Warning]:
    fb = Feedback(warning_id=w.warning_id, region=w.region, action=action,  # type: ignore[arg-type]
                  by="op-7", at=at, reason=reason)
    out = stage.add(partition_for(w.region.encode(), stage.settings.partitions), fb, 0.0)
    return out + stage.flush()


def test_a_dismissal_suppresses_the_repeat_of_the_same_false_alarm() -> None:
    s = TocsinSettings()
    dismissed, control = CorrelationStage(s, False), CorrelationStage(s, False)
    for stage in (dismissed, control):
        first = false_alarm(stage, "a", T0)
        assert [w.status for w in first] == ["new"]
    out = feedback(dismissed, first[0], "dismiss", T0 + timedelta(hours=2),
                   "COD sensor under maintenance")
    assert [(w.status, w.version) for w in out] == [("cancelled", 2)]
    assert [(h.action, h.by, h.reason) for h in out[0].history] == [
        ("dismiss", "op-7", "COD sensor under maintenance")]
    # a day later the same stuck sensor and the same kind of calls come back
    later = T0 + timedelta(days=1)
    # (the control's first warning resolves, quiet for 12 h, once event time has moved on;
    # the new one fires on arrival; the dismissed one is closed)
    assert sorted(w.status for w in false_alarm(control, "b", later)) == ["new", "resolved"]
    assert false_alarm(dismissed, "b", later) == []
    # a real incident of the same combination, 100x stronger, still gets through
    strong = dismissed
    part = partition_for(b"harbour", s.partitions)
    t2 = later + timedelta(hours=3)
    opened = strong.add(part, anomaly("c-env", "ecology_bureau", "env:water_cod", t2, 1e-12),
                        0.0)
    opened += strong.add(part, anomaly("c-odor", "citizen_hotline", "complaint:odor",
                                       t2 + timedelta(minutes=30), 1e-5), 0.0)
    opened += strong.flush()
    assert [w.status for w in opened] == ["new"]
    assert opened[0].audit is not None and "dismissal" in (opened[0].audit.feedback_bar or "")


def test_lifecycle_follows_feedback_and_keeps_every_decision() -> None:
    stage = CorrelationStage(TocsinSettings(), False)
    w = false_alarm(stage, "a", T0)[0]
    assert w.urgency == "Immediate"
    ack = feedback(stage, w, "acknowledge", T0 + timedelta(hours=2))
    assert [(v.status, v.version) for v in ack] == [("update", 2)]
    assert ack[0].urgency == "Expected"  # a decision adds no evidence: the trend is flat
    conf = feedback(stage, w, "confirm", T0 + timedelta(hours=3))
    res = feedback(stage, w, "resolve", T0 + timedelta(hours=4))
    assert [(v.status, v.version) for v in conf + res] == [("update", 3), ("resolved", 4)]
    assert res[0].urgency == "Past"
    assert [h.action for h in res[0].history] == ["acknowledge", "confirm", "resolve"]
    # the same decision again (a replayed feedback topic) changes nothing
    assert feedback(stage, w, "resolve", T0 + timedelta(hours=4)) == []
    # a decision the lifecycle does not allow is kept but does not publish a closed warning
    assert feedback(stage, w, "confirm", T0 + timedelta(hours=5)) == []


def test_every_version_records_its_audit_trail() -> None:
    stage = CorrelationStage(TocsinSettings(), False)
    w = false_alarm(stage, "a", T0)[0]
    assert w.audit is not None
    assert w.audit.template == w.scenario == "pollution"
    assert w.audit.detectors == {"sensor_ensemble": "3", "count_surge": "2"}
    assert w.audit.event_ids == ["ev-a-env", "ev-a-odor"]
    assert w.audit.parameters["open_p"] == 1e-6
    # the rule in plain words: the departments, what they are, the region and the window
    assert w.audit.rule.startswith("warned because 2 departments (complaints and sensors) "
                                   "reported unusual signals in harbour within 6 h")


@pytest.fixture(scope="module")
def replay_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RegionRegistry]:
    s = TocsinSettings()
    registry = RegionRegistry.from_csv(s.region_registry)
    path = tmp_path_factory.mktemp("replay") / "events.jsonl"
    simulate(SimConfig(seed=14, days=7.0), registry).write(path, None)  # the demo's scenario
    return path, registry


def _ids(ws: list[Warning]) -> list[tuple[str, int, str]]:
    return [(w.warning_id, w.version, w.status) for w in ws]


def test_replay_and_restart_produce_no_duplicate_warning(
        replay_file: tuple[Path, RegionRegistry]) -> None:
    path, registry = replay_file
    s = TocsinSettings()
    first, _ = run_pipeline(read_replay(path), s, registry)
    again, _ = run_pipeline(read_replay(path), s, registry)
    assert first.warnings and _ids(first.warnings) == _ids(again.warnings)
    # a worker that crashed half-way and restarts from the last committed offset (here:
    # the beginning, the worst case) re-emits versions with the same ids: downstream
    # de-duplication by (warning_id, version) leaves exactly the uninterrupted run's set
    lines = list(read_replay(path))
    crashed = Pipeline(s, registry)
    for ln in lines[: len(lines) // 2]:
        if ln.source is not None:
            crashed.feed(ln.source, ln.raw, _origin(ln, s))
    restarted, _ = run_pipeline(iter(lines), s, registry)
    seen = {(w.warning_id, w.version) for w in crashed.warnings + restarted.warnings}
    assert seen == {(w.warning_id, w.version) for w in first.warnings}
    assert set(_ids(crashed.warnings)) <= set(_ids(first.warnings))


def _origin(ln, s):  # type: ignore[no-untyped-def]
    from streams.ingest.ingestor import Origin

    part = partition_for(ln.key, s.partitions)
    return Origin(f"replay:{ln.source}", part, ln.lineno, ln.key)


def test_every_warning_of_the_demo_scenario_is_valid_cap(
        replay_file: tuple[Path, RegionRegistry]) -> None:
    assert CAP_XSD.is_file(), f"missing {CAP_XSD}: the shared/ folder must be beside the repo"
    schema = etree.XMLSchema(etree.parse(str(CAP_XSD)))
    path, registry = replay_file
    pipe, _ = run_pipeline(read_replay(path), TocsinSettings(), registry)
    assert pipe.warnings
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    for w, xml in zip(pipe.warnings, to_cap_series(pipe.warnings, registry), strict=True):
        doc = etree.fromstring(xml.encode("utf-8"))
        assert schema.validate(doc), schema.error_log
        if w.version > 1:
            refs = doc.findtext("cap:references", namespaces=ns)
            assert refs is not None and len(refs.split()) == w.version - 1


def test_explain_prints_versions_evidence_decisions_and_audit(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streams.tools.cli import app

    stage = CorrelationStage(TocsinSettings(), False)
    w = false_alarm(stage, "a", T0)
    w += feedback(stage, w[0], "dismiss", T0 + timedelta(hours=2), "drill")
    path = tmp_path / "w.jsonl"
    path.write_text("".join(v.model_dump_json() + "\n" for v in w + w) + "garbage\n")
    res = CliRunner().invoke(app, ["explain", w[0].warning_id, "--file", str(path)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "2 version(s), now cancelled" in out  # the duplicated versions are counted once
    assert "dismiss by op-7 (drill)" in out and "template: pollution" in out
    assert "Cancelled at " in out and "dismissed as a false alarm by op-7 (drill)" in out
    # the statistics only with --detail
    assert "p=" not in out and "sensor_ensemble v3" not in out and "ev-a-env" not in out
    res = CliRunner().invoke(app, ["explain", w[0].warning_id, "--file", str(path), "--detail"])
    assert res.exit_code == 0, res.output
    assert "sensor_ensemble v3" in res.output and "ev-a-env" in res.output
    assert "observed 9 vs expected 1" in res.output and "p=" in res.output
    res = CliRunner().invoke(app, ["explain", "tw-nowhere-0", "--file", str(path)])
    assert res.exit_code == 2 and "no warning 'tw-nowhere-0' found" in res.stderr


def test_feedback_command_refuses_a_dismissal_without_reason() -> None:
    from typer.testing import CliRunner

    from streams.tools.cli import app

    res = CliRunner().invoke(app, ["feedback", "tw-harbour-1", "dismiss", "--region",
                                   "harbour", "--by", "op-1"])
    assert res.exit_code == 2 and "needs a reason" in res.stderr
    res = CliRunner().invoke(app, ["feedback", "tw-harbour-1", "delete", "--region",
                                   "harbour", "--by", "op-1"])
    assert res.exit_code == 2 and "not sent" in res.stderr


def test_cap_check_finds_what_the_demo_must_not_publish(
        replay_file: tuple[Path, RegionRegistry]) -> None:
    from streams.publish.cap_check import check_alerts

    path, registry = replay_file
    pipe, _ = run_pipeline(read_replay(path), TocsinSettings(), registry)
    alerts = [x.encode() for x in to_cap_series(pipe.warnings, registry)]
    good = check_alerts(alerts, CAP_XSD)
    assert good.ok and good.alerts == len(pipe.warnings) and good.schema_validated
    # an update whose references were lost, a duplicate, and garbage are each reported
    updates = [i for i, w in enumerate(pipe.warnings) if w.version > 1]
    assert updates, "the demo scenario has updates"
    broken = list(alerts)
    i = updates[0]
    broken[i] = broken[i].replace(b"<references>", b"<references>x,y,2026-01-01T00:00:00+00:00 ")
    bad = check_alerts([*broken, alerts[0], b"<not-xml"], CAP_XSD)
    assert not bad.ok
    text = " ".join(bad.problems)
    assert "references" in text and "published twice" in text and "not well-formed" in text


def test_feedback_is_applied_at_its_event_time_whatever_the_batching() -> None:
    # (review finding) a dismissal after the quiet deadline: resolved first, either way
    results = []
    for marks in ((2, 13.2, 20), (2, 20)):
        s = TocsinSettings()
        stage = CorrelationStage(s, True)
        part = partition_for(b"harbour", s.partitions)
        out = stage.add(part, anomaly("e", "ecology_bureau", "env:water_cod", T0, 1e-9), 0.0)
        out += stage.add(part, anomaly("o", "citizen_hotline", "complaint:odor",
                                       T0 + timedelta(hours=1), 1e-3), 0.0)
        wid = out[0].warning_id
        for h in marks:
            if h == marks[-1]:
                fb = Feedback(warning_id=wid or "tw-harbour-x", region="harbour",
                              action="dismiss", by="op", at=T0 + timedelta(hours=13.5),
                              reason="drill")
                stage.add(part, fb, 0.0)
            for src in ("env", "complaint", "market"):
                for sp in range(s.partitions):
                    stage.watermark(part, src, sp, (T0 + timedelta(hours=h)).timestamp(), 0.0)
            got = stage.release(part, 0.0)
            out += got
            wid = wid or next((w.warning_id for w in got), "")
        results.append([(w.version, w.status) for w in out])
    assert results[0] == results[1] == [(1, "new"), (2, "resolved")]


def test_decisions_on_warnings_it_does_not_hold_are_ignored_and_corrections_work() -> None:
    stage = CorrelationStage(TocsinSettings(), False)
    w = false_alarm(stage, "a", T0)[0]
    # a dismissal routed with the wrong region: ignored, nothing recorded
    wrong = w.model_copy(update={"region": "oldtown"})
    assert feedback(stage, wrong, "dismiss", T0 + timedelta(hours=2), "x") == []
    out = feedback(stage, w, "dismiss", T0 + timedelta(hours=2), "drill")
    assert [v.status for v in out] == ["cancelled"]
    # the officer corrects it: confirmed, the warning is live again
    back = feedback(stage, w, "confirm", T0 + timedelta(hours=3))
    assert [(v.status, v.version) for v in back] == [("update", 3)]
    assert [h.action for h in back[0].history] == ["dismiss", "confirm"]


def test_feedback_checks_refuse_future_times_and_foreign_regions() -> None:
    from streams.core.schemas import check_feedback

    now = datetime(2026, 3, 10, tzinfo=UTC)
    ok = Feedback(warning_id="tw-harbour-1", region="harbour", action="acknowledge",
                  by="op", at=now)
    assert check_feedback(ok, now) is ok
    with pytest.raises(ValueError, match="future"):
        check_feedback(ok.model_copy(update={"at": now + timedelta(days=2)}), now)
    with pytest.raises(ValueError, match="does not belong"):
        check_feedback(ok.model_copy(update={"region": "oldtown"}), now)
