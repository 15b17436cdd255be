"""The live world of ``tocsin bench --live`` and the demo's real-time tail, in-process:
history ending at the requested moment, a tail in its window, deterministic per seed,
and enough decisive records inside the live window for the bench's twenty incidents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.core.regions import RegionRegistry
from streams.core.settings import TocsinSettings
from streams.evaluation.replay_score import decisive_records, feed_lines
from streams.pipeline.inprocess import Pipeline
from streams.tools.live import LiveCity, prefixed_registry, quantiles
from streams.tools.simulation.delivery import TIME_FIELDS
from streams.tools.simulation.live import LiveConfig, LiveIncident, LiveWorld
from streams.tools.simulation.model import SCENARIO_HOURS

ROOT = Path(__file__).resolve().parents[2]
END = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday morning: markets open
START = END + timedelta(seconds=45)


def _event_time(raw: bytes, source: str) -> float | None:
    """The record's event time; None for a malformed one."""
    try:
        value = json.loads(raw)[TIME_FIELDS[source]]
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError, AttributeError):
        return None


def _world(seed: int, registry: RegionRegistry, **kw: object) -> LiveWorld:
    return LiveWorld(LiveConfig(seed=seed, history_days=2.0, **kw), registry)  # type: ignore[arg-type]


def test_history_ends_at_now_and_tail_fills_its_window(registry: RegionRegistry) -> None:
    w = _world(5, registry)
    history = w.history(END)
    times = [t for r in history if r.line.source is not None
             and (t := _event_time(r.line.raw, r.line.source)) is not None]
    assert max(times) < END.timestamp()
    assert max(times) > END.timestamp() - w.cfg.sensor_period_s
    assert min(times) >= (END - timedelta(days=2)).timestamp()
    tail = w.tail(START)
    t0, t1 = START.timestamp(), START.timestamp() + w.cfg.live_s
    assert all(t0 <= r.t < t1 for r in tail.records)
    # event time = the moment it is due: the record says so, and they come in that order
    assert [r.t for r in tail.records] == sorted(r.t for r in tail.records)
    for r in tail.records:
        assert r.line.source is not None
        assert _event_time(r.line.raw, r.line.source) == pytest.approx(r.t, abs=1e-6)
    # every incident its own region, onset in the onset window, on the shortened scale
    assert len(tail.incidents) == len(w.cfg.scenarios)
    assert len({i.region for i in tail.incidents}) == len(tail.incidents)
    for inc in tail.incidents:
        assert isinstance(inc, LiveIncident)
        assert t0 + w.cfg.onsets_s[0] <= inc.start.timestamp() <= t0 + w.cfg.onsets_s[1]
        lo, hi = SCENARIO_HOURS[inc.scenario]
        hours = (inc.end - inc.start).total_seconds() / 3600 * w.cfg.time_scale
        assert lo <= hours <= hi
        assert inc.active(inc.start + timedelta(seconds=inc.ramp_s)) == 1.0
    ids = [json.loads(r.line.raw).get("complaint_id") for r in history + tail.records]
    ids = [i for i in ids if i]
    assert len(ids) == len(set(ids)), "complaint ids repeat between history and tail"


def test_the_world_is_deterministic_per_seed(registry: RegionRegistry) -> None:
    def run(seed: int) -> list[bytes]:
        w = _world(seed, registry, live_s=60.0, onsets_s=(0.0, 30.0))
        return [r.line.raw for r in w.history(END) + w.tail(START).records]

    a = run(3)
    assert a == run(3)
    assert a != run(4)


def test_five_cities_give_twenty_decisive_records_in_the_live_window(
        registry: RegionRegistry) -> None:
    """The bench's composition (five cities, five incidents each), the product's
    settings: the in-process replay opens at least twenty incidents' warnings inside the
    live window (the correlator fires on arrival, not after the allowed lateness)."""
    settings = TocsinSettings(partitions=1)
    decided = 0
    for i in range(5):
        reg = prefixed_registry(registry, f"c{i + 1}-")
        city = LiveCity(f"c{i + 1}", _world(100 + i, reg, time_scale=120.0), settings)
        city.make_history(END)
        city.replay_history()
        tail = city.make_tail(START)
        t1 = START.timestamp() + city.world.cfg.live_s
        for e in city.expected:
            if e.decisive is not None:
                assert e.decisive in tail.records
                assert e.incident.start.timestamp() <= e.decisive.t < t1
                assert e.warning_id is not None
                assert e.warning_id.startswith(f"tw-{e.incident.region}-")
                decided += 1
    assert decided >= 20


def test_decisive_record_is_the_one_whose_feed_opens_the_warning(
        registry: RegionRegistry) -> None:
    settings = TocsinSettings(partitions=1)
    w = _world(101, registry, time_scale=120.0)
    lines = [r.line for r in w.history(END)] + [r.line for r in w.tail(START).records]
    found = decisive_records(Pipeline(settings, registry), lines)
    assert found
    for wid, ln in found.items():
        cut = lines.index(ln)
        before = Pipeline(settings, registry)
        feed_lines(before, lines[:cut])
        assert wid not in {x.warning_id for x in before.warnings}
        feed_lines(before, [ln])
        assert wid in {x.warning_id for x in before.warnings}
        break  # one is enough: each replay takes seconds


def test_quantiles_use_the_nearest_rank() -> None:
    assert quantiles([]) == {"p50": None, "p99": None, "max": None}
    xs = [float(i) for i in range(1, 21)]
    assert quantiles(xs) == {"p50": 10.5, "p99": 20.0, "max": 20.0}
    assert quantiles([float(i) for i in range(1, 201)])["p99"] == 198.0


def test_live_bench_without_alertmanager_fails_in_one_line(tmp_path: Path) -> None:
    """No ``prometheus-alertmanager`` on PATH: exit 69 (EX_UNAVAILABLE) with one line that
    says what to install, before any broker or worker starts; never a traceback."""
    env = {**os.environ, "PATH": str(tmp_path)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    proc = subprocess.run([sys.executable, "-m", "streams", "bench", "--live", "--json"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 69, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip() and "PSEUDONYM" not in x]
    assert len(lines) == 1, proc.stderr
    assert "prometheus-alertmanager not found" in lines[0]
    assert "apt-get install -y prometheus-alertmanager" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.integration
def test_live_bench_runs_end_to_end(kafka_bootstrap: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """One city, 45 s of real time, through a real Alertmanager: every field present and
    consistent (the figures themselves are never asserted)."""
    from typer.testing import CliRunner

    from streams.tools.cli import app
    from tests.services import ensure_binary

    ensure_binary("prometheus-alertmanager")  # the tests install it when missing
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    result = CliRunner().invoke(app, ["bench", "--live", "--json", "--cities", "1",
                                      "--live-s", "45", "--time-scale", "600"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout[result.stdout.index("{"):])
    assert res["incidents_expected"] == 5
    assert res["incidents_measured"] <= res["incidents_decisive"] <= 5
    assert res["alertmanager_measured"] <= res["incidents_decisive"]
    assert len(res["incidents_missed"]) == 5 - res["incidents_measured"]
    assert len(res["per_incident"]) == 5
    for key, n in (("live", res["incidents_measured"]),
                   ("alertmanager", res["alertmanager_measured"])):
        if n:
            assert res[f"{key}_p50_s"] <= res[f"{key}_p99_s"] <= res[f"{key}_max_s"]
        else:
            assert res[f"{key}_p50_s"] is None
    assert res["records_history"] > 10_000 and res["records_live"] > 0
    defaults = TocsinSettings()
    assert res["settings"]["allowed_lateness_s"] == defaults.allowed_lateness_s
    assert res["settings"]["reorder_idle_s"] == defaults.reorder_idle_s
