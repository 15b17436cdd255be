from __future__ import annotations

import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors.base import fisher_combine, negbin_sf, normal_sf, poisson_sf, quasi_poisson_sf
from detectors.counts import CountSurge
from detectors.robust import RobustBaseline

HOUR = 3600.0
T0 = 1_772_409_600.0  # a midnight UTC


@pytest.mark.parametrize(("c", "mu"), [(1, 0.5), (3, 0.2), (10, 4.0), (25, 12.5)])
def test_poisson_tail_matches_scipy(c: int, mu: float) -> None:
    assert poisson_sf(c, mu) == pytest.approx(stats.poisson.sf(c - 1, mu), rel=1e-9)
    assert quasi_poisson_sf(c, mu, 1.0) == pytest.approx(stats.poisson.sf(c - 1, mu), rel=1e-9)


@pytest.mark.parametrize(("c", "mu", "phi"), [(3, 1.0, 2.0), (8, 2.5, 3.0), (1, 0.1, 1.5)])
def test_negbin_tail_matches_scipy(c: int, mu: float, phi: float) -> None:
    r = mu / (phi - 1)
    assert negbin_sf(c, mu, phi) == pytest.approx(stats.nbinom.sf(c - 1, r, 1 / phi), rel=1e-6)


def test_overdispersion_makes_tails_heavier() -> None:
    assert quasi_poisson_sf(6, 1.0, 3.0) > quasi_poisson_sf(6, 1.0, 1.0)


def test_fisher_matches_scipy() -> None:
    ps = [0.01, 0.2, 0.03]
    assert fisher_combine(ps) == pytest.approx(stats.combine_pvalues(ps).pvalue, rel=1e-9)
    assert fisher_combine([]) == 1.0
    assert normal_sf(0.0) == pytest.approx(0.5)


def test_robust_flat_series_is_finite() -> None:
    det = RobustBaseline(window=20, min_history=5)
    for _ in range(30):
        det.learn_one(5.0)
    s = det.score_one(5.0)
    assert s.p_value == pytest.approx(0.5) and math.isfinite(s.score)
    assert det.score_one(6.0).p_value < 1e-6


def test_robust_detects_level_shift_and_ignores_noise() -> None:
    rng = random.Random(1)
    det = RobustBaseline()
    for _ in range(200):
        det.learn_one(20 + rng.gauss(0, 1))
    quiet = [det.score_one(20 + rng.gauss(0, 1)).p_value for _ in range(200)]
    assert sum(p < 1e-5 for p in quiet) == 0
    assert det.score_one(35.0).p_value < 1e-10


def test_robust_pickle_round_trip() -> None:
    det = RobustBaseline()
    for i in range(50):
        det.learn_one(float(i % 7))
    clone = pickle.loads(pickle.dumps(det))
    assert clone.score_one(9.0) == det.score_one(9.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=150))
def test_property_robust_never_nan(xs: list[float]) -> None:
    det = RobustBaseline(window=30, min_history=3)
    for x in xs:
        s = det.score_one(x)
        assert 0.0 <= s.p_value <= 1.0
        det.learn_one(x)
    assert det.n <= 30


def _feed_counts(det: CountSurge, hours: int, rate: float, rng: random.Random,
                 key: str = "k", start_h: int = 0) -> None:
    for h in range(start_h, start_h + hours):
        t = T0 + h * HOUR
        det.advance(t)
        for _ in range(_poisson(rng, rate)):
            det.learn_one(key, t + rng.uniform(0, HOUR))


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def test_count_surge_quiet_on_poisson_noise_and_fires_on_surge() -> None:
    rng = random.Random(3)
    det = CountSurge()
    _feed_counts(det, 96, 0.5, rng)
    false = 0
    for h in range(96, 192):
        t = T0 + h * HOUR
        det.advance(t)
        for _ in range(_poisson(rng, 0.5)):
            det.learn_one("k", t + 60)
            false += det.score_one("k", t + 60).p_value < 1e-3
    assert false <= 1
    t = T0 + 192 * HOUR
    det.advance(t)
    for i in range(8):
        det.learn_one("k", t + 60 * i)
    s = det.score_one("k", t + 600)
    assert s.p_value < 1e-4 and s.observed >= 8 and s.expected < 2


def test_count_surge_late_events_counted_not_scored() -> None:
    det = CountSurge(lateness_s=1800)
    det.advance(T0)
    det.advance(T0 + 10 * HOUR)
    assert det.learn_one("k", T0 + 60) is False
    assert det.late_events == 1
    assert det.learn_one("k", T0 + 10 * HOUR - 600) is True


def test_count_surge_rare_key_uses_pooled_prior() -> None:
    rng = random.Random(5)
    det = CountSurge()
    for h in range(72):
        t = T0 + h * HOUR
        det.advance(t)
        for k in ("a", "b", "c"):
            for _ in range(_poisson(rng, 0.3)):
                det.learn_one(k, t + 30)
    t = T0 + 72 * HOUR
    det.advance(t)
    det.learn_one("new", t + 10)
    assert det.score_one("new", t + 20).p_value > 0.01  # one event of a new key is no surge
    for i in range(5):
        det.learn_one("new", t + 30 + i)
    assert det.score_one("new", t + 60).p_value < 1e-3


def test_count_surge_deterministic_and_picklable() -> None:
    def run() -> list[float]:
        rng = random.Random(9)
        det = CountSurge()
        _feed_counts(det, 60, 1.0, rng)
        return [det.score_one("k", T0 + 60 * HOUR).p_value, pickle.loads(
            pickle.dumps(det)).score_one("k", T0 + 60 * HOUR).p_value]

    a, b = run(), run()
    assert a == b and a[0] == a[1]
