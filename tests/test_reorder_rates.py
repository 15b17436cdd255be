"""Event-time reorder buffer and the failure-rate detector."""

from __future__ import annotations

import math
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import betabinom

from detectors.rates import RateSurge
from detectors.reorder import EventTimeBuffer

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
    for i in range(5):
        det.learn_one("r", t0 + i, failed=i < 3)
    a, b = det._beta(det._keys["r"])
    assert (a, b) == (2.0, 18.0)  # nothing in the baseline yet: the prior alone
    s = det.score_one("r", t0)
    assert s.observed == 3.0
    assert s.p_value == float(betabinom.sf(2, 5, 2.0, 18.0))
    clone = pickle.loads(pickle.dumps(det))
    assert clone.score_one("r", t0) == s


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.booleans()), max_size=300))
def test_rate_surge_scores_are_probabilities(trials: list[tuple[int, bool]]) -> None:
    det = RateSurge(warmup_trials=0.0)
    t = 0.0
    for dt, failed in trials:
        t += dt * 60.0
        det.advance(t)
        det.learn_one("k", t, failed)
        p = det.score_one("k", t).p_value
        assert 0.0 <= p <= 1.0 and not math.isnan(p)
