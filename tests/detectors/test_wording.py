"""What a duty officer reads (detectors.fusion.wording, versions.explain): certainty in
words, units, windows, neighbours, local times to the minute, the action on every open
version and a closing line on closed ones; never scientific notation or microseconds."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Finding
from detectors.fusion.correlation import Correlator
from detectors.fusion.feedback import Decision
from detectors.fusion.ledger import WITHDRAWN, Ledger
from detectors.fusion.versions import IncidentVersion, explain
from detectors.fusion.wording import (
    ACTION,
    MetricWords,
    Wording,
    audit_rule,
    count_line,
    hours,
    number,
    usual_range,
    without_action,
)

H = 3600.0
T0 = datetime(2026, 3, 2, 6, 5, 42, 123456, tzinfo=UTC).timestamp()
COD = MetricWords("COD", "mg/L", "water")
SHANGHAI = Wording({"water_cod": COD}, ZoneInfo("Asia/Shanghai"))
#: scientific notation (1e-07, 2.5E+10); a time with seconds or microseconds
_SCI = re.compile(r"\d[eE][-+]?\d")
_SECONDS = re.compile(r"\d\d:\d\d:\d\d|\d\d:\d\d\.\d")


def finding(i: str, kind: str, signal: str, observed: float, expected: float, p: float,
            t: float, detector: str = "sensor_ensemble", via: str = "",
            window_s: float = 0.0, region: str = "harbour") -> Finding:
    source = kind.split(":")[0]
    dept = {"env": "ecology_bureau", "complaint": "citizen_hotline"}.get(source, "market")
    return Finding(i, source, dept, region, kind, signal, detector, observed, expected, p, t,
                   via=via, window_s=window_s)


def test_a_reading_has_its_unit_usual_level_and_deviation_in_plain_words() -> None:
    g = finding("a", "env:water_cod", "env:water_cod:S-3", 31.4, 17.3, 1e-15, T0)
    line = SHANGHAI.signal(g)
    assert line.startswith("COD at water station S-3: 31.4 mg/L against a usual 17.3 (about ")
    assert line.endswith("x the normal spread)") and "p=" not in line
    shift = SHANGHAI.signal(replace(g, detector="sustained_shift"))
    assert "a sustained rise of about" in shift


def test_a_count_has_its_window_and_usual_range() -> None:
    g = finding("b", "complaint:odor", "complaint:odor:harbour", 17, 0.5, 1e-12, T0,
                detector="count_surge", window_s=3 * H)
    assert SHANGHAI.signal(g) == "17 odor complaints in 3 h; usually 0-1"
    assert count_line(["market", "recall"], 1, 0.001, H) == "1 recall in 1 h; usually none"
    assert count_line(["complaint", "odor"], 2, 0.5, 0.0) == "2 odor complaints recently; " \
        "usually 0-1"
    assert count_line(["market", "inspection_fail"], 5, 12.0, 6 * H).startswith(
        "5 failed inspections in 6 h; usually ")
    assert usual_range(0.0) == "none" and usual_range(12.0).count("-") == 1


def test_a_price_move_is_in_percent_against_the_usual_price() -> None:
    g = finding("c", "market:price:pork", "market:price:pork:harbour", 35.9, 26.0, 1e-9, T0,
                detector="robust_baseline")
    assert SHANGHAI.signal(g) == "price of pork up 38% against the usual 26 (now 35.9)"


def test_a_neighbours_evidence_is_named_as_such() -> None:
    g = finding("d", "env:water_cod", "env:water_cod:S-9", 30.0, 17.0, 1e-8, T0,
                via="oldtown")
    assert SHANGHAI.signal(g).startswith("in neighbouring region oldtown: COD at water "
                                         "station S-9")
    assert not SHANGHAI.signal(replace(g, via="")).startswith("in neighbouring region")


def test_times_are_to_the_minute_in_the_zone_and_say_which() -> None:
    assert SHANGHAI.when(T0) == "2026-03-02 14:05 CST"
    assert Wording().when(T0) == "2026-03-02 06:05 UTC"
    assert Wording(zone=timezone(timedelta(hours=-3, minutes=-30))).when(T0) == \
        "2026-03-02 02:35 -03:30"
    assert Wording().when(math.nan) == "an unknown time"


def test_numbers_never_use_scientific_notation() -> None:
    assert [number(x) for x in (3.2e-7, 27.0687, 0.937, 1e20, -4.5e-3, 2.0, math.inf)] == \
        ["nearly 0", "27.1", "0.937", "100000000000000000000", "-0.0045", "2", "n/a"]
    assert hours(1800) == "30 min" and hours(6 * H) == "6 h" and hours(3 * 86400) == "3 days"


def _incident() -> tuple[Correlator, list[IncidentVersion]]:
    c = Correlator(window_s=6 * H, wording=SHANGHAI)
    out = c.process(finding("e1", "env:water_cod", "env:water_cod:S-3", 31.4, 17.3, 1e-5, T0))
    out += c.process(finding("e2", "complaint:odor", "complaint:odor:harbour", 17, 0.5, 1e-5,
                             T0 + H, detector="count_surge", window_s=3 * H))
    return c, out


def test_the_headline_says_the_versions_actual_certainty() -> None:
    c, out = _incident()
    v = out[-1]
    assert v.certainty == "Possible"
    assert v.explanation.startswith("Possible pollution incident in harbour: 2 departments "
                                    "(citizen hotline and ecology bureau) report unusual "
                                    "signals since 2026-03-02 14:05 CST.")
    tpl = c.template("pollution")
    likely = explain("harbour", tpl, v.evidence, "update", "Likely", wording=SHANGHAI)
    assert likely.startswith("Likely pollution incident")
    assert explain("harbour", tpl, v.evidence, "update", "Observed").startswith("Confirmed")


def test_every_open_version_carries_the_action_and_a_closed_one_how_it_ended() -> None:
    c, out = _incident()
    out += c.process(finding("e3", "env:water_nh3n", "env:water_nh3n:S-3", 2.0, 0.8, 1e-9,
                             T0 + 2 * H))
    out += c.advance(T0 + 2 * H + 12 * H)
    statuses = [v.status for v in out]
    assert statuses == ["new", "update", "resolved"]
    for v in out[:2]:
        assert v.explanation.split("\n")[-1].startswith(f"{ACTION} Keep windows closed")
    last = out[-1].explanation.split("\n")[-1]
    assert ACTION not in out[-1].explanation
    assert last == ("Resolved at 2026-03-03 04:05 CST: no department has reported anything "
                    "unusual for 12 h.")


def test_a_dismissal_names_who_and_why_and_a_withdrawal_keeps_its_prefix() -> None:
    c, out = _incident()
    wid = out[-1].warning_id
    closed = c.feedback(Decision(wid, "dismiss", "op-7", T0 + 3 * H, "drill"), "harbour")
    assert closed[-1].status == "cancelled"
    assert closed[-1].explanation.endswith(
        "Cancelled at 2026-03-02 17:05 CST: dismissed as a false alarm by op-7 (drill).")
    led = Ledger()
    led.publish(out[-1], early_at=T0 + H)
    (withdrawn,) = led.retract_all()
    assert withdrawn.explanation.startswith(WITHDRAWN)
    assert ACTION not in withdrawn.explanation
    assert without_action("a\nRecommended: b\nc") == "a\nc"


def test_the_explanation_is_short_and_shows_no_statistics() -> None:
    c = Correlator(window_s=6 * H, wording=SHANGHAI)
    out = []
    for i in range(8):
        out += c.process(finding(f"s{i}", "env:water_cod", f"env:water_cod:S-{i}", 30.0 + i,
                                 17.0, 10.0 ** -(6 + i), T0 + i * 60))
    out += c.process(finding("o", "complaint:odor", "complaint:odor:harbour", 9, 0.5, 1e-9,
                             T0 + H, detector="count_surge", window_s=H))
    text = out[-1].explanation
    lines = text.split("\n")
    assert len(lines) <= 1 + 5 + 1 + 1 and "more (tocsin explain --detail)" in text
    assert "p=" not in text and "score" not in text and not _SCI.search(text)


def test_the_audit_rule_is_plain() -> None:
    rule = audit_rule(2, ["env", "complaint", "env"], "harbour", 6 * H, False)
    assert rule.startswith("warned because 2 departments (complaints and sensors) reported "
                           "unusual signals in harbour within 6 h")
    assert "neighbour" in audit_rule(2, ["env", "market"], "harbour", 6 * H, True)


finite = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(observed=finite, expected=finite, p=st.floats(0.0, 1.0), t=finite,
       window=st.floats(0.0, 1e9, allow_nan=False),
       kind=st.sampled_from(["env:water_cod", "env:unknown_metric", "complaint:odor",
                             "market:recall", "market:price:pork", "weird"]),
       detector=st.sampled_from(["sensor_ensemble", "sustained_shift", "count_surge",
                                 "robust_baseline", "rate_surge", "other"]),
       offset_min=st.integers(-14 * 60, 14 * 60))
def test_property_the_wording_never_raises_nor_prints_exponents_or_seconds(
        observed: float, expected: float, p: float, t: float, window: float, kind: str,
        detector: str, offset_min: int) -> None:
    w = Wording({"water_cod": COD}, timezone(timedelta(minutes=offset_min)))
    g = finding("x", kind, f"{kind}:S-1", observed, expected, p, 0.0, detector=detector,
                window_s=window, via="oldtown" if offset_min % 2 else "")
    texts = [w.signal(g), number(observed), hours(window), usual_range(expected)]
    for text in texts:
        assert not _SCI.search(text), text
    when = w.when(t)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d ([-+]\d\d:\d\d|[A-Za-z]+)|an unknown time",
                        when), when
    assert not _SECONDS.search(when)
