"""The world zoo's generator (streams/world/): deterministic, on the wire contract, truthful,
within its documented ranges; and ``tocsin eval zoo`` end to end."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from streams.core.regions import RegionRegistry
from streams.core.signals import load_signals
from streams.core.units import PRICE_UNITS
from streams.evaluation.replay_score import load_truth
from streams.evaluation.world.catalog import CADENCES, CATEGORIES, CHANNELS
from streams.evaluation.world.draw import draw_world
from streams.evaluation.world.generate import WorldSim, simulate_world
from streams.evaluation.world.model import DAY, HOUR, ONSETS, World
from streams.evaluation.world.plan import burn_in
from streams.ingest.ingestor import Ingestor, Origin
from streams.ingest.privacy import Pseudonymizer
from streams.tools.cli import app
from streams.tools.simulate import SimConfig, simulate

SEEDS = (1000, 1001, 1002)


@cache
def sim(seed: int) -> WorldSim:
    return simulate_world(seed, days=4.0)


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def test_a_world_is_deterministic_per_seed() -> None:
    a, b = simulate_world(1001, days=3.0), simulate_world(1001, days=3.0)
    assert a.lines == b.lines
    assert a.truth() == b.truth()
    assert a.world.regions_csv() == b.world.regions_csv()
    c = simulate_world(1002, days=3.0)
    assert a.lines != c.lines and a.world.regions_csv() != c.world.regions_csv()


def test_every_line_but_the_malformed_ones_passes_ingest() -> None:
    for seed in SEEDS:
        s = sim(seed)
        ing = Ingestor(s.world.registry(), pseudonymizer=Pseudonymizer(b"k" * 32),
                       max_ahead_s=None)
        ok = dead = dup = 0
        sources: set[str] = set()
        for i, line in enumerate(s.lines):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                dead += 1
                continue
            src = obj.pop("source")
            raw = json.dumps(obj, ensure_ascii=False).encode()
            res = ing.ingest(src, raw, Origin("test", 0, i))
            if res.duplicate:
                dup += 1
            elif res.dead is not None:
                dead += 1
            else:
                ok += 1
                sources.add(src)
        assert dead == s.stats["malformed"], seed
        assert dup == s.stats["duplicates"]
        assert ok + dead + dup == len(s.lines)
        assert sources == {"env", "complaint", "market"}


def _records(s: WorldSim, source: str) -> list[dict[str, object]]:
    out = []
    for line in s.lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if obj.get("source") == source:
            out.append(obj)
    return out


def test_records_use_only_accepted_names_and_units() -> None:
    units = load_signals(None).metrics
    for seed in SEEDS:
        for line in sim(seed).lines:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if obj.get("source") == "env" and obj.get("metric") in units:
                assert obj["unit"] in units[obj["metric"]].accepted or obj["unit"] == "ug/m^3"
            if obj.get("source") == "market" and obj.get("kind") == "price_report":
                assert obj["unit"] in PRICE_UNITS or obj["unit"] == "CNY/kilo"
            if obj.get("source") == "complaint" and obj.get("channel") != "fax":
                assert obj["category"] in CATEGORIES and obj["channel"] in CHANNELS


def test_truth_is_consistent_and_readable(tmp_path: Path) -> None:
    for seed in SEEDS:
        s = sim(seed)
        ev, tr, rg = tmp_path / f"{seed}.jsonl", tmp_path / f"{seed}.json", tmp_path / "r.csv"
        s.write(ev, tr, rg)
        registry = RegionRegistry.from_csv(rg)
        assert 6 <= len(registry) <= 24
        for r in registry:
            assert r.neighbours and all(r.region in registry.neighbours(n)
                                        for n in r.neighbours)
        truth = json.loads(tr.read_text())
        assert [t.id for t in load_truth(tr)] == [t["id"] for t in truth]
        assert len({t["id"] for t in truth}) == len(truth)
        for t in truth:
            assert set(t) == {"id", "scenario", "region", "start", "end", "cross_department",
                              "regions", "sources", "onset", "strength"}
            assert s.world.start <= _ts(t["start"]) < _ts(t["end"]) <= s.world.end
            assert t["region"] in t["regions"] and all(r in registry for r in t["regions"])
            assert set(t["sources"]) <= {"env", "complaint", "market"}
            assert (len(t["sources"]) == 2) == t["cross_department"]


def test_incidents_show_in_their_departments() -> None:
    """Each incident has at least two of its complaints in its window, and a station that
    can see it when sensors are one of its departments."""
    for seed in SEEDS:
        s = sim(seed)
        complaints = _records(s, "complaint")
        for inc in s.world.incidents():
            cats = set(inc.detail["categories"])
            seen = [c for c in complaints if c.get("category") in cats
                    and c.get("region") in inc.regions
                    and inc.start <= _ts(str(c["received_at"])) <= inc.end]
            assert len(seen) >= 2, inc.id
            if "env" in inc.sources:
                metrics = set(inc.detail["metrics"])
                assert any(st.region == inc.region and metrics & {c.metric for c in st.channels}
                           for st in s.world.stations), inc.id


def _check_ranges(w: World, scale: float) -> None:
    assert 6 <= len(w.regions) <= 24
    rates = [r.complaints_per_day for r in w.regions]
    assert 10.0 - 1e-9 <= max(rates) / min(rates) <= 20.0 + 1e-9
    assert all(s.cadence_s in CADENCES for s in w.stations)
    for shop in w.shops:
        assert all(g.unit in PRICE_UNITS for g in shop.goods)
    for st_ in w.stations:
        assert all(c.unit in load_signals(None).metrics[c.metric].accepted for c in st_.channels)
    for inc in w.incidents():
        assert inc.onset in ONSETS
        assert 2 * HOUR <= inc.end - inc.start <= 3 * DAY
        assert 0.3 * scale - 1e-9 <= inc.strength <= 1.0 * scale + 1e-9
        assert inc.start >= w.start + burn_in(w.days) and inc.end <= w.end
        assert 0.0 <= inc.ramp_s <= inc.phys_end - inc.start
    for d in w.decoys():
        assert w.start <= d.start < d.end <= w.end


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), days=st.sampled_from((2.0, 4.0, 14.0, 30.0)),
       scale=st.sampled_from((0.5, 1.0, 1.5)))
def test_draws_respect_their_ranges(seed: int, days: float, scale: float) -> None:
    _check_ranges(draw_world(seed, days, scale), scale)


def test_worlds_vary_in_structure() -> None:
    worlds = [draw_world(s) for s in range(1000, 1060)]
    assert any(not w.incidents() for w in worlds)  # a world with no incident exists
    episodes = {e.scenario for w in worlds for e in w.episodes}
    assert {"pollution", "food_safety", "price_gouging", "flood", "product_quality",
            "noise"} <= episodes
    assert {f"sensor_{k}" for k in ("stuck", "drift", "step", "spikes", "zeros",
                                    "recalibration")} <= episodes
    assert {"smog", "holiday_price_rise", "hotline_backlog"} <= episodes
    assert {e.onset for w in worlds for e in w.incidents()} == set(ONSETS)
    assert len({len(w.regions) for w in worlds}) > 5


def test_simulate_cli_random_and_classic_unchanged(tmp_path: Path,
                                                   registry: RegionRegistry) -> None:
    ev, tr, rg = tmp_path / "e.jsonl", tmp_path / "t.json", tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["simulate", "--world", "random", "--seed", "1001",
                                   "--days", "3", "--out", str(ev), "--truth", str(tr),
                                   "--regions-out", str(rg)])
    assert res.exit_code == 0, res.output
    assert ev.read_text().splitlines() == simulate_world(1001, days=3.0).lines
    assert RegionRegistry.from_csv(rg).ids() == simulate_world(1001, 3.0).world.region_ids()
    res = CliRunner().invoke(app, ["simulate", "--seed", "3", "--out", str(ev)])
    assert res.exit_code == 0, res.output
    assert ev.read_text().splitlines() == list(simulate(SimConfig(seed=3), registry).lines())


def test_bad_input_is_one_line_and_exit_2() -> None:
    for args in (["eval", "zoo", "--worlds", "0"],
                 ["eval", "zoo", "--worlds", "2", "--effect-scale", "-1"],
                 ["eval", "zoo", "--worlds", "2", "--effect-scale", "nan"],
                 ["eval", "zoo", "--worlds", "2", "--days", "1"],
                 ["simulate", "--world", "random", "--out", "x", "--effect-scale", "0"],
                 ["simulate", "--world", "mars", "--out", "x"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: "), res.stderr
        assert res.exception is None or isinstance(res.exception, SystemExit)


def test_eval_zoo_json_end_to_end() -> None:
    res = CliRunner().invoke(app, ["eval", "zoo", "--worlds", "2", "--days", "4", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert {"config", "worlds", "overall", "by_scenario", "tocsin_ge_naive_share",
            "no_incident_worlds", "false_per_10_region_weeks_no_incident", "worst_world",
            "seconds"} <= set(report)
    assert [w["seed"] for w in report["worlds"]] == [1000, 1001]
    for w in report["worlds"]:
        assert 6 <= w["regions"] <= 24 and w["incidents"] >= 0
        for m in ("tocsin", "naive", "single"):
            assert 0.0 <= w[m]["recall"] <= 1.0 and 0.0 <= w[m]["precision"] <= 1.0
            assert w[m]["median_delay_h"] is None or w[m]["median_delay_h"] >= 0
    for m in ("tocsin", "naive", "single"):
        o = report["overall"][m]
        assert o["incidents"] == sum(w["incidents"] for w in report["worlds"])
        assert 0 <= o["detected"] <= o["incidents"]
        for k in ("recall", "precision"):
            assert o[k] is None or 0.0 <= o[k] <= 1.0
        assert math.isfinite(o["false_per_10_region_weeks"])
        assert o["false_per_10_region_weeks"] >= 0
    assert 0.0 <= report["tocsin_ge_naive_share"] <= 1.0
    assert report["worst_world"]["seed"] in (1000, 1001)
    assert 0.0 <= report["worst_world"]["f1"] <= 1.0


def test_world_times_are_in_the_past() -> None:
    """The ingest refuses event times ahead of the clock: worlds lie in 2024-2025."""
    w = draw_world(5, days=60.0)
    assert w.end < datetime(2026, 3, 1, tzinfo=UTC).timestamp()
