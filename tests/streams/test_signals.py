"""The signal catalogue (TOCSIN_SIGNALS): the packaged one keeps the old unit table, a metric
added only in the file flows end to end, a bad file refuses to start naming the entry."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from detectors.fusion.templates import DEFAULT_FILE as TEMPLATES
from detectors.fusion.templates import load_templates
from detectors.signals.catalogue import CatalogueError, parse_catalogue
from streams.core.errors import EXIT_USAGE, ConfigError, ValidationFailure
from streams.core.regions import RegionRegistry
from streams.core.settings import TocsinSettings
from streams.core.signals import DEFAULT_FILE, catalogue_json, load_signals, with_signals
from streams.core.units import normalise_sensor
from streams.ingest.ingestor import Origin
from streams.pipeline.inprocess import Pipeline
from streams.tools.cli import app

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 5, 1, tzinfo=UTC)

#: the hard-coded table the packaged catalogue replaced: same metrics, units, factors
OLD_UNITS: dict[str, tuple[str, dict[str, float]]] = {
    "pm25": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "μg/m³": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0}),
    "pm10": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "μg/m³": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0}),
    "no2": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0, "ppb": 1.88}),
    "so2": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0, "ppb": 2.62}),
    "o3": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0, "ppb": 1.96}),
    "water_cod": ("mg/L", {"mg/L": 1.0, "mg/l": 1.0, "g/L": 1000.0, "g/l": 1000.0}),
    "water_nh3n": ("mg/L", {"mg/L": 1.0, "mg/l": 1.0, "ug/L": 0.001, "µg/L": 0.001}),
    "water_ph": ("pH", {"pH": 1.0, "ph": 1.0}),
    "noise_db": ("dB", {"dB": 1.0, "db": 1.0, "dBA": 1.0, "dB(A)": 1.0}),
    "water_level_m": ("m", {"m": 1.0, "cm": 0.01, "mm": 0.001}),
}

#: the packaged catalogue with one metric added (the file a user edits)
DO = DEFAULT_FILE.read_text(encoding="utf-8") + """
  dissolved_oxygen:
    category: water
    unit: mg/L
    accepted: {mg/L: 1, ug/L: 0.001}
    bad: BAD
    templates: [pollution]
    limits: [{value: 5, source: "GB 3838-2002 class III"}]
"""


def test_the_packaged_catalogue_is_the_old_unit_table(registry: RegionRegistry) -> None:
    cat = load_signals(None, registry.ids(), [t.name for t in load_templates(TEMPLATES).scenarios])
    assert {m: (s.unit, s.accepted) for m, s in cat.metrics.items()} == OLD_UNITS
    assert cat.directions() == {**dict.fromkeys(OLD_UNITS, "up"), "water_ph": "both"}
    ph = cat.limits_for("water_ph")  # two-sided, which the old limits file could not say
    assert [(lim.limit, lim.direction) for lim in ph] == [(6.0, "below"), (9.0, "above")]
    # every packaged metric already sits in the templates it declares
    tpl = load_templates(TEMPLATES)
    assert with_signals(tpl, cat) == tpl


def test_limits_overridden_per_region_then_station(registry: RegionRegistry) -> None:
    cat = parse_catalogue({"metrics": {"pm25": {
        "unit": "ug/m3", "accepted": {"ug/m3": 1},
        "limits": [{"value": 75, "source": "GB 3095-2012",
                    "regions": {"harbour": {"value": 50, "source": "harbour rule"}},
                    "stations": {"S-1": {"value": 40, "source": "site permit"}}}]}}}, "f")
    assert cat.limits_for("pm25")[0].limit == 75.0
    assert cat.limits_for("pm25", region="harbour")[0].source == "harbour rule"
    assert cat.limits_for("pm25", region="harbour", station="S-1")[0].limit == 40.0
    assert cat.limits_for("pm25", region="oldtown", station="S-2")[0].limit == 75.0
    assert cat.limits_for("turbidity") == ()


def reading(i: int, value: float, unit: str = "mg/L", metric: str = "dissolved_oxygen"
            ) -> bytes:
    return json.dumps({
        "reading_id": f"r{i}", "sensor_id": "do-1", "metric": metric, "value": value,
        "unit": unit, "region": "harbour", "department": "ecology",
        "observed_at": (T0 + timedelta(minutes=15 * i)).isoformat()}).encode()


RISE = (T0 + timedelta(minutes=15 * 200), T0 + timedelta(minutes=15 * 202))
DROP = T0 + timedelta(minutes=15 * 260)


def run(path: Path, registry: RegionRegistry) -> Pipeline:
    """A week of 15-minute dissolved-oxygen readings (every other one in ug/L): steady near
    8 mg/L, a rise to 14 (i 200-202), then from i 260 a drop to 2 mg/L."""
    pipe = Pipeline(TocsinSettings(signals=path, pseudonym_key="signals-test-key-0001"),
                    registry)
    rng = random.Random(3)
    for i in range(300):
        v = 14.0 if 200 <= i <= 202 else 2.0 if i >= 260 else 8.0
        v += rng.gauss(0, 0.1)
        raw = reading(i, v * 1000, "ug/L") if i % 2 else reading(i, v)
        pipe.feed("env", raw, Origin("tocsin.env.readings", 0, i))
    pipe.finish()
    return pipe


def test_a_metric_added_only_in_the_catalogue_flows_end_to_end(
        tmp_path: Path, registry: RegionRegistry) -> None:
    path = tmp_path / "signals.yaml"
    path.write_text(DO.replace("BAD", "down"), encoding="utf-8")
    pipe = run(path, registry)
    c = pipe.sources.counters
    assert pipe.dead_letters == [] and c.valid["env"] == 300  # accepted, both units
    found = [a for a in pipe.anomalies if a.kind == "env:dissolved_oxygen"]
    # the drop is detected, normalised to mg/L (never 2000 ug/L); the rise is not (bad: down)
    assert any(a.event_time >= DROP and a.observed < 3.0 and a.expected > 7.0 for a in found)
    assert not any(RISE[0] <= a.event_time <= RISE[1] for a in found)
    pollution = pipe.correlation.templates.get("pollution")
    assert pollution.matches("env:dissolved_oxygen")
    # it joins the water group (category water), not the air group
    assert [("env:dissolved_oxygen" in g, "env:water_cod" in g) for g in pollution.groups
            ] == [(False, False), (True, True)]


def test_the_bad_direction_comes_from_the_catalogue(tmp_path: Path,
                                                    registry: RegionRegistry) -> None:
    path = tmp_path / "signals.yaml"
    path.write_text(DO.replace("BAD", "up"), encoding="utf-8")
    found = [a for a in run(path, registry).anomalies if a.kind == "env:dissolved_oxygen"]
    # the rise, not the drop
    assert any(RISE[0] <= a.event_time <= RISE[1] and a.observed > 13.0 for a in found)
    assert not any(a.event_time >= DROP for a in found)


def test_an_unknown_metric_is_dead_lettered_naming_the_catalogue(
        tmp_path: Path, registry: RegionRegistry) -> None:
    path = tmp_path / "signals.yaml"
    path.write_text(DO.replace("BAD", "down"), encoding="utf-8")
    pipe = Pipeline(TocsinSettings(signals=path), registry)
    pipe.feed("env", reading(0, 12.0, "NTU", "turbidity"), Origin("tocsin.env.readings", 0, 0))
    pipe.feed("env", reading(1, 3.0, "ppm"), Origin("tocsin.env.readings", 0, 1))
    unknown, unit = pipe.dead_letters
    assert unknown.error_type == "unknown_metric" and str(path) in unknown.reason
    assert "turbidity" in unknown.reason and "dissolved_oxygen" in unknown.reason
    assert unit.error_type == "bad_unit" and "ug/L" in unit.reason


GOOD_METRIC = "metrics:\n  do:\n    unit: mg/L\n    accepted: {mg/L: 1}\n"


@pytest.mark.parametrize(("text", "entry"), [
    ("metrics: [\n", "not valid YAML at line 2"),
    ("metrics:\n  do:\n    unit: mg/L\n    accepted: {mg/L: 1, g/L: -3}\n",
     "metrics.do.accepted: the factor of 'g/L' must be a positive number"),
    ("metrics:\n  do:\n    unit: mg/L\n    accepted: {mg/L: 1, g/L: lots}\n",
     "metrics.do.accepted.g/L: Input should be a valid number"),
    ("metrics:\n  do:\n    unit: mg/L\n    accepted: {g/L: 1000}\n",
     "metrics.do.accepted: list the canonical unit 'mg/L'"),
    (GOOD_METRIC + "    bad: sideways\n", "metrics.do.bad: Input should be 'up', 'down' or"),
    (GOOD_METRIC + "    templates: [polution]\n",
     "metrics.do.templates: no scenario template 'polution'; known: flood"),
    (GOOD_METRIC + "    limits: [{value: 5, source: s, regions: {atlantis: "
     "{value: 4, source: t}}}]\n",
     "metrics.do.limits.0.regions.atlantis: not a region of the region registry"),
    (GOOD_METRIC + "    unitz: mg/L\n", "metrics.do.unitz: Extra inputs are not permitted"),
    ("metrics: {}\n", "metrics: Dictionary should have at least 1 item"),
])
def test_a_bad_catalogue_refuses_to_start_naming_the_entry(
        tmp_path: Path, registry: RegionRegistry, text: str, entry: str) -> None:
    path = tmp_path / "signals.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Pipeline(TocsinSettings(signals=path), registry)
    msg = str(info.value)
    assert msg.startswith(f"TOCSIN_SIGNALS: {path}: {entry}") and "\n" not in msg
    assert info.value.exit_code == EXIT_USAGE


def test_a_missing_catalogue_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"cannot read the signal catalogue {tmp_path}/no"):
        load_signals(tmp_path / "no.yaml")


def test_tocsin_signals_lists_the_catalogue_in_force(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = CliRunner().invoke(app, ["signals", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["file"] == str(DEFAULT_FILE) and list(doc["metrics"]) == list(OLD_UNITS)
    ph = doc["metrics"]["water_ph"]
    assert ph["bad"] == "both" and ph["templates"] == ["pollution"]
    assert [lim["direction"] for lim in ph["limits"]] == ["below", "above"]
    assert "GB 3838-2002" in ph["limits"][0]["source"]
    path = tmp_path / "signals.yaml"
    path.write_text(DO.replace("BAD", "down"), encoding="utf-8")
    monkeypatch.setenv("TOCSIN_SIGNALS", str(path))
    res = CliRunner().invoke(app, ["signals"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "dissolved_oxygen" in res.stdout and "GB 3838-2002 class III" in res.stdout
    assert "noise_nuisance" in res.stdout and "GB 3096-2008" in res.stdout


@pytest.mark.parametrize("command", [["signals"], ["worker"],
                                     ["eval", "replay", "--events", "e", "--truth", "t"]])
def test_commands_exit_2_with_one_line_on_a_bad_catalogue(tmp_path: Path,
                                                          command: list[str]) -> None:
    path = tmp_path / "signals.yaml"
    path.write_text("metrics:\n  do:\n    unit: mg/L\n    accepted: {mg/L: 0}\n",
                    encoding="utf-8")
    (tmp_path / "e").write_text("", encoding="utf-8")
    (tmp_path / "t").write_text("[]", encoding="utf-8")
    env = {"TOCSIN_SIGNALS": str(path), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
           "TOCSIN_METRICS_PORT": "0", "TOCSIN_BROKER": "127.0.0.1:1"}
    proc = subprocess.run([sys.executable, "-m", "streams", *command], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_USAGE, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: TOCSIN_SIGNALS: {path}: metrics.do.accepted: the factor of "
                     "'mg/L' must be a positive number, got 0.0"]


def test_catalogue_json_is_json(registry: RegionRegistry) -> None:
    cat = load_signals(None)
    doc = catalogue_json(cat)
    assert json.loads(json.dumps(doc)) == doc
    assert doc["metrics"]["pm25"]["category"] == "air"


@given(metric=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
       factor=st.floats(min_value=1e-9, max_value=1e9),
       value=st.floats(min_value=-1e6, max_value=1e6),
       bad=st.sampled_from(["up", "down", "both"]))
def test_any_positive_factor_normalises(metric: str, factor: float, value: float,
                                        bad: str) -> None:
    cat = parse_catalogue({"metrics": {metric: {
        "unit": "c", "accepted": {"c": 1, " x ": factor}, "bad": bad}}}, "f.yaml")
    assert normalise_sensor(metric, value, "x", cat) == (value * factor, "c")
    assert normalise_sensor(metric, value, "c ", cat) == (value, "c")
    assert cat.directions() == {metric: bad}


@given(factor=st.one_of(st.floats(max_value=0.0), st.just(float("nan")),
                        st.just(float("inf")), st.booleans(), st.text(max_size=5)))
def test_a_factor_that_is_not_a_positive_number_is_refused(factor: object) -> None:
    with pytest.raises(CatalogueError, match=r"^f\.yaml: metrics\.m\.accepted"):
        parse_catalogue({"metrics": {"m": {"unit": "c", "accepted": {"c": 1, "x": factor}}}},
                        "f.yaml")


def test_normalise_rejects_what_the_catalogue_does_not_list() -> None:
    cat = load_signals(None)
    with pytest.raises(ValidationFailure) as info:
        normalise_sensor("no2", 1.0, "ppm", cat)
    assert info.value.error_type == "bad_unit" and str(DEFAULT_FILE) in info.value.reason
