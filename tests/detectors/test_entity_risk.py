"""EntityRisk: per-company risk from recalls, licence violations and inspections."""

from __future__ import annotations

import itertools
import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.signals.entity_risk import EntityEvent, EntityRisk

T0 = 1_700_000_000.0
DAY = 86400.0
KINDS = ["recall", "license_violation", "licence_violation", "inspection", "price_report"]


def background(det: EntityRisk, rng: random.Random, t_from: float, t_to: float,
               n_firms: int = 300, every_s: float = 3600.0) -> None:
    """A population of firms: mostly passed inspections, some failed, a few violations."""
    t = t_from
    while t < t_to:
        firm = f"firm{rng.randrange(n_firms)}"
        r = rng.random()
        if r < 0.02:
            ev = EntityEvent(firm, "recall")
        elif r < 0.06:
            ev = EntityEvent(firm, "license_violation")
        else:
            ev = EntityEvent(firm, "inspection", failed=rng.random() < 0.15)
        det.learn_one(ev, t)
        t += rng.expovariate(1.0 / every_s)


def populated(seed: int = 0, days: float = 90.0) -> tuple[EntityRisk, random.Random, float]:
    det = EntityRisk()
    rng = random.Random(seed)
    background(det, rng, T0, T0 + days * DAY)
    return det, rng, T0 + days * DAY


def test_repeated_recalls_raise_risk_and_it_decays_back() -> None:
    det, rng, t = populated()
    target = "91310000MA1FL0000X"
    det.learn_one((target, "inspection", False), t)
    assert det.risk(target, t) < 0.5
    risks = []
    for _ in range(4):  # a recall every week
        risks.append(det.score_one((target, "recall", None), t))
        det.learn_one((target, "recall", None), t)
        assert det.risk(target, t) == pytest.approx(risks[-1])
        background(det, rng, t, t + 7 * DAY)
        t += 7 * DAY
    assert all(b > a for a, b in itertools.pairwise(risks)), risks
    assert risks[-1] > 0.999
    # the population carries on, the firm has no more events: its risk decays back
    later = []
    for _ in range(12):
        background(det, rng, t, t + 30 * DAY)
        t += 30 * DAY
        later.append(det.risk(target, t))
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(later)), later
    assert later[-1] < 0.5
    assert later[0] > 0.99  # a month after the last recall it is still high


def test_passed_inspections_lower_risk() -> None:
    det, _, t = populated()
    firm = "firm-x"
    for k in range(3):
        det.learn_one((firm, "license_violation"), t + k * DAY)
    t += 3 * DAY
    before = det.explain_one((firm, "inspection", None), t)
    passed = det.explain_one((firm, "inspection", False), t)
    failed = det.explain_one((firm, "inspection", True), t)
    assert passed.observed < before.observed < failed.observed
    assert passed.p_value > before.p_value > failed.p_value
    for k in range(20):
        det.learn_one((firm, "inspection", False), t + k)
    assert det.explain_one((firm, "price_report"), t + 20).observed == 0.0
    assert det.risk(firm, t + 20) == 0.0


def test_explain_one_matches_score_one_and_expected_is_population_mean() -> None:
    det, _, t = populated()
    s = det.explain_one(("firm3", "recall"), t)
    assert det.score_one(("firm3", "recall"), t) == pytest.approx(1.0 - s.p_value)
    # population mean: adverse weights are small on average in this population
    assert 0.0 < s.expected < 3.0
    assert s.observed >= 3.0


def test_kinds_aliases_and_unknown_kinds() -> None:
    det = EntityRisk()
    a = det.explain_one(("e", "licence_violation"), T0)
    b = det.explain_one(EntityEvent("e", "license_violation"), T0)
    assert a == b and a.observed == 2.0
    with pytest.raises(ValueError, match=r"unknown event kind 'fire'.*known kinds:.*recall"):
        det.score_one(("e", "fire"), T0)
    with pytest.raises(ValueError, match="unknown event kind"):
        det.learn_one(EntityEvent("e", "Recall"), T0)
    custom = EntityRisk(weights={"recall": 5.0})
    assert custom.explain_one(("e", "recall"), T0).observed == 5.0
    with pytest.raises(ValueError, match="unknown event kind"):
        custom.score_one(("e", "inspection", True), T0)



def test_tuple_and_event_forms_score_and_learn_alike() -> None:
    rng = random.Random(6)
    a, b = EntityRisk(max_entities=40), EntityRisk(max_entities=40)
    t = T0
    for _ in range(2_000):
        t += rng.expovariate(1 / 3600.0)
        firm = f"firm{rng.randrange(60)}"
        kind = rng.choice(KINDS)
        failed = rng.choice([True, False, None])
        as_tuple = (firm, kind, failed) if kind == "inspection" else (firm, kind)
        as_event = EntityEvent(firm, kind, failed if kind == "inspection" else None)
        assert a.score_one(as_tuple, t) == b.score_one(as_event, t)
        assert a.explain_one(as_tuple, t) == b.explain_one(as_event, t)
        a.learn_one(as_tuple, t)
        b.learn_one(as_event, t)
    assert pickle.dumps(a) == pickle.dumps(b)

def test_bad_parameters() -> None:
    for kwargs in ({"half_life_s": 0.0}, {"half_life_s": math.nan}, {"max_entities": 0},
                   {"weights": {"recall": -1.0}}, {"pass_credit": math.inf},
                   {"prior_mean": 0.0}):
        with pytest.raises(ValueError):
            EntityRisk(**kwargs)  # type: ignore[arg-type]


def test_params_are_attributes() -> None:
    det = EntityRisk(half_life_s=7 * DAY, max_entities=50, pass_credit=1.0, seed=3)
    assert (det.half_life_s, det.max_entities, det.pass_credit, det.seed) == (7 * DAY, 50, 1.0, 3)


def test_memory_is_bounded_and_risky_entities_survive_eviction() -> None:
    det = EntityRisk(max_entities=100)
    for k in range(3):
        det.learn_one(("bad", "recall"), T0 + k)
    sizes = []
    for i in range(5000):
        det.learn_one((f"e{i}", "inspection", i % 7 == 0), T0 + 10 + i)
        assert det.n_entities <= 100
        if i % 1000 == 999:
            sizes.append(len(pickle.dumps(det)))
    assert det.evicted >= 4900
    assert det.risk("bad", T0 + 6000) > 0.99
    assert max(sizes) < 1.2 * min(sizes)  # state size does not grow with the stream


def test_homogeneous_population_is_calibrated() -> None:
    """When every firm has the same event rate, p-values are not too small."""
    rng = random.Random(5)
    det = EntityRisk()
    n = 1000
    t = T0
    for _ in range(15000):
        t += rng.expovariate(1 / 600)
        firm = f"e{rng.randrange(n)}"
        r = rng.random()
        kind, failed = (("recall", None) if r < 0.1 else ("license_violation", None)
                        if r < 0.3 else ("inspection", r < 0.6))
        det.learn_one((firm, kind, failed), t)
    ps = [1.0 - det.risk(f"e{i}", t) for i in range(n)]
    assert sum(p <= 0.05 for p in ps) / n <= 0.07
    assert sum(p <= 0.01 for p in ps) / n <= 0.02
    assert sum(p <= 0.5 for p in ps) / n > 0.1  # not degenerate either


def test_overdispersed_population_is_calibrated() -> None:
    """Recalls only (weight 3 each): adverse weights vary three times their mean, so a
    plain Poisson tail would be far too sure; the population dispersion must be used."""
    rng = random.Random(6)
    det = EntityRisk()
    n = 1000
    t = T0
    for _ in range(6000):
        t += rng.expovariate(1 / 900)
        det.learn_one((f"e{rng.randrange(n)}", "recall"), t)
    ps = [1.0 - det.risk(f"e{i}", t) for i in range(n)]
    assert sum(p <= 0.05 for p in ps) / n <= 0.07
    assert sum(p <= 0.5 for p in ps) / n > 0.1


def test_late_events_count_with_their_decay() -> None:
    det = EntityRisk(half_life_s=10 * DAY)
    det.learn_one(("other", "inspection", False), T0 + 100 * DAY)
    late = det.explain_one(("e", "recall"), T0 + 90 * DAY)  # ten days late: half weight
    assert late.observed == pytest.approx(1.5)


def test_score_one_is_pure_and_pickle_round_trip() -> None:
    det, _, t = populated(days=20)
    before = pickle.dumps(det)
    probes = [("firm1", "recall", None), ("new", "inspection", True), ("firm2", "inspection",
              False), ("firm9", "price_report", None)]
    scores = [det.score_one(p, t + 5) for p in probes]
    det.risk("firm1", t + 10)
    det.explain_one(probes[0], t - 3 * DAY)
    assert pickle.dumps(det) == before
    clone = pickle.loads(before)
    assert [clone.score_one(p, t + 5) for p in probes] == scores
    for p in probes:
        det.learn_one(p, t + 6)
        clone.learn_one(p, t + 6)
    assert [clone.score_one(p, t + 7) for p in probes] == [det.score_one(p, t + 7) for p in probes]


events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.sampled_from(KINDS),
        st.sampled_from([True, False, None]),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                  st.floats(min_value=-1e6, max_value=1e6).map(lambda d: T0 + d)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(events, st.integers(min_value=1, max_value=4))
def test_scores_in_unit_interval_and_finite(
        evs: list[tuple[str, str, bool | None, float]], cap: int) -> None:
    det = EntityRisk(max_entities=cap)
    for entity, kind, failed, t in evs:
        before = pickle.dumps(det)
        s = det.score_one((entity, kind, failed), t)
        e = det.explain_one((entity, kind, failed), t)
        assert pickle.dumps(det) == before
        assert 0.0 <= s <= 1.0 and math.isfinite(s)
        assert math.isfinite(e.observed) and math.isfinite(e.expected) and e.observed >= 0
        assert 0.0 < e.p_value <= 1.0
        det.learn_one((entity, kind, failed), t)
        assert det.n_entities <= cap
        r = det.risk(entity, t)
        assert 0.0 <= r <= 1.0 and math.isfinite(r)
    clone = pickle.loads(pickle.dumps(det))
    for entity in "abcde":
        assert clone.score_one((entity, "recall"), T0) == det.score_one((entity, "recall"), T0)


def test_snapshot_round_trip_keeps_the_scores() -> None:
    from detectors.signals.entity_risk import EntityRisk
    from detectors.state import dumps, loads

    det = EntityRisk()
    for i in range(50):
        det.learn_one((f"firm{i % 7}", "recall" if i % 5 == 0 else "inspection", i % 3 == 0),
                      1_700_000_000.0 + 3600 * i)
    back = loads(dumps(det))
    t = 1_700_000_000.0 + 3600 * 60
    assert [back.assess(f"firm{k}", t) for k in range(7)] == \
        [det.assess(f"firm{k}", t) for k in range(7)]
    assert "firm3" in back and "nobody" not in back


def test_a_version_1_finding_snapshot_gets_no_entity_notes() -> None:
    from detectors.base import Finding
    from detectors.state import from_state, to_state

    f = Finding("a", "market", "m", "r", "market:recall", "s", "count_surge", 3.0, 1.0, 1e-3,
                0.0, ("e1",), entities=("note",))
    tree = to_state(f)
    assert from_state(tree) == f
    # as written before Finding.entities (and window_s, version 3)
    tree["n"], tree["s"] = 1, tree["s"][:-2]
    old = from_state(tree)
    assert old.entities == () and old.event_ids == ("e1",) and old.p_value == 1e-3
    assert old.window_s == 0.0
