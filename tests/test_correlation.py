from __future__ import annotations

from detectors.correlation import Correlator, Finding

H = 3600.0


def f(i: str, dept: str, kind: str, t: float, region: str = "r1", p: float = 1e-6) -> Finding:
    source = kind.split(":")[0]
    return Finding(i, source, dept, region, kind, f"{kind}:{region}", "d", 5.0, 1.0, p, t)


def test_single_department_never_warns() -> None:
    c = Correlator()
    out = []
    for i in range(20):
        out += c.process(f(f"a{i}", "eco", "env:water_cod", i * H))
    assert out == []


def test_two_departments_in_window_warn_once_then_update() -> None:
    c = Correlator(window_s=6 * H)
    assert c.process(f("a", "eco", "env:water_cod", 0)) == []
    new = c.process(f("b", "hotline", "complaint:odor", 2 * H))
    assert [v.status for v in new] == ["new"]
    wid = new[0].warning_id
    assert new[0].scenario == "pollution" and new[0].departments == ("eco", "hotline")
    assert new[0].first_seen == 0 and "observed" in new[0].explanation
    upd = c.process(f("c", "hotline", "complaint:illness", 3 * H))
    assert [(v.status, v.warning_id, v.version) for v in upd] == [("update", wid, 2)]
    assert c.process(f("c", "hotline", "complaint:illness", 3 * H)) == []  # replayed anomaly


def test_departments_too_far_apart_do_not_correlate() -> None:
    c = Correlator(window_s=6 * H)
    c.process(f("a", "eco", "env:water_cod", 0))
    assert c.process(f("b", "hotline", "complaint:odor", 7 * H)) == []


def test_other_regions_do_not_correlate() -> None:
    c = Correlator()
    c.process(f("a", "eco", "env:water_cod", 0, region="r1"))
    assert c.process(f("b", "hotline", "complaint:odor", H, region="r2")) == []


def test_quiet_incident_resolves() -> None:
    c = Correlator(window_s=6 * H, quiet_s=12 * H)
    c.process(f("a", "eco", "env:water_cod", 0))
    new = c.process(f("b", "hotline", "complaint:odor", H))
    out = c.advance(14 * H)
    assert [(v.status, v.warning_id, v.urgency) for v in out] == [
        ("resolved", new[0].warning_id, "Past")]
    assert c.open_incidents() == 0


def test_warning_id_is_stable_across_replays() -> None:
    def run() -> str:
        c = Correlator()
        c.process(f("a", "eco", "env:water_cod", 0))
        return c.process(f("b", "hotline", "complaint:odor", H))[0].warning_id

    assert run() == run()


def test_unrelated_scenario_in_same_region_is_a_new_incident() -> None:
    c = Correlator(window_s=6 * H)
    c.process(f("a", "market", "market:price:pork", 0))
    first = c.process(f("b", "hotline", "complaint:price", H))[0]
    assert first.scenario == "price_gouging"
    c.process(f("c", "eco", "env:water_cod", 2 * H))
    second = c.process(f("d", "hotline", "complaint:odor", 3 * H))
    assert [v.status for v in second] == ["new"]
    assert second[0].warning_id != first.warning_id and second[0].scenario == "pollution"
