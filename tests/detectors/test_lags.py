"""Department lags: a source's evidence may come later than the correlation window."""

from __future__ import annotations

from detectors.base import Finding
from detectors.fusion.correlation import Correlator

H = 3600.0


def _f(i: int, src: str, dep: str, kind: str, t: float, p: float) -> Finding:
    return Finding(str(i), src, dep, "r1", kind, f"{kind}:x", "d", 5.0, 1.0, p, t)


def _night_incident(c: Correlator) -> list[str]:
    """Water COD and ammonia up at night; odour complaints 9 h later, next morning."""
    out = c.process(_f(1, "env", "eco", "env:water_cod", 1 * H, 1e-7))
    out += c.process(_f(2, "env", "eco", "env:water_nh3", 1.5 * H, 1e-7))
    out += c.process(_f(3, "complaint", "hotline", "complaint:odor", 10.5 * H, 1e-6))
    return [v.status for v in out]


def test_a_complaint_lag_joins_next_morning_complaints() -> None:
    assert _night_incident(Correlator(window_s=6 * H)) == []
    assert _night_incident(Correlator(window_s=6 * H, lags={"complaint": 10 * H})) == ["new"]


def test_a_lag_applies_to_the_late_source_only() -> None:
    # env evidence 9 h after complaints is not a late department: the window holds
    c = Correlator(window_s=6 * H, lags={"complaint": 10 * H})
    out = c.process(_f(1, "complaint", "hotline", "complaint:odor", 1 * H, 1e-7))
    out += c.process(_f(2, "complaint", "hotline", "complaint:smell", 1.2 * H, 1e-7))
    out += c.process(_f(3, "env", "eco", "env:water_cod", 10 * H, 1e-7))
    assert out == []


def test_a_lag_never_shortens_the_window() -> None:
    assert Correlator(window_s=6 * H, lags={"market": 1 * H}).lags == {"market": 6 * H}
