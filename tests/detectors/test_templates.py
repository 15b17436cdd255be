from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from detectors.fusion.templates import (
    DEFAULT_FILE,
    TemplateError,
    load_templates,
    parse_templates,
)


def test_packaged_templates_load_and_cover_the_scenarios() -> None:
    ts = load_templates(DEFAULT_FILE)
    names = {t.name for t in ts.scenarios}
    assert {"pollution", "food_safety", "price_gouging", "flood", "product_quality"} <= names
    for t in ts.scenarios:
        assert t.kinds and t.instruction and t.event and t.cap_category
    assert ts.generic.min_departments == 3


def test_severity_rules_first_match_wins() -> None:
    ts = load_templates(DEFAULT_FILE)
    pol = ts.get("pollution")
    assert pol.severity_for(35.0, 3) == "Extreme"
    assert pol.severity_for(5.0, 3) == "Severe"
    assert pol.severity_for(9.0, 2) == "Moderate"
    assert pol.severity_for(2.0, 2) == "Minor"
    assert pol.certainty_for(13.0, 2) == "Likely" and pol.certainty_for(5.0, 2) == "Possible"
    assert ts.get("no_such").name == "cross_department"


def _base() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("scenarios"), "non-empty 'scenarios'"),
    (lambda d: d["scenarios"]["pollution"].update(cap_category="Weather"), "CAP 1.2 category"),
    (lambda d: d["scenarios"]["pollution"].update(kinds=["odor"]), "signal kinds"),
    (lambda d: d["scenarios"]["pollution"].update(kinds=[]), "non-empty list"),
    (lambda d: d["scenarios"]["pollution"]["severity"].append({"level": "Huge"}), "Huge"),
    (lambda d: d["scenarios"]["pollution"]["severity"].append({"level": "Minor", "scor": 1}),
     "unknown key"),
    (lambda d: d["scenarios"]["pollution"].update(colour="red"), "unknown key"),
    (lambda d: d["scenarios"]["pollution"].update(min_departments=1), ">= 2"),
    (lambda d: d["scenarios"].update(cross_department=d["scenarios"]["flood"]), "reserved"),
])
def test_bad_templates_name_the_entry(mutate, message) -> None:  # type: ignore[no-untyped-def]
    d = _base()
    mutate(d)
    with pytest.raises(TemplateError, match=message) as e:
        parse_templates(d, "scenarios.yaml")
    assert "scenarios.yaml" in str(e.value)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        load_templates(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: [unclosed", encoding="utf-8")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_templates(bad)


def test_an_edited_template_changes_what_the_correlator_opens(tmp_path: Path) -> None:
    from detectors.base import Finding
    from detectors.fusion.correlation import Correlator

    d = _base()
    d["scenarios"]["pollution"]["kinds"] = ["env:water_cod", "complaint:noise"]
    d["scenarios"]["pollution"].pop("groups")  # (they name kinds no longer listed)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(d), encoding="utf-8")
    c = Correlator(templates=load_templates(path))

    def f(i: str, dept: str, kind: str, t: float) -> Finding:
        return Finding(i, kind.split(":")[0], dept, "r", kind, kind, "d", 1.0, 0.0, 1e-6, t)

    c.process(f("a", "eco", "env:water_cod", 0.0))
    out = c.process(f("b", "hotline", "complaint:noise", 60.0))
    assert [(v.status, v.scenario) for v in out] == [("new", "pollution")]
    assert "Keep windows closed" in out[0].explanation


def test_groups_keep_unrelated_kinds_of_one_scenario_apart() -> None:
    """A pollution incident opens on the air group's or the water group's evidence, never
    on a PM plume corroborated by a tap-water complaint; an open incident still takes any
    evidence of its scenario."""
    from detectors.base import Finding
    from detectors.fusion.correlation import Correlator
    from detectors.fusion.templates import DEFAULT_FILE, load_templates

    def f(i: str, kind: str, t: float, p: float = 1e-7) -> Finding:
        return Finding(i, kind.split(":")[0], kind.split(":")[0], "r1", kind, kind, "d",
                       1.0, 0.0, p, t)

    tpl = load_templates(DEFAULT_FILE)
    assert len(tpl.get("pollution").opening_groups) == 2
    c = Correlator(templates=tpl)
    c.process(f("pm", "env:pm25", 0.0))
    assert c.process(f("wq", "complaint:water_quality", 3600.0)) == []
    opened = c.process(f("od", "complaint:odor", 7200.0))
    assert [v.status for v in opened] == ["new"]
    assert [v.status for v in c.process(f("cod", "env:water_cod", 9000.0))] == ["update"]


def test_groups_must_name_the_templates_own_kinds() -> None:
    import pytest

    from detectors.fusion.templates import TemplateError, parse_templates

    spec = {"scenarios": {"s": {"kinds": ["env:a", "complaint:b"],
                                "groups": {"g": ["env:a", "complaint:zzz"]}}}}
    with pytest.raises(TemplateError, match="groups"):
        parse_templates(spec)
