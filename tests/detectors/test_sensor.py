"""Behaviour of the sensor ensemble beyond the generic check suite."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.signals.calibration import TailCalibrator
from detectors.signals.sensor import (
    EwmaVariance,
    PageHinkley,
    RobustLevel,
    SeasonalBaseline,
    SensorEnsemble,
)


def _feed(det: SensorEnsemble, xs: list[float], step: float = 300.0) -> list[float]:
    out = []
    for i, x in enumerate(xs):
        out.append(det.score_one(x, i * step))
        det.learn_one(x, i * step)
    return out


def _noise(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [100.0 + rng.gauss(0.0, 1.0) for _ in range(n)]


def test_one_excursion_one_alert_then_alerts_again_after_refractory() -> None:
    xs = _noise(3000, 1)
    for i in range(2000, 2004):  # one four-reading excursion
        xs[i] = 130.0
    xs[2010] = 125.0  # a smaller aftershock, inside the refractory period
    xs[2900] = 130.0  # the same size, many half-lives later
    scores = _feed(SensorEnsemble(refractory=20.0), xs)
    flagged = [i for i, s in enumerate(scores) if s > 0.999]
    assert flagged[0] == 2000
    assert not any(2001 <= i <= 2100 for i in flagged), flagged
    assert 2900 in flagged


def test_without_refractory_every_reading_of_the_excursion_is_reported() -> None:
    xs = _noise(2100, 2)
    for i in range(2000, 2004):
        xs[i] = 130.0
    scores = _feed(SensorEnsemble(refractory=0.0), xs)
    assert sum(1 for s in scores[2000:2004] if s > 0.999) >= 2


def test_false_alarm_rate_on_gaussian_noise_is_near_nominal() -> None:
    det = SensorEnsemble()
    ps = []
    for i, x in enumerate(_noise(6000, 3)):
        if i >= 1000:
            ps.append(det.explain_one(x, i * 300.0).p_value)
        det.learn_one(x, i * 300.0)
    rate = sum(1 for p in ps if p < 0.01) / len(ps)
    assert rate < 0.03, rate  # nominal 0.01 (Bonferroni over two statistics: <= 0.01)


def test_learns_a_daily_cycle() -> None:
    rng = random.Random(4)
    det = SensorEnsemble()
    day = 288
    for i in range(day * 14):
        x = 50.0 + 20.0 * math.sin(2 * math.pi * i / day) + rng.gauss(0.0, 1.0)
        det.learn_one(x, i * 300.0)
    i = day * 14 + day // 4  # the daily peak: normal
    peak = det.explain_one(70.0, i * 300.0)
    assert peak.p_value > 0.01
    assert abs(peak.expected - 70.0) < 5.0
    assert det.explain_one(30.0, i * 300.0).p_value < 1e-4  # a trough value at peak time


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([RobustLevel, EwmaVariance, PageHinkley, SeasonalBaseline,
                        SensorEnsemble]),
       st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                          st.sampled_from([0.0, 1.0, 1.0, 1.0])), min_size=1, max_size=300))
def test_property_scores_are_probabilities(kind: type, xs: list[float]) -> None:
    det = kind(learning=5)
    for i, x in enumerate(xs):
        s = det.score_one(x, i * 60.0)
        e = det.explain_one(x, i * 60.0)
        assert 0.0 <= s <= 1.0
        assert 0.0 <= e.p_value <= 1.0
        det.learn_one(x, i * 60.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e6), min_size=1, max_size=300),
       st.floats(min_value=0.0, max_value=1e7))
def test_property_tail_p_is_monotone_and_bounded(xs: list[float], s: float) -> None:
    cal = TailCalibrator()
    for x in xs:
        cal.learn_one(x)
    p1, p2 = cal.p_value(s), cal.p_value(s * 2.0 + 1.0)
    assert 0.0 < p2 <= p1 <= 1.0
