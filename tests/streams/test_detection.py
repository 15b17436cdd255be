"""The detect stage's count findings: strong anomalies and weak supporting evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.core.schemas import Complaint
from streams.pipeline.detection import Detection

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def complaint(i: int, t: datetime, category: str = "odor") -> Complaint:
    return Complaint(complaint_id=f"c-{i}", channel="app", category=category, text="smell",
                     region="harbour", received_at=t, department="citizen_hotline")


def test_weak_counts_are_reported_once_per_order_of_magnitude_then_the_anomaly() -> None:
    det = Detection()
    i = 0
    for h in range(0, 96, 8):  # a quiet category: one complaint every eight hours
        i += 1
        det.process("complaint", complaint(i, T0 + timedelta(hours=h)))
    burst = T0 + timedelta(hours=100)
    found = []
    for k in range(6):  # then a burst within the hour
        i += 1
        found += det.process("complaint", complaint(i, burst + timedelta(minutes=5 * k)))
    weak = [f for f in found if "~" in f.anomaly_id]
    strong = [f for f in found if "~" not in f.anomaly_id]
    assert weak and strong, found
    assert all(f.p_value >= det.p.alpha_count or f.observed < det.p.min_count for f in weak)
    assert all(f.p_value < det.p.alpha_weak for f in weak)
    decades = [int(f.anomaly_id.rsplit("~", 1)[1]) for f in weak]
    assert decades == sorted(set(decades))  # one per order of magnitude, increasing
    assert strong[0].p_value < det.p.alpha_count and len(strong) == 1  # once per bucket
    assert max(f.t for f in weak) <= strong[0].t
