"""The sustained-shift view, the fault screen and the city-wide (common-mode) view."""

from __future__ import annotations

import copy
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Finding
from detectors.fusion.correlation import CityView, Correlator
from detectors.policy import ALPHA_SHIFT
from detectors.signals.sensor import SensorEnsemble
from detectors.signals.shift import FaultScreen, SustainedShift

H = 3600.0
DAY = 86400.0


def quiet(rng: random.Random, t: float, level: float = 20.0, ar: list[float] | None = None
          ) -> float:
    """A daily cycle plus AR(1) drift plus noise (sd of the whole about 1)."""
    drift = 0.0
    if ar is not None:
        ar[0] = 0.95 * ar[0] + rng.gauss(0, 0.2)
        drift = ar[0]
    return level + 3 * math.sin(t / DAY * 2 * math.pi) + drift + rng.gauss(0, 0.6)


def warmed(seed: int, cadence: float, days: float = 10.0
           ) -> tuple[SustainedShift, SensorEnsemble, random.Random, float, list[float]]:
    rng = random.Random(seed)
    shift, fast = SustainedShift(seed=seed), SensorEnsemble(learning=96, seed=seed)
    ar = [0.0]
    t = 0.0
    while t < days * DAY:
        x = quiet(rng, t, ar=ar)
        shift.learn_one(x, t)
        fast.learn_one(x, t)
        t += cadence
    return shift, fast, rng, t, ar


def test_a_gradual_ramp_is_caught_by_the_slow_view() -> None:
    """A 3 h ramp to +8 (about 8 sd of a reading): the slow view reports it within the ramp;
    the fast view, which predicts from the last readings, follows it."""
    shift, fast, rng, t0, ar = warmed(1, 600.0)
    slow_hit = fast_hit = None
    t = t0
    while t < t0 + 8 * H:
        ramp = min(1.0, (t - t0) / (3 * H)) * 8.0
        x = quiet(rng, t, ar=ar) + ramp
        if slow_hit is None and shift.explain_one(x, t).p_value < 1e-5:
            slow_hit = t - t0
        if fast_hit is None and fast.explain_one(x, t).p_value < 1e-5:
            fast_hit = t - t0
        shift.learn_one(x, t)
        fast.learn_one(x, t)
        t += 600.0
    assert slow_hit is not None and slow_hit <= 3 * H
    assert fast_hit is None or fast_hit > slow_hit


def test_the_guard_band_keeps_the_expectation_then_accepts_a_new_normal() -> None:
    shift, _, rng, t0, ar = warmed(2, H)
    before = shift.expected(t0 + 12 * H)
    t = t0
    hits = []
    while t < t0 + 60 * H:
        x = quiet(rng, t, ar=ar) + 10.0
        hits.append(shift.explain_one(x, t).p_value < ALPHA_SHIFT)
        shift.learn_one(x, t)
        if t < t0 + 24 * H:
            # inside the excursion nothing is learned
            assert abs(shift.expected(t0 + 12 * H) - before) < 1e-9
        t += H
    assert all(hits[2:40])  # reported for as long as it lasts, not only at its onset
    assert shift.accepted_at is not None and shift.accepted_at - t0 >= 48 * H
    assert shift.explain_one(quiet(rng, t, ar=ar) + 10.0, t).p_value > 1e-3


def test_direction() -> None:
    up, _, rng, t0, ar = warmed(3, H)
    both = copy.deepcopy(up)
    both.direction = "both"
    for k in range(4):
        x = quiet(rng, t0 + k * H, ar=ar) - 12.0
        p_up = up.explain_one(x, t0 + k * H).p_value
        p_both = both.explain_one(x, t0 + k * H).p_value
        up.learn_one(x, t0 + k * H)
        both.learn_one(x, t0 + k * H)
    assert p_up > 0.5 and p_both < 1e-5


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), cadence=st.sampled_from([60.0, 600.0, 3600.0, 4 * H]))
def test_false_alarms_on_quiet_series_are_rare(seed: int, cadence: float) -> None:
    """Seven quiet days after warm-up, any cadence: at most 0.5% of readings at p < 1e-5."""
    shift, _, rng, t, ar = warmed(seed, cadence, days=7.0)
    n = hits = 0
    end = t + 7 * DAY
    while t < end:
        x = quiet(rng, t, ar=ar)
        s = shift.score_one(x, t)
        assert 0.0 <= s <= 1.0 and not math.isnan(s)
        hits += shift.explain_one(x, t).p_value < 1e-5
        shift.learn_one(x, t)
        n += 1
        t += cadence
    assert hits <= max(1, 0.005 * n)


@settings(max_examples=25, deadline=None)
@given(xs=st.lists(st.floats(-1e6, 1e6) | st.just(math.nan), min_size=1, max_size=60),
       gaps=st.lists(st.floats(0, 1e5), min_size=1, max_size=60))
def test_scores_are_bounded_and_scoring_changes_nothing(xs: list[float], gaps: list[float]
                                                        ) -> None:
    det, fs = SustainedShift(min_readings=3), FaultScreen()
    t = 0.0
    for i, x in enumerate(xs):
        t += gaps[i % len(gaps)]
        before = (det._nums.tobytes(), det._prof.tobytes())
        for d in (det, fs):
            s = d.score_one(x, t)
            assert 0.0 <= s <= 1.0 and not math.isnan(s)
        assert (det._nums.tobytes(), det._prof.tobytes()) == before
        det.learn_one(x, t)
        fs.learn_one(x, t)


def test_fault_screen_kinds() -> None:
    fs = FaultScreen(stuck_n=4)
    for i in range(50):
        fs.learn_one(30.0 + (i % 5), i * 60.0)
    assert fs.kind(-1.0) == "impossible"
    assert fs.kind(32_000.0) == "unit_slip" and fs.kind(0.032) is None  # (a low reading)
    assert fs.kind(95.0) is None  # three times the level: an incident may do that
    for i in range(3):
        fs.learn_one(41.0, 3000.0 + i * 60)
    assert fs.kind(41.0, 3200.0) == "stuck"
    fs.learn_one(41.0, 3200.0)
    assert fs.faulty(3300.0) and not fs.faulty(3200.0 + 7 * H)


def test_a_burst_of_spikes_is_erratic_but_a_plume_that_stays_is_not() -> None:
    burst, plume = FaultScreen(), FaultScreen()
    for fs in (burst, plume):
        for i in range(60):
            fs.learn_one(40.0 + i % 4, i * 600.0)
    kinds = []
    for i, x in enumerate([400.0, 41.0, 39.0, 420.0, 40.0, 38.0, 410.0]):
        kinds.append(burst.kind(x, 36000.0 + i * 600))
        burst.learn_one(x, 36000.0 + i * 600)
    assert kinds[0] is None and "erratic" in kinds[3:]
    for i in range(8):  # a plume: up, and it stays up
        x = 40.0 * (1 + i)
        assert plume.kind(x, 36000.0 + i * 600) is None
        plume.learn_one(x, 36000.0 + i * 600)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), level=st.floats(0.5, 500.0))
def test_noisy_positive_series_are_never_faults(seed: int, level: float) -> None:
    rng = random.Random(seed)
    fs = FaultScreen()
    for i in range(300):
        x = round(max(0.0, level * (1 + rng.gauss(0, 0.3))), 2)
        if x > 0:
            assert fs.kind(x, i * 60.0) in (None, "stuck")
            fs.learn_one(x, i * 60.0)


def finding(i: str, region: str, kind: str, t: float, p: float = 1e-8, city: bool = False,
            dept: str = "eco") -> Finding:
    return Finding(i, kind.split(":")[0], dept, region, kind, f"{kind}:{region}", "d",
                   5.0, 1.0, p, t, city=city)


def test_city_view_counts_distinct_regions_in_its_window() -> None:
    v = CityView(min_regions=3, window_s=6 * H)
    v.add(finding("a", "r1", "env:pm25", 0.0, city=True))
    v.add(finding("b", "r1", "env:pm25", H, city=True))
    v.add(finding("c", "r2", "env:pm25", 2 * H, city=True))
    assert not v.is_common("env:pm25", 2 * H)
    v.add(finding("d", "r3", "env:pm25", 3 * H, city=True))
    assert v.is_common("env:pm25", 3 * H) and v.active(3 * H) == {"env:pm25": 3}
    assert not v.is_common("env:pm25", 20 * H)  # the episode is over


def test_market_kinds_are_city_wide_over_days() -> None:
    """Prices come a few times a day: a rise reported in four regions over two days is
    city-wide; four sensor regions over two days are not."""
    v = CityView(min_regions=4)
    for k in range(4):
        v.add(finding(f"p{k}", f"x{k}", "market:price:pork", k * 12 * H, city=True))
        v.add(finding(f"e{k}", f"x{k}", "env:pm25", k * 12 * H, city=True))
    assert v.is_common("market:price:pork", 36 * H)
    assert not v.is_common("env:pm25", 36 * H)


def test_a_city_wide_rise_opens_no_local_incident() -> None:
    """The same local evidence opens an incident, unless the kind is anomalous across the
    city at that time."""
    def run(regions: int) -> list[str]:
        c = Correlator()
        for k in range(regions):
            c.process(finding(f"c{k}", f"x{k}", "env:pm25", 100.0 * k, city=True))
        out = c.process(finding("e", "r1", "env:pm25", H))
        out += c.process(finding("o", "r1", "complaint:odor", 2 * H, dept="hotline"))
        return [v.status for v in out]

    assert run(0) == ["new"] and run(2) == ["new"]
    assert run(5) == []


def reading(i: int, sensor: str, value: float, t: float, metric: str = "pm25"):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from streams.core.schemas import SensorReading

    return SensorReading(reading_id=f"{sensor}-{i}", sensor_id=sensor, metric=metric,
                         value=value, unit="ug/m3", region="r1",
                         observed_at=datetime.fromtimestamp(t, UTC), department="eco")


def test_a_stuck_station_gives_no_evidence_and_is_counted_for_operators() -> None:
    """A station stuck at a high value after ten normal days: its readings are screened out
    (counted by kind, exported to Prometheus), never reported as a sustained shift."""
    from prometheus_client import CollectorRegistry

    from streams.pipeline.detection import Detection
    from streams.runtime.metrics import TocsinMetrics

    rng = random.Random(5)
    det = Detection()
    t = 1_700_000_000.0
    found = []
    for i in range(240):
        found += det.process("env", reading(i, "s1", quiet(rng, t, 40.0), t))
        t += H
    for i in range(240, 260):
        found += det.process("env", reading(i, "s1", 250.0, t))
        t += H
    late = [f for f in found if f.t >= t - 20 * H]
    assert det.sensor_faults.get("stuck", 0) >= 10
    # the jump itself (the first readings, before it is seen to be stuck) may be reported;
    # nothing after the station is known to be stuck
    assert all(f.t < t - 14 * H for f in late)
    registry = CollectorRegistry()
    m = TocsinMetrics(registry, regions=["r1"], scenarios=["pollution"])
    m.observe_faults(det.sensor_faults)
    m.observe_faults(det.sensor_faults)  # cumulative: counted once
    assert registry.get_sample_value("tocsin_sensor_fault_readings_total",
                                     {"kind": "stuck"}) == det.sensor_faults["stuck"]
    m.observe_common_mode({"env:pm25": 6})
    assert registry.get_sample_value("tocsin_common_mode_regions", {"kind": "env:pm25"}) == 6
    m.observe_common_mode({})
    assert registry.get_sample_value("tocsin_common_mode_regions", {"kind": "env:pm25"}) is None
