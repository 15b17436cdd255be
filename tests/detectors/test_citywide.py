"""City-wide (common-mode) conditions: one notice or warning, never N local incidents."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Finding
from detectors.fusion.citywide import NOTICE, WARNING, CityView, ConditionVersion
from detectors.fusion.correlation import Correlator

H = 3600.0


def f(region: str, t: float, kind: str = "env:pm25", dept: str = "eco", *, city: bool = True,
      p: float = 1e-6) -> Finding:
    src = kind.split(":", 1)[0]
    return Finding(f"{kind}|{region}|{t}|{city}", src, dept, region, kind,
                   f"{kind}:{region}", "d", 9.0, 1.0, p, t, city=city)


def test_one_notice_for_a_city_wide_rise_then_resolved() -> None:
    v = CityView(min_regions=4, quiet_s=6 * H)
    for i, r in enumerate("abcdefgh"):
        v.add(f(r, 600.0 * i))
    out = v.take()
    assert [(c.status, c.level) for c in out] == [("new", NOTICE)]
    assert out[0].regions == ("a", "b", "c", "d")
    assert v.take() == []  # more regions of the same kind: no new version
    # the 4th-latest region (e, at 2400 s) leaves the 6 h window at 2400 s + 6 h
    assert v.common_until("env:pm25") == 2400.0 + 6 * H
    v.advance(2400.0 + 6 * H + 6 * H - 1)  # not yet quiet for 6 h
    assert v.take() == []
    v.advance(2400.0 + 12 * H)
    [res] = v.take()
    assert (res.status, res.condition_id, res.version) == ("resolved", out[0].condition_id, 2)
    assert v.open_condition() is None


def test_three_regions_are_not_city_wide() -> None:
    v = CityView(min_regions=4)
    for i, r in enumerate("abc"):
        v.add(f(r, 60.0 * i))
    assert v.take() == [] and not v.is_common("env:pm25", 200.0)


def test_a_second_department_makes_it_a_warning() -> None:
    v = CityView(min_regions=3)
    for i, r in enumerate("abc"):
        v.add(f(r, 60.0 * i))
    for i, r in enumerate("abc"):
        v.add(f(r, 300.0 + i, "complaint:smoke", "hotline"))
    out = v.take()
    assert [(c.status, c.level) for c in out] == [("new", NOTICE), ("update", WARNING)]
    assert out[1].departments == ("eco", "hotline")
    assert out[1].kinds == ("complaint:smoke", "env:pm25")
    assert "City-wide warning" in out[1].explanation


def test_correlator_holds_local_findings_of_a_city_wide_kind() -> None:
    c = Correlator()
    regions = "abcdef"
    for i, r in enumerate(regions):
        c.process(f(r, 60.0 * i))
    assert [v.status for v in c.city.take()] == ["new"]
    # a local pair in region a: the env side is city-wide, so no local incident opens
    out = c.process(f("a", 500.0, city=False))
    out += c.process(f("a", 600.0, "complaint:odor", "hotline", city=False, p=1e-8))
    assert out == [] and c.city.suppressed == 1


def test_pipeline_publishes_each_condition_once_whatever_the_partitions() -> None:
    from streams.core.settings import TocsinSettings
    from streams.pipeline.stages import CorrelationStage, city_copy, finding_to_anomaly

    s = TocsinSettings(partitions=3)
    stage = CorrelationStage(s, expect_all_sources=False)
    for i, r in enumerate("abcde"):
        a = city_copy(finding_to_anomaly(f(r, 1000.0 + 60 * i, city=False)))
        for part in range(3):
            stage.add(part, a, 0.0)
    for part in range(3):
        stage.release(part, 0.0)
    stage.flush()
    out = stage.take_conditions()
    assert [(c.status, c.level) for c in out] == [("new", "notice")]
    assert stage.take_conditions() == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefg"), st.floats(0, 72 * H),
                          st.sampled_from(["env:pm25", "complaint:smoke", "market:price:pork"])),
                max_size=80))
def test_condition_versions_are_consecutive_and_resolve_last(
        events: list[tuple[str, float, str]]) -> None:
    v = CityView(min_regions=3)
    dept = {"env:pm25": "eco", "complaint:smoke": "hotline", "market:price:pork": "samr"}
    for r, t, kind in sorted(events, key=lambda e: e[1]):
        v.add(f(r, t, kind, dept[kind]))
    v.advance(200 * H)
    by_id: dict[str, list[ConditionVersion]] = {}
    for c in v.take():
        by_id.setdefault(c.condition_id, []).append(c)
    for versions in by_id.values():
        assert [c.version for c in versions] == list(range(1, len(versions) + 1))
        assert versions[0].status == "new" and versions[-1].status == "resolved"
        assert all(c.status == "update" for c in versions[1:-1])
        assert all(len(c.regions) >= 3 for c in versions)
