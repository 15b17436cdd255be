"""``tocsin eval replay``'s printed output (streams/evaluation/report_table.py): delays as
h:mm, the flag on matches that do not fit their incident (match_fit.py), tables that fit
80 columns with ids whole, the notices for empty input and a high dead-letter share; and
the demo's results table at 80 columns."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from detectors.fusion.templates import DEFAULT_FILE, load_templates
from streams.core.regions import RegionRegistry
from streams.core.schemas import Evidence, Warning
from streams.evaluation.durations import format_hmm, parse_hmm
from streams.evaluation.match_fit import misfits, scenario_family
from streams.evaluation.replay_score import ReplayLine, TruthIncident, score
from streams.evaluation.report_table import (
    DEAD_LETTER_NOTICE_SHARE,
    Col,
    fit_table,
    input_notice,
    match_rows,
    summary_lines,
)
from streams.tools.cli import app
from streams.tools.demo import DemoResult, incident_table
from streams.tools.demo_live import TailResult
from streams.tools.live import WARNING, Expected
from streams.tools.simulate import SimConfig, simulate
from streams.tools.simulation.live import LiveRecord
from streams.tools.simulation.model import Incident

T0 = datetime(2026, 3, 4, tzinfo=UTC)
TEMPLATES = load_templates(DEFAULT_FILE)
DEPT = {"env": "ecology_bureau", "complaint": "citizen_hotline", "market": "market_regulation"}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ev(source: str, region: str, hours: float, kind: str) -> Evidence:
    return Evidence(source=source, department=DEPT[source], region=region,  # type: ignore[arg-type]
                    signal=f"{source}:{kind}:{region}", detector="d", observed=5.0,
                    expected=1.0, score=6.0, p_value=1e-6, event_time=at(hours))


def warning(wid: str, region: str, scenario: str, evidence: list[Evidence],
            hours: float) -> Warning:
    return Warning(warning_id=wid, version=1, status="new", region=region, scenario=scenario,
                   severity="Moderate", urgency="Immediate", certainty="Possible", score=8.0,
                   departments=sorted({e.department for e in evidence}), first_seen=at(hours),
                   last_seen=at(hours + 0.5), evidence=evidence, explanation="x")


def incident(**kw: Any) -> TruthIncident:
    base: dict[str, Any] = {"id": "inc-1", "scenario": "food_safety", "region": "oldtown",
                            "start": at(0), "end": at(10)}
    return TruthIncident.model_validate(base | kw)


FOOD_OK = warning("tw-oldtown-aaaa", "oldtown", "food_safety",
                  [ev("complaint", "oldtown", 1, "food_safety"),
                   ev("market", "oldtown", 2, "recall")], 2)
# the case: a sensor in a neighbour plus a complaint, as a pollution warning
SENSOR_PLUS_COMPLAINT = warning("tw-northhills-bbbb", "northhills", "pollution",
                                [ev("env", "northhills", 1, "pm25"),
                                 ev("complaint", "oldtown", 1.5, "illness")], 1.5)


# -- h:mm ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0:00"), (29.9, "0:00"), (-29.9, "0:00"), (30, "0:01"), (59, "0:01"), (3600, "1:00"),
    (4888.2, "1:21"), (-3900, "-1:05"), (90000, "25:00"), (27 * 3600 + 5 * 60, "27:05"),
    (-100 * 3600, "-100:00"),
])
def test_format_hmm_examples(seconds: float, text: str) -> None:
    assert format_hmm(seconds) == text


@given(st.floats(min_value=-1e7, max_value=1e7, allow_nan=False))
def test_hmm_parses_back_to_the_seconds_rounded_to_the_minute(seconds: float) -> None:
    text = format_hmm(seconds)
    assert re.fullmatch(r"-?\d+:[0-5]\d", text)
    back = parse_hmm(text)
    assert back % 60 == 0
    assert abs(back - seconds) <= 30
    assert back == 0 or (back < 0) == (seconds < 0)
    assert not text.startswith("-0:00")


@given(st.text(max_size=12))
def test_parse_hmm_raises_value_error_or_round_trips(text: str) -> None:
    try:
        seconds = parse_hmm(text)
    except ValueError:
        return
    assert parse_hmm(format_hmm(seconds)) == seconds


@pytest.mark.parametrize("bad", ["", "1", "1:5", "1:60", "a:00", "1:00:00", "--1:00"])
def test_parse_hmm_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_hmm(bad)


# -- fit ------------------------------------------------------------------------------------
def test_scenario_family_from_the_templates_words() -> None:
    assert scenario_family("river_pollution", TEMPLATES) == {"pollution"}
    assert "flood" in scenario_family("waterlogging", TEMPLATES)  # by its event title
    assert scenario_family("food_poisoning", TEMPLATES) == {"food_safety"}
    assert scenario_family("night_construction", TEMPLATES) == set()  # not judged
    assert scenario_family("counterfeit_wave", TEMPLATES) == set()  # "wave" is generic


def test_a_fitting_match_has_no_misfit() -> None:
    inc = incident(sources=["complaint", "market"], regions=["oldtown"])
    assert misfits(inc, FOOD_OK, TEMPLATES) == []
    # classic truth: department strings instead of sources, no regions
    assert misfits(incident(departments=["market_regulation", "citizen_hotline"]), FOOD_OK,
                   TEMPLATES) == []


def test_sensor_plus_neighbours_complaint_is_flagged_on_every_count() -> None:
    inc = incident(sources=["complaint", "market"], regions=["oldtown"])
    why = misfits(inc, SENSOR_PLUS_COMPLAINT, TEMPLATES)
    assert len(why) == 3
    assert why[0] == "scenario pollution vs incident food_safety"
    assert "ecology_bureau" in why[1] and "northhills" in why[2]


def test_each_rule_alone() -> None:
    # scenario only: right departments and place, wrong template
    w = warning("w1", "oldtown", "price_gouging", FOOD_OK.evidence, 2)
    assert misfits(incident(), w, TEMPLATES) == ["scenario price_gouging vs incident food_safety"]
    # a warning scenario that is no template (a baseline's) is not judged either
    baseline = w.model_copy(update={"scenario": "naive_two_departments"})
    assert misfits(incident(), baseline, TEMPLATES) == []
    # an unknown incident scenario is not judged; departments still are
    assert misfits(incident(scenario="zz_unheard_of"), w, TEMPLATES) == []
    assert len(misfits(incident(scenario="zz_unheard_of", sources=["env", "complaint"]),
                       w, TEMPLATES)) == 1
    # place: judged only when the truth lists the regions
    assert misfits(incident(region="northhills"), SENSOR_PLUS_COMPLAINT, TEMPLATES) == [
        "scenario pollution vs incident food_safety"]
    # time: evidence more than an hour before the start
    early = warning("w2", "oldtown", "food_safety",
                    [ev("complaint", "oldtown", -3, "food_safety"),
                     ev("market", "oldtown", 2, "recall")], 2)
    assert misfits(incident(), early, TEMPLATES) == [
        "evidence outside the incident's time: complaint:food_safety:oldtown"]
    assert misfits(incident(start=at(-2.5)), early, TEMPLATES) == []


def test_misfits_are_counted_but_never_change_the_scores(registry: RegionRegistry) -> None:
    truth = [incident(sources=["complaint", "market"], regions=["oldtown"])]
    both = score([FOOD_OK, SENSOR_PLUS_COMPLAINT], truth, registry)
    assert (both["detected"], both["warnings"], both["false_warnings"]) == (1, 2, 0)
    assert both["mismatched_matches"] == 1
    alone = score([SENSOR_PLUS_COMPLAINT], truth, registry)
    assert (alone["detected"], alone["recall"], alone["precision"]) == (1, 1.0, 1.0)
    assert alone["mismatched_matches"] == 1
    m = alone["per_incident"][0]["matches"][0]
    assert m["warning_id"] == SENSOR_PLUS_COMPLAINT.warning_id and len(m["misfit"]) == 3
    assert alone["median_delay"] == format_hmm(alone["median_delay_s"])
    assert score([FOOD_OK], truth, registry)["mismatched_matches"] == 0


def test_rows_flag_misfits_of_counted_matches_only(registry: RegionRegistry) -> None:
    truth = [incident(sources=["complaint", "market"], regions=["oldtown"]),
             incident(id="noise-1", scenario="sensor_fault", cross_department=False,
                      sources=["env"])]
    r = score([FOOD_OK, SENSOR_PLUS_COMPLAINT], truth, registry)
    cross, noise = r["per_incident"]
    rows = match_rows(cross)
    assert [row[0] for row in rows] == ["inc-1", ""]  # one row per warning
    assert [row[-1].splitlines() for row in rows] == [
        ["tw-northhills-bbbb", "[bold red]! [/]pollution"], ["tw-oldtown-aaaa", "food_safety"]]
    assert noise["matches"] and all(m["misfit"] for m in noise["matches"])
    assert not any("!" in row[-1] for row in match_rows(noise))  # all false anyway


# -- notices and summary --------------------------------------------------------------------
def test_input_notice_thresholds() -> None:
    n = 1000
    limit = int(DEAD_LETTER_NOTICE_SHARE * n)
    assert input_notice({"events": n, "dead_letters": limit}, Path("e.jsonl")) is None
    high = input_notice({"events": n, "dead_letters": limit + 1}, Path("e.jsonl"))
    assert high is not None and "tocsin validate e.jsonl" in high and "\n" not in high
    empty = input_notice({"events": 0, "dead_letters": 0}, Path("e.jsonl"))
    assert empty is not None and "no records" in empty


def test_summary_shows_delays_as_hmm() -> None:
    lines = summary_lines({"median_delay_s": 6173.5, "detected": 4},
                          ("detected", "median_delay_s"))
    assert lines[0].split() == ["detected", "4"]
    assert lines[1].split()[:2] == ["median_delay", "1:43"]
    assert summary_lines({"median_delay_s": None}, ("median_delay_s",))[0].split() == [
        "median_delay", "n/a"]


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["eval", "replay", *args], env={"COLUMNS": "80"})


def test_cli_notices_empty_input_and_dead_letters(tmp_path: Path) -> None:
    truth = tmp_path / "t.json"
    truth.write_text("[]")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = _invoke("--events", str(empty), "--truth", str(truth))
    assert res.exit_code == 0, res.output
    assert "no records" in res.stderr and "no records" not in res.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "env", "region": "Harbour"}\n' * 3 + "not json\n")
    res = _invoke("--events", str(bad), "--truth", str(truth), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["dead_letters"] == 4  # stdout stays one JSON object
    notice = [ln for ln in res.stderr.splitlines() if ln.startswith("notice:")]
    assert len(notice) == 1 and f"tocsin validate {bad}" in notice[0]


# -- tables at 80 columns -------------------------------------------------------------------
@pytest.fixture(scope="module")
def replay_output(tmp_path_factory: pytest.TempPathFactory, registry: RegionRegistry
                  ) -> tuple[str, dict[str, Any], list[str]]:
    d = tmp_path_factory.mktemp("evalout")
    ev_path, tr, wout = d / "e.jsonl", d / "t.json", d / "w.jsonl"
    simulate(SimConfig(seed=14), registry).write(ev_path, tr)
    res = _invoke("--events", str(ev_path), "--truth", str(tr), "--warnings-out", str(wout))
    assert res.exit_code == 0, res.output
    ids = sorted({json.loads(x)["warning_id"] for x in wout.read_text().splitlines()})
    report = json.loads(_invoke("--events", str(ev_path), "--truth", str(tr), "--json").stdout)
    return res.stdout, report, ids


def test_replay_tables_fit_80_columns_with_whole_ids(
        replay_output: tuple[str, dict[str, Any], list[str]]) -> None:
    out, report, ids = replay_output
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    assert ids, "seed 14 opens warnings"
    for wid in ids:
        assert wid in out
    for p in report["per_incident"]:
        assert p["id"] in out
        if p["delay_s"] is not None:
            assert format_hmm(p["delay_s"]) in out
    assert f"median_delay             {report['median_delay']}" in out
    assert f"mismatched_matches       {report['mismatched_matches']}" in out
    for u in report["unmatched_warnings"]:
        assert u["warning_id"] in out


def test_fit_table_drops_columns_never_cuts_ids() -> None:
    cols = (Col("id", ident=True), Col("notes", drop=1), Col("more", drop=2))
    rows = [["x" * 30, "a long free text that wraps", "other text"]]
    for width in (80, 40, 33):
        console = Console(width=width, record=True)
        console.print(fit_table(None, cols, rows, width))
        text = console.export_text()
        assert "x" * 30 in text and "…" not in text
        assert max(len(line) for line in text.splitlines()) <= width
    narrow = Console(width=33, record=True)
    narrow.print(fit_table(None, cols, rows, 33))
    assert "more" not in narrow.export_text() and "notes" not in narrow.export_text()


def test_demo_results_table_fits_80_columns(registry: RegionRegistry) -> None:
    truth = [incident(id="inc-14-03", sources=["complaint", "market"], regions=["oldtown"]),
             incident(id="inc-14-04", scenario="sensor_fault", cross_department=False,
                      region="northhills", sources=["env"]),
             incident(id="inc-14-09", scenario="waterlogging", region="techpark")]
    ws = [FOOD_OK.model_copy(update={"warning_id": "tw-oldtown-e5335d4421f75067"}),
          SENSOR_PLUS_COMPLAINT.model_copy(
              update={"warning_id": "tw-northhills-d18a6f2c9860c784"})]
    live = Incident(id="live-14-01", scenario="price_gouging", region="riverside",
                    start=at(200), end=at(201), cross_department=True, departments=[])
    decisive = LiveRecord(at(200).timestamp() + 14, ReplayLine(1, "market", b"{}", None))
    tail = TailResult([Expected("live", live, "tw-riverside-11ab94bbb16ad0b9", decisive,
                                produced=1.0, arrived={WARNING: 1.13})])
    result = DemoResult(score(ws, truth, registry), ws, 12.0, None,
                        {w.warning_id: 0.42 for w in ws}, tail)
    console = Console(width=80, record=True)
    console.print(incident_table(result, 80))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for name in ("inc-14-03", "inc-14-04", "inc-14-09", "tw-oldtown-e5335d4421f75067",
                 "tw-northhills-d18a6f2c9860c784", "food_safety", "waterlogging", "NO",
                 "live-14-01", "tw-riverside-11ab94bbb16ad0b9", "price_gouging", "14 s",
                 "0.13 s", "start (UTC)"):
        assert name in text
    assert "! pollution" in text and "0.42 s" in text
