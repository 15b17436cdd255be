"""LimitForecast (damped Holt pre-warning against a limit) and the limits config loader."""

from __future__ import annotations

import math
import pickle
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.signals.catalogue import load_catalogue
from detectors.signals.forecast import MAX_PENDING, Forecast, Limit, LimitForecast, load_limits
from streams.tools.simulate import METRICS

T0 = 1_700_000_000.0
STEP = 900.0
DEFAULT_LIMITS = Path(__file__).resolve().parents[2] / "streams" / "data" / "signals.yaml"


def ramp_leads(slope_h: float, jitter: float, noise: float, seed: int,
               direction: str = "above") -> list[tuple[float, float | None]]:
    """(true lead, reported lead) on a flat-then-linear ramp that crosses the limit 7 h
    after it starts; checked once the ramp has run 4 h, while the true lead is 0.5-2.5 h."""
    rng = random.Random(seed)
    sign = 1.0 if direction == "above" else -1.0
    limit = 100.0 * sign
    det = LimitForecast(limit=limit, direction=direction)  # type: ignore[arg-type]
    start = limit - sign * slope_h * 7
    ramp_start = T0 + 6 * 3600
    cross_t = ramp_start + 7 * 3600
    out: list[tuple[float, float | None]] = []
    t = T0
    while t < cross_t:
        v = start + sign * max(0.0, t - ramp_start) / 3600 * slope_h
        det.learn_one(v + rng.gauss(0, noise), t)
        true = cross_t - t
        if t - ramp_start >= 4 * 3600 and 1800 <= true <= 2.5 * 3600:
            f = det.forecast(t)
            out.append((true, f.crossing_in_s))
            if true <= 1.5 * 3600:  # the value 3 h ahead is well past the limit
                assert f.p_exceed > 0.5, (true, f)
            assert f.crossing_at is None or f.crossing_at == pytest.approx(
                t + (f.crossing_in_s or 0.0))
        t += STEP * (1 + rng.uniform(-jitter, jitter))
    return out


def test_regular_ramp_lead_time() -> None:
    leads = ramp_leads(slope_h=8.0, jitter=0.0, noise=0.0, seed=0)
    assert len(leads) >= 6
    for true, got in leads:
        assert got is not None and abs(got - true) <= 0.2 * true, (true, got)


@settings(max_examples=25, deadline=None)
@given(st.floats(2.0, 20.0), st.floats(0.0, 0.5), st.floats(0.0, 0.05),
       st.integers(0, 2**16), st.sampled_from(["above", "below"]))
def test_ramp_lead_time_within_20_percent(slope_h: float, jitter: float, rel_noise: float,
                                          seed: int, direction: str) -> None:
    leads = ramp_leads(slope_h, jitter, rel_noise * slope_h, seed, direction)
    assert leads
    for true, got in leads:
        assert got is not None and abs(got - true) <= 0.2 * true, (true, got)


def test_flat_series_well_below_limit_reports_nothing() -> None:
    rng = random.Random(1)
    det = LimitForecast(limit=100.0)
    for i in range(2000):
        t = T0 + i * STEP
        x = 50.0 * (1 + rng.gauss(0, 0.05))
        assert det.score_one(x, t) < 0.01
        det.learn_one(x, t)
        f = det.forecast(t)
        assert f.crossing_in_s is None and f.crossing_at is None and not f.warning
        assert f.p_exceed < 0.01
        assert 40.0 < f.expected < 60.0


def test_lower_limit_flat_series_above_it_reports_nothing() -> None:
    det = LimitForecast(limit=20.0, direction="below")
    for i in range(500):
        t = T0 + i * STEP
        x = 50.0 + math.sin(i / 7.0)
        assert det.score_one(x, t) < 1e-6
        det.learn_one(x, t)
        assert not det.forecast(t).warning
    for i in range(500, 540):  # then falling 1 per 15 minutes, 30 above the limit
        det.learn_one(50.0 - (i - 499), T0 + i * STEP)
    f = det.forecast(T0 + 539 * STEP)  # at 10 below the limit: past it, no pre-warning
    assert f.crossing_in_s is None and f.p_exceed > 0.99


def test_noisy_flat_series_far_below_limit_gives_small_probabilities() -> None:
    """Holt's analytic horizon variance assumes the trend wanders for real; on a stationary
    series that is far too wide, so the realised horizon errors must take over."""
    rng = random.Random(1)
    det = LimitForecast(limit=100.0)
    ps = []
    for i in range(3000):
        t = T0 + i * STEP
        x = 50.0 * math.exp(rng.gauss(0, 0.12))
        ps.append(det.score_one(x, t))
        det.learn_one(x, t)
    ps = sorted(ps[200:])
    assert ps[len(ps) // 2] < 1e-3
    assert ps[int(0.95 * len(ps))] < 0.01


def test_no_score_before_min_points_and_flat_input_is_finite() -> None:
    det = LimitForecast(limit=10.0, min_points=5)
    for i in range(4):
        assert det.score_one(9.9, T0 + i) == 0.0
        det.learn_one(9.9, T0 + i)
        assert det.forecast(T0 + i) == Forecast(T0 + i, 9.9, None, None, 10.0, 0.0)
    for i in range(4, 200):  # exactly flat just below the limit: no zero variance
        det.learn_one(9.9, T0 + i * STEP)
    f = det.forecast(T0 + 199 * STEP)
    assert f.expected == pytest.approx(9.9)
    assert 0.0 < f.p_exceed < 0.5 and f.crossing_in_s is None
    assert det.score_one(9.9, T0 + 200 * STEP) == pytest.approx(f.p_exceed)
    zero = LimitForecast(limit=0.0, min_points=2)  # limit and level 0: still finite
    for i in range(10):
        zero.learn_one(0.0, T0 + i)
    assert zero.score_one(0.0, T0 + 11) == pytest.approx(0.5)


def test_already_past_limit_is_no_prewarning_but_high_probability() -> None:
    det = LimitForecast(limit=50.0)
    for i in range(30):
        det.learn_one(40.0 + i, T0 + i * STEP)  # crosses 50 at i = 10
    f = det.forecast(T0 + 29 * STEP)
    assert f.crossing_in_s is None
    assert f.p_exceed > 0.99


def test_stale_forecast_counts_from_query_time() -> None:
    det = LimitForecast(limit=100.0)
    for i in range(40):
        det.learn_one(20.0 + 2.0 * i, T0 + i * STEP)  # 98 at i = 39, +8 an hour
    now = det.forecast(T0 + 39 * STEP)
    assert now.crossing_in_s is not None and now.crossing_in_s < 1800
    later = det.forecast(T0 + 39 * STEP + 600)
    assert later.t == T0 + 39 * STEP + 600
    assert later.crossing_at == pytest.approx(now.crossing_at)
    assert later.crossing_in_s == pytest.approx(now.crossing_in_s - 600)


def test_late_duplicate_and_missing_readings() -> None:
    det = LimitForecast(limit=100.0)
    for i in range(20):
        det.learn_one(30.0, T0 + i * STEP)
    before = det.forecast(T0 + 19 * STEP)
    det.learn_one(99.0, T0)  # late: dropped
    det.learn_one(math.nan, T0 + 30 * STEP)  # missing value
    det.learn_one(40.0, math.inf)  # missing time
    assert det.late_events == 1 and det.n == 20
    assert det.forecast(T0 + 19 * STEP) == before
    det.learn_one(36.0, T0 + 19 * STEP)  # same time as the last one: blended
    assert det.n == 21 and 30.0 < det.forecast(T0 + 19 * STEP).expected < 36.0


def test_state_is_bounded() -> None:
    det = LimitForecast(limit=100.0, step_s=60.0)
    rng = random.Random(0)
    sizes = []
    for i in range(6000):  # one reading a minute for 100 hours
        det.learn_one(50.0 + rng.gauss(0, 1), T0 + 60.0 * i)
        if i % 1000 == 999:
            sizes.append(len(pickle.dumps(det)))
    assert len(det._st.pending) <= MAX_PENDING + 1
    assert max(sizes) <= min(sizes) + 64


def test_p_exceed_is_calibrated_on_a_random_walk() -> None:
    rng = random.Random(2)
    n_hi = hit_hi = n_lo = hit_lo = n_mid = hit_mid = 0
    for _ in range(8):
        det = LimitForecast(limit=100.0)
        v = 85.0
        xs, ps = [], []
        for i in range(500):
            v += rng.gauss(0, 1.5)
            x = v + rng.gauss(0, 2.0)
            ps.append(det.score_one(x, T0 + i * STEP))
            det.learn_one(x, T0 + i * STEP)
            xs.append(x)
        for i in range(50, len(xs) - 12):
            if ps[i] > 0.9:
                n_hi, hit_hi = n_hi + 1, hit_hi + (xs[i + 12] > 100)
            elif ps[i] < 0.1:
                n_lo, hit_lo = n_lo + 1, hit_lo + (xs[i + 12] > 100)
            elif ps[i] < 0.3:
                n_mid, hit_mid = n_mid + 1, hit_mid + (xs[i + 12] > 100)
    assert n_hi > 50 and n_lo > 50 and n_mid > 50
    assert 0.06 < hit_mid / n_mid < 0.4
    assert hit_hi / n_hi > 0.75
    assert hit_lo / n_lo < 0.1


def test_params_are_attributes_and_validated() -> None:
    det = LimitForecast(75.0, horizon_s=3600, alpha=0.5, beta=0.2, damping=0.9, min_points=4,
                        seed=9)
    assert (det.limit, det.horizon_s, det.alpha, det.beta, det.damping, det.min_points,
            det.seed) == (75.0, 3600, 0.5, 0.2, 0.9, 4, 9)
    for kwargs in ({"limit": math.nan}, {"limit": 1.0, "horizon_s": 0.0},
                   {"limit": 1.0, "alpha": 0.0}, {"limit": 1.0, "damping": 1.5},
                   {"limit": 1.0, "min_points": 1}, {"limit": 1.0, "direction": "up"}):
        with pytest.raises(ValueError):
            LimitForecast(**kwargs)  # type: ignore[arg-type]


values = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.floats(-1e3, 1e3))
times = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                  st.floats(0.0, 1e7).map(lambda d: T0 + d),
                  st.floats(0.0, 1e-3).map(lambda d: T0 + d))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(values, times), max_size=40), st.floats(-1e4, 1e4),
       st.sampled_from(["above", "below"]), st.sampled_from([0.9, 0.98, 1.0]))
def test_outputs_in_unit_interval_and_score_one_is_pure(
        readings: list[tuple[float, float]], limit: float, direction: str,
        damping: float) -> None:
    det = LimitForecast(limit=limit, direction=direction, damping=damping,  # type: ignore[arg-type]
                        min_points=3)
    for x, t in sorted(readings, key=lambda r: r[1] if math.isfinite(r[1]) else 0.0):
        before = pickle.dumps(det)
        p = det.score_one(x, t)
        assert pickle.dumps(det) == before
        assert 0.0 <= p <= 1.0 and math.isfinite(p)
        clone = pickle.loads(before)
        assert clone.score_one(x, t) == p
        det.learn_one(x, t)
        f = det.forecast(t)
        assert 0.0 <= f.p_exceed <= 1.0
        if det.n >= det.min_points:
            assert math.isfinite(f.expected)
        if f.crossing_in_s is not None:
            assert 0.0 <= f.crossing_in_s <= det.horizon_s



def test_learning_after_scoring_is_learning_alone() -> None:
    """score_one keeps the update it computed for the learn_one of the same reading: the
    result is the same as learning without scoring, whatever is scored in between."""
    rng = random.Random(8)
    scored, plain = LimitForecast(limit=100.0), LimitForecast(limit=100.0)
    t = T0
    for i in range(3_000):
        t += rng.choice([0.0, 900.0, rng.expovariate(1 / 900.0)])
        x = 60.0 + 30.0 * math.sin(i / 200.0) + rng.gauss(0, 2.0)
        t_read = t - 5_000.0 if i % 97 == 0 else t  # now and then a late reading
        scored.score_one(x, t_read)
        if i % 5 == 0:  # another reading scored in between: the kept update is not used
            scored.score_one(x + 1.0, t_read)
        if i % 7 == 0:
            scored.score_one(math.nan, t_read)
        scored.learn_one(x, t_read)
        plain.learn_one(x, t_read)
        assert pickle.dumps(scored) == pickle.dumps(plain)
    assert scored.forecast(t) == plain.forecast(t)

# -- limits config -------------------------------------------------------------------------


def test_default_limits_cover_the_simulated_metrics_in_canonical_units() -> None:
    limits, units = load_limits(DEFAULT_LIMITS), load_catalogue(DEFAULT_LIMITS)
    assert set(METRICS) <= set(limits)
    for metric, lim in limits.items():
        assert isinstance(lim, Limit) and lim.metric == metric
        assert lim.unit == units.metrics[metric].unit, metric
        assert lim.limit > 0 and lim.direction in ("above", "below") and lim.source
    assert limits["pm25"].limit == 75.0 and "GB 3095-2012" in limits["pm25"].source
    # normal simulated levels sit below their limits
    for metric, (_, base, *_rest) in METRICS.items():
        assert base < limits[metric].limit, metric
    det = LimitForecast.from_limit(limits["water_level_m"], horizon_s=3600)
    assert (det.limit, det.direction, det.horizon_s) == (2.6, "above", 3600)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "signals.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_load_limits_direction_follows_the_bad_direction(tmp_path: Path) -> None:
    p = write(tmp_path, "metrics:\n"
              "  do: {unit: mg/L, accepted: {mg/L: 1}, bad: down,\n"
              "       limits: [{value: 5, source: x}]}\n"
              "  pm25: {unit: ug/m3, accepted: {ug/m3: 1}, limits: [{value: 75.5, source: GB}]}\n"
              "  ph: {unit: pH, accepted: {pH: 1}, bad: both, limits: [\n"
              "       {value: 6, direction: below, source: s}, {value: 9, direction: above,"
              " source: s}]}\n")
    limits = load_limits(p)
    assert limits["do"] == Limit("do", 5.0, "mg/L", "below", "x")
    assert limits["pm25"].direction == "above" and limits["pm25"].limit == 75.5
    assert "ph" not in limits  # two-sided: Catalogue.limits_for
    assert [lim.limit for lim in load_catalogue(p).limits_for("ph")] == [6.0, 9.0]


HEAD = "metrics:\n  pm25:\n    unit: ug/m3\n    accepted: {ug/m3: 1}\n"


@pytest.mark.parametrize(("text", "message"), [
    (HEAD + "    limits: [{source: s}]\n", "metrics.pm25.limits.0.value: Field required"),
    (HEAD + "    limits: [{value: high, source: s}]\n", "limits.0.value"),
    (HEAD + "    limits: [{value: .nan, source: s}]\n", "finite number"),
    (HEAD + "    limits: [{value: 75, direction: up, source: s}]\n", "limits.0.direction"),
    (HEAD + "    limits: [{value: 75}]\n", "limits.0.source: Field required"),
    (HEAD + "    limits: [{limt: 75, source: s}]\n", "limits.0.limt: Extra inputs"),
    (HEAD + "    bad: both\n    limits: [{value: 7, source: s}]\n", "needs each limit's"),
    ("pm25: 75\n", "pm25: Extra inputs"),
    ("metrics: {}\n", "metrics: Dictionary should have at least 1 item"),
    ("- pm25\n", "expected a mapping"),
    ("", "expected a mapping"),
    ("metrics: {pm25: {limit: [\n", "not valid YAML"),
])
def test_load_limits_errors(tmp_path: Path, text: str, message: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        load_limits(p)
    assert str(p) in str(info.value)
