"""Event-time reorder buffer and the failure-rate detector."""

from __future__ import annotations

import copy
import math
import pickle
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import betabinom

from detectors.base import Score, betabinom_sf
from detectors.fusion.reorder import EventTimeBuffer
from detectors.signals.rates import RateSurge

items = st.lists(
    st.tuples(st.sampled_from(["env/0", "env/1", "market/0"]),
              st.floats(0, 1e5, allow_nan=False), st.booleans()),
    min_size=1, max_size=60,
)


def replay(events: list[tuple[str, float, bool]], order: list[int], lateness: float
           ) -> list[tuple[float, str]]:
    """Each stream emits items no older than its watermark minus ``lateness``; feed the
    streams' outputs interleaved in ``order`` and collect what the buffer releases."""
    per_stream: dict[str, list[tuple[str, float | None, float]]] = {}
    wm: dict[str, float] = {}
    for n, (stream, t, is_item) in enumerate(events):
        cur = wm.get(stream, -math.inf)
        if is_item:
            t = max(t, cur - lateness)  # respect the upstream's lateness contract
            per_stream.setdefault(stream, []).append(("item", t, float(n)))
        wm[stream] = max(cur, t)
        per_stream.setdefault(stream, []).append(("wm", None, wm[stream]))
    buf: EventTimeBuffer[str] = EventTimeBuffer(lateness, expected=per_stream)
    out: list[tuple[float, str]] = []

    def deliver(s: str, kind: str, t: float | None, x: float) -> None:
        if kind == "item":
            assert t is not None
            buf.push(t, f"{x:08.0f}", f"{x:08.0f}")
        else:
            buf.watermark(s, x, wall=0.0)
        out.extend(buf.release(wall=0.0))

    queues = {s: list(v) for s, v in per_stream.items()}
    names = sorted(queues)
    for pick in order:
        live = [s for s in names if queues[s]]
        if not live:
            break
        s = live[pick % len(live)]
        deliver(s, *queues[s].pop(0))
    for s in names:  # drain whatever the interleaving left
        for rec in queues[s]:
            deliver(s, *rec)
    out.extend(buf.flush())
    return out


@settings(max_examples=150, deadline=None)
@given(events=items, a=st.lists(st.integers(0, 5), max_size=200),
       b=st.lists(st.integers(0, 5), max_size=200), lateness=st.floats(0, 1000))
def test_release_sequence_does_not_depend_on_interleaving(
    events: list[tuple[str, float, bool]], a: list[int], b: list[int], lateness: float
) -> None:
    first, second = replay(events, a, lateness), replay(events, b, lateness)
    assert first == second
    assert [t for t, _ in first] == sorted(t for t, _ in first)
    assert len(first) == sum(1 for e in events if e[2])


def test_idle_stream_stops_holding_back_and_late_items_are_counted() -> None:
    buf: EventTimeBuffer[str] = EventTimeBuffer(lateness_s=0.0, idle_s=5.0)
    buf.watermark("a", 100.0, wall=0.0)
    buf.watermark("b", 10.0, wall=0.0)
    buf.push(50.0, "x", "x")
    assert buf.release(wall=1.0) == []  # b holds it back
    buf.watermark("a", 120.0, wall=10.0)
    assert buf.release(wall=10.0) == [(50.0, "x")]  # b silent for 10 s > idle_s
    buf.push(40.0, "late", "late")
    assert buf.late_items == 1
    assert buf.release(wall=10.0) == [(40.0, "late")]


def test_rate_surge_matches_beta_binomial_tail_and_pickles() -> None:
    det = RateSurge(scales=(1,), prior_trials=20.0, prior_rate=0.1, warmup_trials=0.0)
    t0 = 3600.0 * 1000
    det.advance(t0)
    for i in range(4):
        det.learn_one(("r", i < 3), t0 + i)
    a, b = det._beta(det._keys["r"])
    assert (a, b) == (2.0, 18.0)  # nothing in the baseline yet: the prior alone
    s = det.explain_one(("r", False), t0 + 4)  # the fifth trial, counted
    det.learn_one(("r", False), t0 + 4)
    assert s == det.explain_one(("r", None), t0)  # (None: no trial, a question)
    assert det.score_one(("r", None), t0) == 1.0 - s.p_value
    assert s.observed == 3.0
    # the tail is summed as scipy sums it, by a recurrence between the terms: equal to
    # scipy's to the last few bits, and to the exact (rational) value
    assert s.p_value == pytest.approx(float(betabinom.sf(2, 5, 2.0, 18.0)), rel=1e-13)
    assert s.p_value == pytest.approx(_exact_sf(3, 5, 2.0, 18.0), rel=1e-13)
    clone = pickle.loads(pickle.dumps(det))
    assert clone.explain_one(("r", None), t0) == s


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.booleans()), max_size=300))
def test_rate_surge_scores_are_probabilities(trials: list[tuple[int, bool]]) -> None:
    det = RateSurge(warmup_trials=0.0)
    t = 0.0
    for dt, failed in trials:
        t += dt * 60.0
        p = det.explain_one(("k", failed), t).p_value
        det.learn_one(("k", failed), t)
        assert 0.0 <= p <= 1.0 and not math.isnan(p)


# -- the beta-binomial tail without scipy's per-call cost --------------------------------------


def _exact_sf(k: int, n: int, a: float, b: float) -> float:
    """P(X >= k), X ~ BetaBinomial(n, a, b), in rational arithmetic (a and b are exactly
    the binary fractions given)."""
    fa, fb = Fraction(a), Fraction(b)
    rise_a = [Fraction(1)]
    rise_b = [Fraction(1)]
    den = Fraction(1)
    for i in range(n):
        rise_a.append(rise_a[-1] * (fa + i))
        rise_b.append(rise_b[-1] * (fb + i))
        den *= fa + fb + i
    num = sum(math.comb(n, m) * rise_a[m] * rise_b[n - m] for m in range(k, n + 1))
    return float(num / den)


#: scipy's betabinom.sf is one minus a sum of terms each taken from betaln differences:
#: for a + b in the thousands these lose ~1e-11 (checked against _exact_sf below), and the
#: tail here agrees with scipy to within that
SCIPY_ROUNDING = 3e-11


@settings(max_examples=400, deadline=None)
@given(n=st.integers(0, 300), data=st.data(),
       a=st.floats(0.1, 300.0), b=st.floats(0.1, 3000.0))
def test_betabinom_tail_matches_scipy(n: int, data: st.DataObject, a: float, b: float
                                      ) -> None:
    k = data.draw(st.integers(-1, n + 2))
    want = float(betabinom.sf(k - 1, n, a, b))
    got = betabinom_sf(k, n, a, b)
    assert abs(got - want) <= 1e-9 * want + SCIPY_ROUNDING
    if want > 1e-3:
        assert got == pytest.approx(want, rel=1e-7)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 80), data=st.data(), a=st.floats(0.1, 300.0),
       b=st.floats(0.1, 3000.0))
def test_betabinom_tail_and_scipy_both_near_exact(n: int, data: st.DataObject, a: float,
                                                   b: float) -> None:
    k = data.draw(st.integers(1, n))
    exact = _exact_sf(k, n, a, b)
    assert abs(float(betabinom.sf(k - 1, n, a, b)) - exact) <= 1e-9 * exact + SCIPY_ROUNDING
    assert abs(betabinom_sf(k, n, a, b) - exact) <= 1e-9 * exact + SCIPY_ROUNDING


def _reference_rate_windows(det: RateSurge, key: str, t: float
                            ) -> list[tuple[float, float, float]]:
    """(p, observed, expected) per window, as RateSurge.score_one computed them before the
    caches: counts summed afresh, the tail from scipy.stats.betabinom."""
    st_ = det._keys.get(key)
    if st_ is None or det._pool_n < det.warmup_trials:
        return []
    b = det.bucket_of(t)
    cells = {bb: (n, k) for bb, n, k in st_.recent}
    cells.update({bb: (c[0], c[1]) for bb, c in st_.open.items()})
    a, b_ = det._beta(st_)
    rate = a / (a + b_)
    out = []
    for w in det.scales:
        n = sum(cells.get(b - i, (0, 0))[0] for i in range(w))
        k = sum(cells.get(b - i, (0, 0))[1] for i in range(w))
        if n and k:
            out.append((float(betabinom.sf(k - 1, n, a, b_)), float(k), n * rate))
    return out


def _assert_matches_reference(s: Score, ref: list[tuple[float, float, float]],
                              n_scales: int) -> None:
    if not ref:
        assert s == Score(0.0, 0.0, 1.0)
        return
    tol = 1e-9 * min(p for p, _, _ in ref) + SCIPY_ROUNDING
    best = min(p for p, _, _ in ref)
    assert abs(s.p_value - min(1.0, best * n_scales)) <= n_scales * tol
    # the window reported is the smallest p's (the first of equals); where two windows
    # are within rounding of each other either may be taken
    near = [(obs, exp) for p, obs, exp in ref if p <= best + 2 * tol]
    first = next((obs, exp) for p, obs, exp in ref if p == best)
    assert (s.observed, s.expected) == first or (s.observed, s.expected) in near


trial_events = st.lists(
    st.tuples(st.sampled_from([-40.0, 0.5, 2.0, 5.0, 12.0, 30.0, 61.0, 500.0]),
              st.integers(0, 2), st.booleans(), st.integers(0, 3)),
    min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(events=trial_events, prior_trials=st.sampled_from([5.0, 20.0, 100.0]),
       scales=st.sampled_from([(1, 6, 12, 24), (1, 2), (3, 4, 30)]))
def test_rate_surge_scores_match_scipy_reference(
    events: list[tuple[float, int, bool, int]], prior_trials: float, scales: tuple[int, ...]
) -> None:
    """Driven as the pipeline drives it (advance, explain, learn: learning marks fired
    buckets) with bursts of trials, late trials, gaps and trials learned unexplained,
    every explanation is the scipy computation's on the trials with the new one counted:
    p to within scipy's rounding, the window of the smallest p. Copies taken on the way
    give the same outputs as the original, to the last bit."""
    det = RateSurge(prior_trials=prior_trials, prior_rate=0.1, warmup_trials=0.0,
                    scales=scales)
    twin: RateSurge | None = None
    twin_out: list[Score] = []
    out: list[Score] = []
    t = 3600.0 * 1000
    for i, (dt_min, k, failed, mode) in enumerate(events):
        if i == len(events) // 3:  # from here on a copy runs alongside, never looked into
            twin = pickle.loads(pickle.dumps(det)) if i % 2 else copy.deepcopy(det)
            out = []
        t += dt_min * 60.0
        key = f"r{k}"
        for d in (det, twin):
            if d is not None:
                d.advance(t)
        if mode == 1:  # learned without a score
            det.learn_one((key, failed), t)
            if twin is not None:
                twin.learn_one((key, failed), t)
            continue
        accepted = det.accepts((key, failed), t)
        s = det.explain_one((key, failed), t)
        out.append(s)
        if twin is not None:
            twin_out.append(twin.explain_one((key, failed), t))
        det.learn_one((key, failed), t)
        if twin is not None:
            twin.learn_one((key, failed), t)
        if accepted:  # the trials explain_one judged are the ones now learned
            _assert_matches_reference(s, _reference_rate_windows(det, key, t), len(scales))
        else:
            assert s == Score(0.0, 0.0, 1.0)
        if mode == 2:  # look again after learning, and at the hour before
            for when in (t, t - 3600.0):
                if det.accepts((key, None), when):
                    again = det.explain_one((key, None), when)
                    _assert_matches_reference(again, _reference_rate_windows(det, key, when),
                                              len(scales))
    assert twin_out == out
