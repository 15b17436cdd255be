"""Station health: cadence, missing readings, silence, stuck values, faults."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.signals.station_health import STATUSES, StationHealth, merge_health
from detectors.state import dumps, loads


def feed(h: StationHealth, station: str, times: list[float], values: list[float] | None = None
         ) -> None:
    for i, t in enumerate(times):
        h.learn_one(station, "pm25", values[i] if values else 30.0 + i % 4, t)


def test_cadence_is_learned_and_a_gap_counts_its_missing_readings() -> None:
    h = StationHealth()
    feed(h, "S", [600.0 * i for i in range(6)] + [600.0 * 12])  # 6 readings lost
    assert h.missing == 6
    assert h.expected("S", "pm25", 600.0 * 12) == 13.0
    assert h.status("S", "pm25", 600.0 * 12) == "ok"


def test_silence_is_judged_against_the_partitions_event_time() -> None:
    h = StationHealth()
    feed(h, "S", [900.0 * i for i in range(5)])
    assert h.status("S", "pm25", 900.0 * 6) == "ok"  # two cadences: not yet
    assert h.status("S", "pm25", 900.0 * 8) == "silent"
    assert h.status("unknown", "pm25", 0.0) == "learning"


def test_stuck_faulty_and_the_attention_list() -> None:
    h = StationHealth()
    feed(h, "stuck", [60.0 * i for i in range(12)], [1.0, 2.0] + [5.0] * 10)
    feed(h, "flat", [60.0 * i for i in range(12)], [5.0] * 12)  # never varied: not stuck
    feed(h, "ok", [60.0 * i for i in range(12)])
    feed(h, "gone", [60.0 * i for i in range(4)])
    h.learn_one("bad", "pm25", 1e9, 0.0, fault="impossible")
    now = 60.0 * 11
    assert [h.status(s, "pm25", now) for s in ("stuck", "flat", "ok", "gone", "bad")] == [
        "stuck", "ok", "ok", "silent", "faulty"]
    assert h.summary(now) == {"faulty": 1, "silent": 1, "stuck": 1, "ok": 2, "learning": 0}
    rows = h.attention(now, 10)
    assert [r[0] for r in rows][:3] == ["bad", "gone", "stuck"]  # worst status first
    assert {r[0] for r in rows[3:]} == {"flat", "ok"} and len(rows) == 5
    gone = rows[1]
    assert 0.6 < gone[3] < 0.7  # 4 of 12 expected readings came
    assert h.attention(now, 1) == rows[:1]


def test_partitions_merge_and_state_round_trips() -> None:
    a, b = StationHealth(), StationHealth()
    feed(a, "A", [900.0 * i for i in range(5)])
    feed(b, "B", [900.0 * i for i in range(5)] + [900.0 * 9])
    summary, missing, worst = merge_health([(a, 900.0 * 9), (b, 900.0 * 9)], 5)
    assert summary["silent"] == 1 and summary["ok"] == 1 and missing == 4
    assert [w[0] for w in worst] == ["A", "B"]
    c = loads(dumps(b))
    assert isinstance(c, StationHealth)
    assert c.summary(900.0 * 9) == b.summary(900.0 * 9) and c.missing == b.missing


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(1.0, 5000.0), min_size=1, max_size=60),
       now_after=st.floats(0.0, 1e5))
def test_counts_stay_consistent_for_any_arrival_times(gaps: list[float],
                                                     now_after: float) -> None:
    h = StationHealth()
    t = 0.0
    times = [t]
    for g in gaps:
        t += g
        times.append(t)
    feed(h, "S", times)
    now = t + now_after
    summary = h.summary(now)
    assert sum(summary.values()) == 1 and set(summary) == set(STATUSES)
    assert h.missing >= 0
    exp = h.expected("S", "pm25", now)
    assert exp != exp or exp >= 1.0  # nan while learning, else at least the first reading
