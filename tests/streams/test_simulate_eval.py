from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streams.core.regions import RegionRegistry
from streams.core.settings import TocsinSettings
from streams.evaluation.replay_score import load_truth, read_replay, run_pipeline, score
from streams.tools.cli import app
from streams.tools.simulate import SimConfig, simulate

SEED = 14


def test_simulation_is_deterministic(registry: RegionRegistry) -> None:
    a = simulate(SimConfig(seed=3, days=4), registry)
    b = simulate(SimConfig(seed=3, days=4), registry)
    assert list(a.lines()) == list(b.lines())
    assert a.truth() == b.truth()
    c = simulate(SimConfig(seed=4, days=4), registry)
    assert list(a.lines()) != list(c.lines())


def test_simulation_has_cross_and_noise_incidents_and_dirty_data(registry: RegionRegistry) -> None:
    sim = simulate(SimConfig(seed=SEED), registry)
    assert {i.cross_department for i in sim.incidents} == {True, False}
    assert sim.n_malformed > 5 and sim.n_duplicates > 5
    assert {e.source for e in sim.events} == {"env", "complaint", "market"}
    times = [e.arrival for e in sim.events]
    assert times == sorted(times)


def test_eval_replay_cli_json(tmp_path: Path, registry: RegionRegistry) -> None:
    sim = simulate(SimConfig(seed=SEED), registry)
    ev, tr = tmp_path / "e.jsonl", tmp_path / "t.json"
    sim.write(ev, tr)
    with ev.open("a") as fh:
        fh.write("this line is not json\n")
    out = tmp_path / "w.jsonl"
    res = CliRunner().invoke(app, ["eval", "replay", "--events", str(ev), "--truth", str(tr),
                                   "--json", "--warnings-out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    for k in ("incidents", "detected", "recall", "warnings", "false_warnings", "precision",
              "median_delay_s"):
        assert k in report
    assert report["incidents"] == sum(i.cross_department for i in sim.incidents)
    assert report["detected"] >= 1 and report["warnings"] >= 1
    assert report["dead_letters"] == sim.n_malformed + 1
    assert report["duplicates"] == sim.n_duplicates
    lines = out.read_text().splitlines()
    assert len(lines) == report["warning_versions"]


def test_score_matching_rules(registry: RegionRegistry, tmp_path: Path) -> None:
    sim = simulate(SimConfig(seed=SEED), registry)
    ev, tr = tmp_path / "e.jsonl", tmp_path / "t.json"
    sim.write(ev, tr)
    truth = load_truth(tr)
    pipe, _ = run_pipeline(read_replay(ev), TocsinSettings(), registry)
    r = score(pipe.warnings, truth, registry)
    assert r["detected"] == sum(p["detected"] for p in r["per_incident"] if p["cross_department"])
    # with no warnings nothing is detected and nothing is false
    empty = score([], truth, registry)
    assert empty["detected"] == 0 and empty["false_warnings"] == 0 and empty["recall"] == 0.0
