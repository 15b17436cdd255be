"""Fire on arrival (issue 18): warnings go out when their evidence arrives, and whatever
the arrival order, the incidents that stand and their final versions are the event-time
correlation's (the replay contract in docs/architecture.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.schemas import Anomaly, Feedback, Warning
from streams.core.settings import TocsinSettings
from streams.pipeline.stages import CorrelationStage, partition_for
from tests.live import incidents, rewrites, withdrawn

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
KINDS = {"env": ("ecology_bureau", "env:water_cod"),
         "complaint": ("citizen_hotline", "complaint:odor"),
         "market": ("market_regulation", "market:inspection_fail")}


def anomaly(i: int, source: str, region: str, minutes: float, p: float) -> Anomaly:
    dept, kind = KINDS[source]
    return Anomaly(anomaly_id=f"a{i}", kind=kind, source=source,  # type: ignore[arg-type]
                   department=dept, region=region, signal=f"{kind}:{region}", detector="d",
                   observed=9.0, expected=1.0, score=5.0, p_value=p,
                   event_time=T0 + timedelta(minutes=minutes), event_ids=[f"e{i}"])


def run(stream: list[Anomaly], early: bool, marks: bool) -> list[Warning]:
    """Feed ``stream`` in this (arrival) order; with ``marks``, each source reports its
    watermark after each record, as ingest agents do, and a live worker's buffer waits
    for every source partition (one that has not reported holds event time back)."""
    s = TocsinSettings(early_firing=early)
    stage = CorrelationStage(s, expect_all_sources=marks)
    out: list[Warning] = []
    seen: dict[str, float] = {}
    for a in stream:
        part = partition_for(a.region.encode(), s.partitions)
        out += stage.add(part, a, 0.0)
        if marks:
            t = max(seen.get(a.source, 0.0), a.event_time.timestamp())
            seen[a.source] = t
            for sp in range(s.partitions):
                stage.watermark(part, a.source, sp, t, 0.0)
            out += stage.release(part, 0.0)
    return out + stage.flush()


def test_a_warning_fires_when_its_decisive_anomaly_arrives_and_is_confirmed_silently() -> None:
    stream = [anomaly(1, "env", "harbour", 0, 1e-9), anomaly(2, "complaint", "harbour", 40, 1e-4)]
    s = TocsinSettings()
    stage = CorrelationStage(s, expect_all_sources=False)
    part = partition_for(b"harbour", s.partitions)
    assert stage.add(part, stream[0], 0.0) == []
    fired = stage.add(part, stream[1], 0.0)  # no watermark has moved: fired on arrival
    assert [(w.status, w.version) for w in fired] == [("new", 1)]
    assert stage.held() == 2
    assert stage.flush() == []  # the event-time correlation reaches the same version


def test_a_dismissal_cancels_on_arrival_and_event_time_agrees() -> None:
    stream = [anomaly(1, "env", "harbour", 0, 1e-9), anomaly(2, "complaint", "harbour", 40, 1e-4)]
    s = TocsinSettings()
    stage = CorrelationStage(s, expect_all_sources=True)  # event time held back throughout
    part = partition_for(b"harbour", s.partitions)
    w = (stage.add(part, stream[0], 0.0) + stage.add(part, stream[1], 0.0))[0]
    fb = Feedback(warning_id=w.warning_id, region="harbour", action="dismiss", by="op-7",
                  at=T0 + timedelta(hours=1), reason="drill")
    out = stage.add(part, fb, 0.0)
    assert [(x.status, x.version, x.history[0].reason) for x in out] == [
        ("cancelled", 2, "drill")]
    assert stage.flush() == []  # applied again at its event time: the same version


def test_without_early_firing_the_warning_waits_for_event_time() -> None:
    stream = [anomaly(1, "env", "harbour", 0, 1e-9), anomaly(2, "complaint", "harbour", 40, 1e-4)]
    s = TocsinSettings(early_firing=False)
    stage = CorrelationStage(s, expect_all_sources=False)
    part = partition_for(b"harbour", s.partitions)
    assert stage.add(part, stream[0], 0.0) + stage.add(part, stream[1], 0.0) == []
    assert [w.status for w in stage.flush()] == ["new"]


def test_a_silent_department_holds_no_warning_back() -> None:
    # the market office sends nothing all night: a live worker expects its partitions,
    # whose watermarks never move, yet the pollution warning goes out on arrival
    s = TocsinSettings()
    stage = CorrelationStage(s, expect_all_sources=True)
    part = partition_for(b"harbour", s.partitions)
    stage.add(part, anomaly(1, "env", "harbour", 0, 1e-9), 0.0)
    fired = stage.add(part, anomaly(2, "complaint", "harbour", 40, 1e-4), 0.0)
    assert [w.scenario for w in fired] == ["pollution"]
    assert stage.release(part, 1.0) == []  # event time itself is still held back


def test_an_early_warning_arrival_order_made_is_withdrawn() -> None:
    # arrival order: a strong odour burst and a COD spike fire early; a stronger, earlier
    # pair arrives late (within the allowed lateness) and in event time opens the
    # incident first, with the late COD reading as its first evidence
    stream = [anomaly(1, "complaint", "harbour", 50, 1e-4), anomaly(2, "env", "harbour", 55, 1e-9),
              anomaly(3, "env", "harbour", 10, 1e-9), anomaly(4, "complaint", "harbour", 20, 1e-4)]
    out = run(stream, early=True, marks=False)
    exact = run(stream, early=False, marks=False)
    assert incidents(out) == incidents(exact)
    gone = [w for w in out if withdrawn(w)]
    assert gone and all(w.warning_id not in incidents(exact) for w in gone)
    assert rewrites(out) == []


events = st.lists(
    st.tuples(st.sampled_from(sorted(KINDS)), st.sampled_from(["harbour", "old-town"]),
              st.integers(0, 24 * 60), st.sampled_from([1e-12, 1e-8, 1e-5, 1e-3, 0.03])),
    min_size=2, max_size=24)


@settings(max_examples=25, deadline=None)
@given(evs=events, order=st.randoms(use_true_random=False), marks=st.booleans())
def test_any_arrival_order_gives_the_event_time_incidents_and_final_versions(
        evs: list[tuple[str, str, int, float]], order: object, marks: bool) -> None:
    """Each department's anomalies arrive in event-time order (one partition each), the
    departments interleaved at random and, with ``marks``, moving event time as they go:
    the warnings that stand, and their final versions, are exactly those of the
    event-time correlation, and no (id, version) is published twice differently."""
    stream = [anomaly(i, src, reg, m, p) for i, (src, reg, m, p) in enumerate(evs)]
    exact = run(sorted(stream, key=lambda a: (a.event_time, a.anomaly_id)), False, False)
    by_source = {src: sorted((a for a in stream if a.source == src),
                             key=lambda a: a.event_time) for src in KINDS}
    shuffled: list[Anomaly] = []
    while any(by_source.values()):
        src = order.choice([k for k, v in by_source.items() if v])  # type: ignore[attr-defined]
        shuffled.append(by_source[src].pop(0))
    out = run(shuffled, True, marks)
    assert incidents(out) == incidents(exact)
    assert rewrites(out) == []  # (and every other id was withdrawn in the end)
