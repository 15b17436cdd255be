"""The ``single`` and ``naive`` baselines (streams/baselines.py) and ``eval replay
--baseline``."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.core.regions import RegionRegistry
from streams.core.schemas import Anomaly, Complaint, MarketEvent, SensorReading
from streams.evaluation.baselines import (
    ingest_replay,
    naive_flags,
    naive_warnings,
    poisson_sf,
    single_warnings,
)
from streams.evaluation.replay_score import TruthIncident, read_replay, score
from streams.ingest.ingestor import Record
from streams.tools.cli import app
from streams.tools.simulate import SimConfig, simulate

T0 = datetime(2026, 3, 2, tzinfo=UTC)
ENV, HOTLINE, MARKET = "ecology_bureau", "citizen_hotline", "market_regulation"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# -- hand-made records ------------------------------------------------------------------------
def sensor_series(region: str, hours: int, spikes: dict[int, float] | None = None,
                  metric: str = "water_cod") -> list[Record]:
    """Four readings an hour; the hourly mean alternates 10 / 11; ``spikes`` sets the value
    of every reading in the given hours."""
    spikes = spikes or {}
    out: list[Record] = []
    for h in range(hours):
        for q in range(4):
            value = spikes.get(h, 10.0 + (h % 2))
            out.append(SensorReading(
                reading_id=f"rd-{region}-{metric}-{h}-{q}", sensor_id=f"WQ-{region}",
                metric=metric, value=value, unit="mg/L", region=region,
                observed_at=at(h + q / 4), department=ENV,
            ))
    return out


def complaints(region: str, times: list[float], category: str = "odor",
               tag: str = "c") -> list[Record]:
    return [Complaint(complaint_id=f"cp-{tag}-{region}-{i}", channel="app", category=category,
                      text="smell", region=region, received_at=at(t), department=HOTLINE)
            for i, t in enumerate(times)]


def background_complaints(region: str, hours: int) -> list[Record]:
    """One odour complaint every fourth hour (mean 0.25 an hour)."""
    return complaints(region, [h + 0.5 for h in range(0, hours, 4)], tag="bg")


def burst(region: str, hour: int, n: int = 4, tag: str = "burst") -> list[Record]:
    """``n`` complaints in hour bucket ``hour``, the last at ``hour``:45."""
    return complaints(region, [hour + 0.75 - 0.1 * i for i in range(n)], tag=f"{tag}{hour}")


def naive_case(region: str, spike_hour: int | None, burst_hour: int | None,
               hours: int = 72) -> list[Record]:
    recs = sensor_series(region, hours, {spike_hour: 40.0} if spike_hour is not None else {})
    recs += background_complaints(region, hours)
    if burst_hour is not None:
        recs += burst(region, burst_hour)
    return recs


# -- naive ------------------------------------------------------------------------------------
def test_poisson_sf_matches_the_direct_sum() -> None:
    for mu in (0.01, 0.25, 1.0, 7.5):
        for k in range(0, 12):
            direct = 1 - sum(math.exp(-mu) * mu**i / math.factorial(i) for i in range(k))
            assert poisson_sf(k, mu) == pytest.approx(direct, rel=1e-9, abs=1e-15)
    assert 0 < poisson_sf(40, 0.25) < 1e-40  # no cancellation in the far tail


def test_naive_flags_a_level_spike_and_a_count_burst() -> None:
    flags = naive_flags(naive_case("harbour", 40, 45))
    by_detector = {(f.detector, f.signal, f.t) for f in flags}
    assert by_detector == {
        ("hourly_z", "env:water_cod:WQ-harbour", at(40.75).timestamp()),
        ("poisson_tail", "complaint:odor:harbour", at(45.75).timestamp()),
    }


def test_naive_needs_24_hours_of_history() -> None:
    flags = naive_flags(naive_case("harbour", 10, 12))
    assert flags == []


def test_naive_complaints_need_two_in_the_hour() -> None:
    recs = naive_case("harbour", None, None) + complaints("harbour", [50.2], category="illness")
    assert naive_flags(recs) == []  # a first-ever category, but only one complaint
    recs += complaints("harbour", [50.4], category="illness", tag="more")
    assert [f.signal for f in naive_flags(recs)] == ["complaint:illness:harbour"]


def test_naive_one_department_does_not_warn() -> None:
    recs = naive_case("harbour", 40, None)
    recs += sensor_series("harbour", 72, {41: 5.0}, metric="water_nh3n")  # same department
    flags = naive_flags(recs)
    assert len(flags) == 2 and {f.department for f in flags} == {ENV}
    assert naive_warnings(recs) == []


def test_naive_two_departments_seven_hours_apart_do_not_warn() -> None:
    recs = naive_case("harbour", 40, 47)
    assert len(naive_flags(recs)) == 2
    assert naive_warnings(recs) == []


def test_naive_two_departments_five_hours_apart_warn_once() -> None:
    recs = naive_case("harbour", 40, 45)
    [w] = naive_warnings(recs)
    assert w.region == "harbour" and w.version == 1 and w.status == "new"
    assert w.departments == sorted([ENV, HOTLINE])
    assert w.first_seen == at(40.75) and w.last_seen == at(45.75)
    assert {e.signal for e in w.evidence} == {"env:water_cod:WQ-harbour",
                                              "complaint:odor:harbour"}
    # the complaint first, then the reading: the same
    recs = naive_case("harbour", 45, 40)
    [w] = naive_warnings(recs)
    assert w.first_seen == at(40.75) and w.last_seen == at(45.75)


def test_naive_regions_do_not_mix() -> None:
    recs = naive_case("harbour", 40, None) + naive_case("lakeside", None, 45)
    assert len(naive_flags(recs)) == 2
    assert naive_warnings(recs) == []


def test_naive_episode_needs_twelve_quiet_hours() -> None:
    hours = 120
    # pair at 40/42, another pair at 48/50 (same episode), then quiet, then 70/72
    recs = sensor_series("harbour", hours, {40: 40.0, 48: 40.0, 70: 40.0})
    recs += background_complaints("harbour", hours)
    for h in (42, 50, 72):
        recs += burst("harbour", h)
    ws = naive_warnings(recs)
    assert [(w.first_seen, w.last_seen) for w in ws] == [
        (at(40.75), at(42.75)), (at(70.75), at(72.75))]
    assert len({w.warning_id for w in ws}) == 2


def test_naive_market_counts_and_prices() -> None:
    hours = 72
    recs: list[Record] = background_complaints("harbour", hours)
    for h in range(hours):  # an hourly price report, 20 / 21 CNY/kg
        recs.append(MarketEvent(event_id=f"mk-p-{h}", kind="price_report", commodity="pork",
                                price=20.0 + (h % 2), unit="CNY/kg", region="harbour",
                                occurred_at=at(h + 0.5), department=MARKET))
    # one report at 30 in hour 60: that hour's mean is 25
    recs.append(MarketEvent(event_id="mk-p-spike", kind="price_report", commodity="pork",
                            price=30.0, unit="CNY/kg", region="harbour",
                            occurred_at=at(60.6), department=MARKET))
    recs += [MarketEvent(event_id=f"mk-r-{i}", kind="recall", commodity="pork",
                         violation="contamination", region="harbour",
                         occurred_at=at(62.1 + 0.1 * i), department=MARKET) for i in range(2)]
    flags = naive_flags(recs)
    assert {(f.signal, f.detector) for f in flags} == {
        ("market:price:pork:harbour:CNY/kg", "hourly_z"),
        ("market:recall:harbour", "poisson_tail"),
    }
    assert naive_warnings(recs) == []  # market only
    [w] = naive_warnings(recs + burst("harbour", 64))
    assert w.departments == sorted([MARKET, HOTLINE])


def test_ingest_replay_validates_and_drops_redeliveries(tmp_path: Path,
                                                        registry: RegionRegistry) -> None:
    rec = {"source": "complaint", "complaint_id": "cp-1", "channel": "app", "category": "odor",
           "text": "x", "region": "harbour", "received_at": "2026-03-02T01:00:00Z",
           "department": HOTLINE}
    lines = [json.dumps(rec), json.dumps(rec), json.dumps({**rec, "region": "atlantis",
                                                           "complaint_id": "cp-2"}),
             "not json"]
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    ing = ingest_replay(read_replay(path), registry)
    assert [r.message_id for r in ing.records] == ["cp-1"]
    assert (ing.received, ing.duplicates, ing.dead_letters, ing.bad_lines) == (3, 1, 1, 1)


# -- single -----------------------------------------------------------------------------------
def anomaly(i: int, hours: float, signal: str = "env:water_cod:WQ-harbour",
            region: str = "harbour", department: str = ENV) -> Anomaly:
    return Anomaly(anomaly_id=f"a{i}", kind=signal.rsplit(":", 1)[0], source="env",
                   department=department, region=region, signal=signal, detector="d",
                   observed=5.0, expected=1.0, score=6.0, p_value=1e-6, event_time=at(hours))


def test_single_one_warning_per_signal_episode() -> None:
    anomalies = [
        anomaly(1, 10.0), anomaly(2, 12.0), anomaly(3, 17.5),  # one episode (gaps <= 6 h)
        anomaly(4, 24.0),  # 6.5 h after the last: a new episode
        anomaly(5, 11.0, signal="env:pm25:AQ-harbour"),  # another signal
        anomaly(6, 11.0, region="lakeside", signal="env:water_cod:WQ-lakeside"),
    ]
    ws = single_warnings(reversed(anomalies))  # input order does not matter
    got = sorted((w.region, w.evidence[0].signal, w.first_seen) for w in ws)
    assert got == [
        ("harbour", "env:pm25:AQ-harbour", at(11.0)),
        ("harbour", "env:water_cod:WQ-harbour", at(10.0)),
        ("harbour", "env:water_cod:WQ-harbour", at(24.0)),
        ("lakeside", "env:water_cod:WQ-lakeside", at(11.0)),
    ]
    for w in ws:
        assert w.first_seen == w.last_seen and w.departments == [ENV] and w.version == 1
    assert len({w.warning_id for w in ws}) == 4
    assert single_warnings([]) == []


def test_single_warnings_score_like_tocsin_warnings(registry: RegionRegistry) -> None:
    truth = [TruthIncident(id="i1", scenario="chemical_leak", region="harbour", start=at(9.0),
                           end=at(15.0))]
    ws = single_warnings([anomaly(1, 10.0), anomaly(2, 40.0)])
    r = score(ws, truth, registry)
    assert (r["detected"], r["warnings"], r["false_warnings"]) == (1, 2, 1)
    assert r["median_delay_s"] == 3600.0


# -- end to end -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from streams.core.settings import DEFAULT_REGISTRY

    d = tmp_path_factory.mktemp("baselines")
    ev, tr = d / "e.jsonl", d / "t.json"
    simulate(SimConfig(seed=11, days=10), RegionRegistry.from_csv(DEFAULT_REGISTRY)).write(ev, tr)
    return ev, tr


@pytest.mark.parametrize("baseline", ["tocsin", "single", "naive"])
def test_eval_replay_baseline_option(baseline: str, sim_files: tuple[Path, Path],
                                     tmp_path: Path) -> None:
    ev, tr = sim_files
    out = tmp_path / "w.jsonl"
    res = CliRunner().invoke(app, ["eval", "replay", "--events", str(ev), "--truth", str(tr),
                                   "--json", "--baseline", baseline, "--warnings-out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["baseline"] == baseline
    for k in ("incidents", "detected", "recall", "precision", "warnings", "false_warnings",
              "median_delay_s", "valid", "dead_letters", "duplicates"):
        assert k in report
    assert report["incidents"] >= 1 and report["warnings"] >= 1
    assert 0.0 <= report["recall"] <= 1.0 and 0.0 <= report["precision"] <= 1.0
    assert len(out.read_text().splitlines()) == report["warning_versions"]


def test_eval_replay_rejects_an_unknown_baseline(sim_files: tuple[Path, Path]) -> None:
    ev, tr = sim_files
    res = CliRunner().invoke(app, ["eval", "replay", "--events", str(ev), "--truth", str(tr),
                                   "--baseline", "oracle"])
    assert res.exit_code == 2
    assert "oracle" in res.output
