from __future__ import annotations

import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.fusion.feedback import (
    ACTIONS,
    Decision,
    FeedbackAction,
    FeedbackBar,
    InvalidDecision,
    MissingReason,
    WarningHistory,
    combination,
    combination_of,
)

T0 = 1_767_261_600.0  # 2026-01-01 10:00 UTC
H = 3600.0
DAY = 86400.0
POLLUTION = combination(["env:water_cod", "complaint:odor"], "pollution")
FOOD = combination(["market:recall", "complaint:food_safety"], "food_safety")


def dismiss(wid: str = "tw-1", t: float = T0, by: str = "op-7",
            reason: str = "factory test, known") -> Decision:
    return Decision(wid, "dismiss", by, t, reason)


def confirm(wid: str = "tw-1", t: float = T0, by: str = "op-2") -> Decision:
    return Decision(wid, "confirm", by, t)


# -- decisions --------------------------------------------------------------------------
def test_dismiss_without_reason_raises_specific_error() -> None:
    for reason in (None, "", "   "):
        with pytest.raises(MissingReason, match="needs a reason: send reason="):
            Decision("tw-1", "dismiss", "op-7", T0, reason)
    assert issubclass(MissingReason, InvalidDecision)
    assert issubclass(InvalidDecision, ValueError)
    with pytest.raises(MissingReason):
        Decision.from_mapping({"warning_id": "tw-1", "action": "dismiss", "by": "op-7",
                               "at": T0})
    # other actions need no reason
    assert Decision("tw-1", "confirm", "op-7", T0).reason is None


@pytest.mark.parametrize("kwargs", [
    {"warning_id": ""}, {"action": "snooze"}, {"by": " "}, {"at": math.nan},
    {"at": math.inf}, {"reason": 3},
])
def test_invalid_decisions_raise_invalid_decision(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"warning_id": "tw-1", "action": "confirm", "by": "op-1",
                               "at": T0, "reason": None}
    base.update(kwargs)
    with pytest.raises(InvalidDecision):
        Decision(**base)  # type: ignore[arg-type]


def test_from_mapping_normalises_action_and_time() -> None:
    d = Decision.from_mapping({"warning_id": "tw-1", "action": " Dismiss ", "by": "op-7",
                               "at": str(T0), "reason": "drill"})
    assert d == dismiss(reason="drill")
    with pytest.raises(InvalidDecision, match="send one of"):
        Decision.from_mapping({"warning_id": "tw-1", "action": "close", "by": "op", "at": 1})
    with pytest.raises(InvalidDecision, match="epoch seconds"):
        Decision.from_mapping({"warning_id": "tw-1", "action": "confirm", "by": "op",
                               "at": "yesterday"})


# -- lifecycle --------------------------------------------------------------------------
def test_lifecycle_open_acknowledged_confirmed_resolved() -> None:
    h = WarningHistory()
    assert h.state("tw-1") is None and h.history("tw-1") == ()
    steps: list[tuple[FeedbackAction, str]] = [
        ("acknowledge", "acknowledged"), ("confirm", "confirmed"), ("resolve", "resolved")]
    for i, (action, state) in enumerate(steps):
        e = h.record(Decision("tw-1", action, "op-1", T0 + i * 60))
        assert e is not None and e.accepted and e.state == state
    assert h.state("tw-1") == "resolved" and h.closed_at("tw-1") == T0 + 120
    assert [e.decision.action for e in h.history("tw-1")] == ["acknowledge", "confirm",
                                                                "resolve"]


def test_direct_dismiss_from_open_and_correction_by_confirm() -> None:
    h = WarningHistory()
    assert h.record(dismiss(t=T0)) is not None
    assert h.state("tw-1") == "dismissed" and h.closed_at("tw-1") == T0
    e = h.record(confirm(t=T0 + H))  # the dismissal was wrong
    assert e is not None and e.accepted and h.state("tw-1") == "confirmed"
    assert h.closed_at("tw-1") is None


def test_rejected_transitions_are_kept_with_reason() -> None:
    h = WarningHistory()
    h.record(Decision("tw-1", "acknowledge", "op-1", T0))
    again = h.record(Decision("tw-1", "acknowledge", "op-2", T0 + 60))
    assert again is not None and again.rejected and again.state == "acknowledged"
    assert again.rejected_because is not None
    assert "acknowledged by op-1" in again.rejected_because
    assert "allowed now: confirm, dismiss, resolve" in again.rejected_because
    h.record(Decision("tw-1", "resolve", "op-1", T0 + 120))
    late = h.record(confirm(t=T0 + 180))
    assert late is not None and late.rejected and late.state == "resolved"
    assert late.rejected_because is not None and "resolved by op-1" in late.rejected_because
    assert [(e.decision.action, e.accepted) for e in h.history("tw-1")] == [
        ("acknowledge", True), ("acknowledge", False), ("resolve", True), ("confirm", False)]
    assert h.state("tw-1") == "resolved"


def test_duplicates_ignored() -> None:
    h = WarningHistory()
    assert h.record(dismiss()) is not None
    assert h.record(dismiss()) is None
    assert h.record(dismiss(reason="other words, same decision")) is None
    assert h.duplicates == 2 and len(h.history("tw-1")) == 1
    # another operator, or another time, is another decision
    e = h.record(dismiss(by="op-8"))
    assert e is not None and e.rejected and len(h.history("tw-1")) == 2


def test_late_decision_lands_in_event_time_order() -> None:
    h = WarningHistory()
    h.record(Decision("tw-1", "resolve", "op-1", T0 + 300))
    e = h.record(dismiss(t=T0 + 200))  # arrives late, happened first
    assert e is not None and e.accepted
    assert [(e.decision.action, e.accepted) for e in h.history("tw-1")] == [
        ("dismiss", True), ("resolve", False)]
    assert h.state("tw-1") == "dismissed" and h.closed_at("tw-1") == T0 + 200


def test_retention_forgets_closed_warnings_only_after_retention() -> None:
    h = WarningHistory(retention_s=2 * DAY)
    h.record(dismiss("tw-closed", t=T0))
    h.record(Decision("tw-open", "acknowledge", "op-1", T0))
    assert h.advance(T0 + 2 * DAY - 1) == []
    assert len(h.history("tw-closed")) == 1  # still retrievable
    assert h.advance(T0 + 2 * DAY) == ["tw-closed"]
    assert h.history("tw-closed") == () and h.state("tw-closed") is None
    assert "tw-open" in h and len(h) == 1
    # a replay of the forgotten warning's decisions does not bring it back
    assert h.record(dismiss("tw-closed", t=T0)) is None and h.late == 1
    assert "tw-closed" not in h


def test_retention_driven_by_decision_time_and_reopen_cancels_it() -> None:
    h = WarningHistory(retention_s=DAY)
    h.record(dismiss("tw-1", t=T0))
    h.record(confirm("tw-1", t=T0 + H))  # reopened: no longer closed
    h.record(Decision("tw-2", "acknowledge", "op-1", T0 + 3 * DAY))
    assert "tw-1" in h
    h.record(Decision("tw-1", "resolve", "op-1", T0 + 3 * DAY))
    h.record(Decision("tw-2", "acknowledge", "op-9", T0 + 4 * DAY))
    assert "tw-1" not in h and "tw-2" in h


def test_history_memory_is_bounded() -> None:
    h = WarningHistory(max_warnings=50, max_entries=5)
    for i in range(500):
        h.record(Decision(f"tw-{i}", "acknowledge", "op-1", T0 + i))
    assert len(h) <= 50 and "tw-499" in h
    for i in range(10):
        h.record(Decision("tw-499", "acknowledge", f"op-{i}", T0 + 600 + i))
    assert len(h.history("tw-499")) == 5 and h.dropped == 6


def test_history_pickle_round_trip() -> None:
    h = WarningHistory(retention_s=DAY)
    h.record(dismiss("tw-1", t=T0))
    h.record(Decision("tw-2", "acknowledge", "op-1", T0))
    clone = pickle.loads(pickle.dumps(h))
    assert clone.history("tw-1") == h.history("tw-1") and clone.state("tw-2") == "acknowledged"
    assert clone.advance(T0 + DAY) == h.advance(T0 + DAY) == ["tw-1"]


# -- the bar ----------------------------------------------------------------------------
def test_dismiss_raises_bar_for_that_region_and_combination_only() -> None:
    bar = FeedbackBar(dismiss_step=2.0)
    assert bar.extra_score("r1", POLLUTION, T0) == 0.0
    assert bar.learn(dismiss(), "r1", POLLUTION)
    assert bar.extra_score("r1", POLLUTION, T0) == 2.0
    assert bar.extra_score("r2", POLLUTION, T0) == 0.0
    assert bar.extra_score("r1", FOOD, T0) == 0.0
    assert bar.dismiss_factor == pytest.approx(100.0)


def test_confirm_lowers_but_never_below_base() -> None:
    bar = FeedbackBar(dismiss_step=2.0, confirm_step=1.0)
    assert not bar.learn(confirm("tw-0"), "r1", POLLUTION)  # at base: nothing to lower
    assert len(bar) == 0
    bar.learn(dismiss("tw-1"), "r1", POLLUTION)
    bar.learn(confirm("tw-2"), "r1", POLLUTION)
    assert bar.extra_score("r1", POLLUTION, T0) == 1.0
    bar.learn(confirm("tw-3"), "r1", POLLUTION)
    bar.learn(confirm("tw-4"), "r1", POLLUTION)
    assert bar.extra_score("r1", POLLUTION, T0) == 0.0


def test_decay_halves_extra_after_half_life() -> None:
    bar = FeedbackBar(dismiss_step=2.0, half_life_s=7 * DAY)
    bar.learn(dismiss(), "r1", POLLUTION)
    assert bar.extra_score("r1", POLLUTION, T0 + H) == pytest.approx(2.0, rel=0.01)
    assert bar.extra_score("r1", POLLUTION, T0 + 7 * DAY) == pytest.approx(1.0)
    assert bar.extra_score("r1", POLLUTION, T0 + 14 * DAY) == pytest.approx(0.5)


def test_repeated_dismissals_accumulate_up_to_cap() -> None:
    bar = FeedbackBar(dismiss_step=2.0, max_extra=5.0)
    for i, want in enumerate([2.0, 4.0, 5.0, 5.0]):
        bar.learn(dismiss(f"tw-{i}", t=T0 + i), "r1", POLLUTION)
        assert bar.extra_score("r1", POLLUTION, T0 + i) == pytest.approx(want, abs=1e-4)


def test_replayed_or_irrelevant_decisions_leave_bar_alone() -> None:
    bar = FeedbackBar()
    bar.learn(dismiss(), "r1", POLLUTION)
    assert not bar.learn(dismiss(), "r1", POLLUTION)  # replay
    assert not bar.learn(dismiss(by="op-8"), "r1", POLLUTION)  # same warning, 2nd officer
    assert not bar.learn(Decision("tw-2", "acknowledge", "op-1", T0), "r1", POLLUTION)
    assert not bar.learn(Decision("tw-2", "resolve", "op-1", T0), "r1", POLLUTION)
    assert bar.extra_score("r1", POLLUTION, T0) == 2.0


def test_late_decision_counts_with_its_decay() -> None:
    bar = FeedbackBar(dismiss_step=2.0, half_life_s=DAY)
    bar.learn(dismiss("tw-1", t=T0 + DAY), "r1", POLLUTION)
    bar.learn(dismiss("tw-2", t=T0), "r1", POLLUTION)  # a day older: worth half
    assert bar.extra_score("r1", POLLUTION, T0 + DAY) == pytest.approx(3.0)
    # t overrides the decision's time
    bar.learn(dismiss("tw-3", t=T0), "r2", POLLUTION, t=T0 + DAY)
    assert bar.extra_score("r2", POLLUTION, T0 + DAY) == 2.0


def test_explain_names_reason_operator_and_time() -> None:
    bar = FeedbackBar(half_life_s=7 * DAY)
    assert bar.explain("r1", POLLUTION, T0) == "bar at base (no feedback)"
    bar.learn(dismiss(), "r1", POLLUTION)
    assert bar.explain("r1", POLLUTION, T0) == (
        "bar raised by 2.0 (1 dismissal: 'factory test, known', by op-7, "
        "2026-01-01 10:00 UTC); halves every 7 days")
    bar.learn(dismiss("tw-2", t=T0 + H, by="op-3", reason="drill"), "r1", POLLUTION)
    bar.learn(confirm("tw-3", t=T0 + 2 * H), "r1", POLLUTION)
    text = bar.explain("r1", POLLUTION, T0 + 2 * H)
    assert text.startswith("bar raised by 3.0 (2 dismissals, last: 'drill', by op-3, ")
    assert "1 confirmation by op-2, 2026-01-01 12:00 UTC" in text
    assert bar.explain("r1", POLLUTION, T0 + 100 * DAY).startswith("bar back at base (")


def test_explain_quotes_times_in_the_officers_zone() -> None:
    """The correlator passes its wording's clock: the same zone as the rest of the text."""
    from zoneinfo import ZoneInfo

    from detectors.fusion.wording import Wording

    bar = FeedbackBar(half_life_s=7 * DAY)
    bar.learn(dismiss(), "r1", POLLUTION)
    when = Wording(zone=ZoneInfo("Asia/Shanghai")).when
    assert bar.explain("r1", POLLUTION, T0, when) == (
        "bar raised by 2.0 (1 dismissal: 'factory test, known', by op-7, "
        "2026-01-01 18:00 CST); halves every 7 days")


def test_max_keys_evicts_keys_closest_to_base() -> None:
    bar = FeedbackBar(max_keys=10, half_life_s=DAY)
    bar.learn(dismiss("tw-old", t=T0), "r-old", POLLUTION)  # decayed by the time of the rest
    for i in range(9):
        bar.learn(dismiss(f"tw-{i}", t=T0 + 10 * DAY), f"r{i}", POLLUTION)
    assert len(bar) == 10
    bar.learn(dismiss("tw-new", t=T0 + 10 * DAY), "r-new", POLLUTION)
    assert len(bar) == 10
    assert bar.extra_score("r-old", POLLUTION, T0 + 10 * DAY) == 0.0
    assert all(bar.extra_score(f"r{i}", POLLUTION, T0 + 10 * DAY) == 2.0 for i in range(9))
    assert bar.extra_score("r-new", POLLUTION, T0 + 10 * DAY) == 2.0


def test_bad_parameters_rejected() -> None:
    for kw in ({"half_life_s": 0.0}, {"dismiss_step": -1.0}, {"max_extra": math.inf},
               {"max_keys": 0}):
        with pytest.raises(ValueError):
            FeedbackBar(**kw)


def test_combination_of_a_correlator_incident() -> None:
    from detectors.base import Finding
    from detectors.fusion.correlation import Correlator

    c = Correlator()
    c.process(Finding("a", "env", "eco", "r1", "env:water_cod", "env:water_cod:s1", "d",
                      5.0, 1.0, 1e-6, T0))
    new = c.process(Finding("b", "complaint", "hotline", "r1", "complaint:odor",
                            "complaint:odor:r1", "d", 5.0, 1.0, 1e-6, T0 + H))
    assert combination_of(new[0]) == POLLUTION == "pollution|complaint:odor+env:water_cod"


# -- properties -------------------------------------------------------------------------
_step = st.tuples(
    st.sampled_from(ACTIONS), st.sampled_from(["r1", "r2"]), st.sampled_from(["a", "b"]),
    st.integers(0, 20), st.floats(-3 * DAY, 10 * DAY, allow_nan=False))


def _fill(steps: list[tuple[FeedbackAction, str, str, int, float]]) -> FeedbackBar:
    bar = FeedbackBar(dismiss_step=2.0, confirm_step=1.0, half_life_s=DAY, max_extra=5.0,
                      max_keys=3)
    for action, region, combo, w, dt in steps:
        bar.learn(Decision(f"tw-{w}", action, "op", T0 + dt, "why"), region, combo)
    return bar


@settings(max_examples=150, deadline=None)
@given(st.lists(_step, max_size=30),
       st.lists(st.floats(0, 60 * DAY, allow_nan=False), min_size=1, max_size=8))
def test_property_extra_bounded_and_non_increasing_without_decisions(
        steps: list[tuple[FeedbackAction, str, str, int, float]], offsets: list[float]) -> None:
    bar = _fill(steps)
    for region in ("r1", "r2"):
        for combo in ("a", "b"):
            prev = math.inf
            for off in sorted(offsets):
                x = bar.extra_score(region, combo, T0 - 3 * DAY + off)
                assert 0.0 <= x <= bar.max_extra and x <= prev
                prev = x


@settings(max_examples=100, deadline=None)
@given(st.lists(_step, max_size=30), st.lists(_step, max_size=10))
def test_property_pickle_round_trip_preserves_outputs(
        steps: list[tuple[FeedbackAction, str, str, int, float]],
        more: list[tuple[FeedbackAction, str, str, int, float]]) -> None:
    bar = _fill(steps)
    clone = pickle.loads(pickle.dumps(bar))
    for action, region, combo, w, dt in more:
        d = Decision(f"tw-{w}", action, "op", T0 + dt, "why")
        assert bar.learn(d, region, combo) == clone.learn(d, region, combo)
    for region in ("r1", "r2"):
        for combo in ("a", "b"):
            for t in (T0, T0 + DAY, T0 + 30 * DAY):
                assert bar.extra_score(region, combo, t) == clone.extra_score(region, combo, t)
                assert bar.explain(region, combo, t) == clone.explain(region, combo, t)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.sampled_from(["op-1", "op-2"]),
                          st.integers(0, 5)), max_size=12), st.randoms())
def test_property_history_independent_of_arrival_order_and_replays(
        raw: list[tuple[FeedbackAction, str, int]], rnd: random.Random) -> None:
    decisions = [Decision("tw-1", a, by, T0 + 60 * k, "why") for a, by, k in raw]
    shuffled = decisions + decisions[: len(decisions) // 2]  # with replays
    rnd.shuffle(shuffled)
    h1, h2 = WarningHistory(), WarningHistory()
    for d in decisions:
        h1.record(d)
    for d in shuffled:
        h2.record(d)
    assert h1.history("tw-1") == h2.history("tw-1")
    assert h1.state("tw-1") == h2.state("tw-1")
    ats = [e.decision.at for e in h1.history("tw-1")]
    assert ats == sorted(ats) and len(ats) == len({d.key for d in decisions})
