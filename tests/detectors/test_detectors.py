from __future__ import annotations

import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from detectors.base import (
    P_FLOOR,
    Score,
    fisher_combine,
    negbin_sf,
    normal_sf,
    poisson_sf,
    quasi_poisson_sf,
)
from detectors.checks.keyed_streams import poisson
from detectors.signals.counts import CountSurge
from detectors.signals.robust import RobustBaseline, kth_deviation

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
    s = det.explain_one(5.0, 0.0)
    assert s.p_value == pytest.approx(0.5) and math.isfinite(s.score)
    assert det.explain_one(6.0, 0.0).p_value < 1e-6
    assert det.score_one(6.0, 0.0) == 1.0 - det.explain_one(6.0, 0.0).p_value


def test_robust_detects_level_shift_and_ignores_noise() -> None:
    rng = random.Random(1)
    det = RobustBaseline()
    for _ in range(200):
        det.learn_one(20 + rng.gauss(0, 1))
    quiet = [det.explain_one(20 + rng.gauss(0, 1), 0.0).p_value for _ in range(200)]
    assert sum(p < 1e-5 for p in quiet) == 0
    assert det.explain_one(35.0, 0.0).p_value < 1e-10


def test_robust_pickle_round_trip() -> None:
    det = RobustBaseline()
    for i in range(50):
        det.learn_one(float(i % 7))
    clone = pickle.loads(pickle.dumps(det))
    assert clone.explain_one(9.0, 0.0) == det.explain_one(9.0, 0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=150))
def test_property_robust_never_nan(xs: list[float]) -> None:
    det = RobustBaseline(window=30, min_history=3)
    for x in xs:
        s = det.explain_one(x, 0.0)
        assert 0.0 <= s.p_value <= 1.0 and 0.0 <= det.score_one(x, 0.0) <= 1.0
        det.learn_one(x)
    assert det.n <= 30


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(-3, 3).map(float), st.floats(-1e6, 1e6)), min_size=1,
                max_size=60), st.data())
def test_property_kth_deviation_equals_sorted_deviations(xs: list[float],
                                                         data: st.DataObject) -> None:
    s = sorted(xs)
    center = data.draw(st.one_of(st.sampled_from(s), st.floats(-1e6, 1e6)))
    k = data.draw(st.integers(1, len(s)))
    devs = sorted(abs(v - center) for v in s)
    assert kth_deviation(s, center, k) == (devs[k - 1], devs[k] if k < len(s) else math.inf)


def test_robust_median_mad_as_by_sorting() -> None:
    rng = random.Random(4)
    for window in (3, 4, 50, 96):
        det = RobustBaseline(window=window, min_history=3)
        kept: list[float] = []
        for i in range(300):
            x = float(rng.randint(0, 4)) if i % 3 else rng.gauss(10.0, 2.0)
            det.learn_one(x)
            kept = [*kept, x][-window:]
            if len(kept) < 3:
                continue
            s = sorted(kept)
            n = len(s)
            med = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
            d = sorted(abs(v - med) for v in s)
            mad = d[n // 2] if n % 2 else 0.5 * (d[n // 2 - 1] + d[n // 2])
            assert det.expected() == (med, max(1.4826 * mad, 0.02 * abs(med), 1e-6))


def test_robust_pickle_is_compact_and_keeps_arrival_order() -> None:
    det = RobustBaseline()  # window 96
    for i in range(500):
        det.learn_one(100.0 + (i * 37 % 101) / 7.0)
    assert len(pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL)) < 1024
    clone = pickle.loads(pickle.dumps(det))
    for i in range(150):  # the clone evicts the same (oldest) values as the original
        x = 50.0 + i
        assert clone.explain_one(x, 0.0) == det.explain_one(x, 0.0)
        clone.learn_one(x)
        det.learn_one(x)
    assert clone.expected() == det.expected() and clone.n == det.n == 96


def _feed_counts(det: CountSurge, hours: int, rate: float, rng: random.Random,
                 key: str = "k", start_h: int = 0) -> None:
    for h in range(start_h, start_h + hours):
        t = T0 + h * HOUR
        det.advance(t)
        for _ in range(poisson(rng, rate)):
            det.learn_one((key, 1), t + rng.uniform(0, HOUR))




def test_count_surge_quiet_on_poisson_noise_and_fires_on_surge() -> None:
    rng = random.Random(3)
    det = CountSurge()
    _feed_counts(det, 96, 0.5, rng)
    false = 0
    for h in range(96, 192):
        t = T0 + h * HOUR
        det.advance(t)
        for _ in range(poisson(rng, 0.5)):
            false += det.explain_one(("k", 1), t + 60).p_value < 1e-3
            det.learn_one(("k", 1), t + 60)
    assert false <= 1
    t = T0 + 192 * HOUR
    det.advance(t)
    for i in range(8):
        det.learn_one(("k", 1), t + 60 * i)
    s = det.explain_one(("k", 0), t + 600)
    assert s.p_value < 1e-4 and s.observed >= 8 and s.expected < 2


def test_count_surge_late_events_counted_not_scored() -> None:
    det = CountSurge(lateness_s=1800)
    det.advance(T0)
    det.advance(T0 + 10 * HOUR)
    assert not det.accepts(("k", 1), T0 + 60)
    assert det.explain_one(("k", 1), T0 + 60) == Score(0.0, 0.0, 1.0)
    det.learn_one(("k", 1), T0 + 60)
    assert det.late_events == 1
    assert det.accepts(("k", 1), T0 + 10 * HOUR - 600)
    det.learn_one(("k", 1), T0 + 10 * HOUR - 600)
    assert det.late_events == 1 and det.explain_one(("k", 0), T0 + 10 * HOUR - 60).observed == 1


def test_count_surge_rare_key_uses_pooled_prior() -> None:
    rng = random.Random(5)
    det = CountSurge()
    for h in range(72):
        t = T0 + h * HOUR
        det.advance(t)
        for k in ("a", "b", "c"):
            for _ in range(poisson(rng, 0.3)):
                det.learn_one((k, 1), t + 30)
    t = T0 + 72 * HOUR
    det.advance(t)
    first = det.explain_one(("new", 1), t + 10)  # a key not seen yet, its first event
    det.learn_one(("new", 1), t + 10)
    assert first == det.explain_one(("new", 0), t + 20)
    assert first.p_value > 0.01  # one event of a new key is no surge
    for i in range(5):
        det.learn_one(("new", 1), t + 30 + i)
    assert det.explain_one(("new", 0), t + 60).p_value < 1e-3


def test_count_surge_deterministic_and_picklable() -> None:
    def run() -> list[float]:
        rng = random.Random(9)
        det = CountSurge()
        _feed_counts(det, 60, 1.0, rng)
        return [det.explain_one(("k", 0), T0 + 60 * HOUR).p_value, pickle.loads(
            pickle.dumps(det)).explain_one(("k", 0), T0 + 60 * HOUR).p_value]

    a, b = run(), run()
    assert a == b and a[0] == a[1]


# -- CountSurge's cached scoring against the formula it replaced ---------------------------


def _reference_count_score(det: CountSurge, key: str, t: float) -> Score:
    """CountSurge.score_one as it was written before the per-bucket caches: every window's
    counts and expectation summed afresh from the state, the shape from the slot sums,
    and the quasi-Poisson tail from the scipy.special ufunc."""
    st_ = det._keys.get(key)
    b = math.floor(t / det.bucket_s)
    if st_ is None:
        return Score(0.0, 0.0, 1.0)
    counts = dict(st_.recent)
    counts.update(st_.open)
    if not det.warmed_up():
        return Score(float(counts.get(b, 0)), math.nan, 1.0)

    def shape(bucket: int) -> float:
        # hour-of-week: the hour's shape over all days (SHAPE_PRIOR_EVENTS), then the day
        # type's hour shrunk towards it (DAY_TYPE_PRIOR_EVENTS)
        period = det.seasonal_period
        slot = det.calendar.day_type(bucket * det.bucket_s) * period + bucket % period
        ss, sn = det._slot_sum, det._slot_n
        total_n = sum(sn)
        if total_n <= 0:
            return 1.0
        mean_all = sum(ss) / total_n
        if mean_all <= 0:
            return 1.0
        h = slot % period
        k = 5.0  # SHAPE_PRIOR_EVENTS
        n_h = sn[h] + sn[h + period]
        hour = (ss[h] + ss[h + period] + k) / (n_h * mean_all + k) if n_h > 0 else 1.0
        return (ss[slot] + 30.0 * hour) / (sn[slot] * mean_all + 30.0)

    def expected_one(bucket: int) -> float:
        pooled = det._pool_sum / det._pool_n if det._pool_n > 0 else 0.0
        level = (st_.level_sum + det.prior_buckets * pooled) / (
            st_.level_n + det.prior_buckets)
        return max(level * shape(bucket), det.min_expected)

    phi = (st_.disp_sum + 1.2 * 3.0) / (st_.disp_n + 3.0)  # PHI_PRIOR, PHI_PRIOR_WEIGHT
    phi = min(max(phi, 1.0), det.max_phi)
    wide = [w for w in det.scales if w > 1]

    def alpha_of(w: int) -> float:  # a wide scale's extra dispersion (0: quasi-Poisson)
        if w == 1 or not st_.wdisp:
            return 0.0
        j = wide.index(w)
        extra = st_.wdisp[2 * j]
        # SCALE_ALPHA_PRIOR_WINDOWS, MAX_ALPHA
        return min(extra / (st_.wdisp[2 * j + 1] + 24.0 * w * w), 2.0) if extra > 0 else 0.0

    def tail(count: int, mu: float, alpha: float) -> float:
        if count <= 0:
            return 1.0
        if mu <= 0:
            return P_FLOOR
        m = mu / max(phi, 1.0)
        if alpha > 0:  # counts / phi: a negative binomial, mean m, size 1 / alpha
            r = 1.0 / alpha
            return max(float(special.betainc(count / max(phi, 1.0), r, m / (m + r))),
                       P_FLOOR)
        return max(float(special.gammainc(count / max(phi, 1.0), m)), P_FLOOR)

    best_p, best_obs, best_exp = 1.0, float(counts.get(b, 0)), expected_one(b)
    for w in det.scales:
        obs = sum(counts.get(b - i, 0) for i in range(w))
        exp = sum(expected_one(b - i) for i in range(w))
        p = tail(obs, exp, alpha_of(w))
        if p < best_p:
            best_p, best_obs, best_exp = p, float(obs), exp
    return Score(best_obs, best_exp, min(1.0, best_p * len(det.scales)))


def _same_score(a: Score, b: Score) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y))
               for x, y in zip((a.observed, a.expected, a.p_value),
                               (b.observed, b.expected, b.p_value), strict=True))


count_events = st.lists(
    st.tuples(st.sampled_from([-40.0, 1.0, 5.0, 20.0, 45.0, 90.0, 600.0, 3000.0]),
              st.integers(0, 2), st.integers(0, 2)),
    min_size=1, max_size=250)


@settings(max_examples=80, deadline=None)
@given(events=count_events, warmup=st.integers(1, 6),
       scales=st.sampled_from([(1, 3, 6, 12), (1, 2), (2, 5, 24, 30)]))
def test_count_surge_scores_equal_the_uncached_formula(
    events: list[tuple[float, int, int]], warmup: int, scales: tuple[int, ...]
) -> None:
    """Explanations (of the counts as they stand and with the event counted, with late
    events, gaps, fired windows and a pickle round trip) are exactly the values the
    uncached formula gives. Mode per event: 0 explain then learn (as the checks drive), 1
    learn only, 2 explain, learn and look again (at t and an hour before); the watermark
    is advanced before each event, as the pipeline does, except in mode 0 (then
    learn_one moves it)."""
    det = CountSurge(warmup_buckets=warmup, scales=scales, seasonal_period=24)
    t = T0
    for i, (dt_min, k, mode) in enumerate(events):
        t += dt_min * 60.0
        key = f"k{k}"
        if mode:
            det.advance(t)
        if mode == 1:
            det.learn_one((key, 1), t)
            continue
        s = det.explain_one((key, 1), t)
        if det.accepts((key, 1), t):
            asked = pickle.loads(pickle.dumps(det))  # the state explain_one judges against
            asked.advance(t)
            assert _same_score(det.explain_one((key, 0), t),
                               _reference_count_score(asked, key, t))
            asked.learn_one((key, 1), t)  # and with the event counted
            assert _same_score(s, _reference_count_score(asked, key, t))
        else:
            assert s == Score(0.0, 0.0, 1.0)
        det.learn_one((key, 1), t)
        if mode == 2:  # look again (at a bucket still open: a closed one explains p = 1)
            for when in (t, t - HOUR):
                if det.accepts((key, 0), when):
                    assert _same_score(det.explain_one((key, 0), when),
                                       _reference_count_score(det, key, when))
        if i == len(events) // 2:
            det = pickle.loads(pickle.dumps(det))


def test_count_shape_table_is_the_per_slot_formula() -> None:
    rng = random.Random(4)
    det = CountSurge(warmup_buckets=2)
    _feed_counts(det, 80, 3.0, rng)
    period = det.seasonal_period
    ss, sn = det._slot_sum, det._slot_n
    assert len(ss) == 2 * period  # hours of working days, then of weekends and holidays
    mean_all = sum(ss) / sum(sn)
    for slot in range(2 * period):
        h = slot % period
        hour = (ss[h] + ss[h + period] + 5.0) / ((sn[h] + sn[h + period]) * mean_all + 5.0)
        want = (ss[slot] + 30.0 * hour) / (sn[slot] * mean_all + 30.0)
        assert det._shape_table()[slot] == want
    # 2026-03-02 is a Monday: hour h of it is slot h, of the Saturday after it 24 + h
    monday = math.floor(T0 / det.bucket_s)
    for h in range(period):
        assert det._shape(monday + h) == det._shape_table()[h]
        assert det._shape(monday + 5 * period + h) == det._shape_table()[period + h]


@settings(max_examples=300, deadline=None)
@given(c=st.integers(0, 10_000), mu=st.floats(0.0, 1e4), phi=st.floats(0.5, 50.0))
def test_quasi_poisson_tail_is_the_ufunc_value(c: int, mu: float, phi: float) -> None:
    """quasi_poisson_sf calls scipy's scalar (cython_special) gammainc: the same C routine
    as the ufunc, so the very same values."""
    want = 1.0 if c <= 0 else P_FLOOR if mu <= 0 else max(
        float(special.gammainc(c / max(phi, 1.0), mu / max(phi, 1.0))), P_FLOOR)
    assert quasi_poisson_sf(c, mu, phi) == want


def test_count_surge_cached_windows_follow_late_events() -> None:
    """An event for an older bucket still open (within lateness) after t's bucket was
    scored: the next score counts it, as the uncached formula does."""
    rng = random.Random(2)
    det = CountSurge(warmup_buckets=3, lateness_s=1800.0)
    _feed_counts(det, 30, 2.0, rng)
    t = T0 + 30 * HOUR + 600.0  # 10 minutes into bucket 30: bucket 29 is still open
    det.advance(t)
    for _ in range(3):
        det.learn_one(("k", 1), t)
    assert _same_score(det.explain_one(("k", 0), t), _reference_count_score(det, "k", t))
    for _ in range(4):  # late, for bucket 29
        assert det.accepts(("k", 1), t - 1200.0)
        det.learn_one(("k", 1), t - 1200.0)
        s = det.explain_one(("k", 0), t)
        assert _same_score(s, _reference_count_score(det, "k", t))
    assert det._keys["k"].open[det.bucket_of(t - 1200.0)] >= 4  # bucket 29 took them
