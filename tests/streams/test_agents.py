"""The faust agents, driven through faust's ``agent.test_context()`` (no broker).

Outgoing records are captured by replacing ``Worker._send``; everything else (batching,
ingest, detection, the watermark markers, the correlate agent's reorder buffer) is the
real code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.core.regions import RegionRegistry
from streams.core.schemas import (
    ANOMALY_RECORD,
    Anomaly,
    DeadLetter,
    Feedback,
    SourceWatermark,
    Warning,
)
from streams.core.settings import TocsinSettings
from streams.runtime.worker import Worker

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def make_worker(tmp_path: Path, registry: RegionRegistry,
                **overrides: Any) -> tuple[Worker, list[tuple[str, Any]]]:
    settings = TocsinSettings(**{
        "app_id": f"agents-{tmp_path.name}", "topic_prefix": "", "data_dir": tmp_path,
        "batch_size": 50, "batch_within_s": 0.05, "web_enabled": False, **overrides,
    })
    worker = Worker(settings, registry)
    sent: list[tuple[str, Any]] = []

    async def capture(topic: Any, key: bytes | None, value: bytes,
                      partition: int | None = None) -> Awaitable[Any]:
        sent.append((topic.get_topic_name(), (key, value, partition)))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    worker._send = capture  # type: ignore[method-assign]
    return worker, sent


def reading(i: int, value: float, t: datetime) -> bytes:
    return json.dumps({
        "reading_id": f"r-{i}", "sensor_id": "WQ-harbour", "metric": "water_cod",
        "value": value, "unit": "mg/L", "region": "harbour",
        "observed_at": t.isoformat(), "department": "ecology_bureau",
    }).encode()


_OFFSETS: dict[tuple[int, str], int] = {}


async def drive(worker: Worker, name: str, records: list[bytes], key: bytes) -> None:
    """Put ``records`` into agent ``name`` and wait until it has handled all of them."""
    agent = worker.app.agents[f"tocsin.{name.replace('_', '.')}"]
    counter = name.split("_")[-1]
    target = worker.processed.get(counter, 0) + len(records)
    async with agent.test_context() as ctx:
        # offsets carry on from the previous drive of this agent, as on a real topic (the
        # worker skips offsets its state already covers)
        ctx.sent_offset = _OFFSETS.get((id(worker), name), 0)
        _OFFSETS[id(worker), name] = ctx.sent_offset + len(records)
        for raw in records:
            await ctx.put(raw, key=key, partition=1, wait=False)
        for _ in range(1000):
            if worker.processed.get(counter, 0) >= target:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"agent {name} handled {worker.processed} of {target} records")


def topic_of(sent: list[tuple[str, Any]], suffix: str) -> list[tuple[Any, ...]]:
    return [v for name, v in sent if name.endswith(suffix)]


def test_ingest_agent_dead_letters_bad_records_and_reports_watermarks(
    tmp_path: Path, registry: RegionRegistry
) -> None:
    worker, sent = make_worker(tmp_path, registry)
    good = [reading(i, 20.0 + (i % 3) * 0.1, T0 + timedelta(minutes=15 * i)) for i in range(10)]
    bad = [b"\xff\xfe", b'{"reading_id": 1}', reading(99, 1.0, T0).replace(b"harbour", b"atlantis")]
    asyncio.run(drive(worker, "ingest_env", good + bad, b"harbour"))

    dead = [DeadLetter.model_validate_json(v) for _, v, _ in topic_of(sent, "deadletter")]
    assert [d.error_type for d in dead] == ["encoding", "schema", "unknown_region"]
    assert [d.partition for d in dead] == [1, 1, 1]
    assert [d.offset for d in dead] == [10, 11, 12]  # the source offsets, in order
    c = worker.sources.counters
    assert (c.received["env"], c.valid["env"], c.dead["env"]) == (13, 10, 3)

    # after the batch, every anomalies partition learns how far env partition 1 has got
    markers = [(ANOMALY_RECORD.validate_json(v), p) for _, v, p in topic_of(sent, "anomalies")]
    wms = [(m, p) for m, p in markers if isinstance(m, SourceWatermark)]
    assert {p for _, p in wms} == set(range(worker.settings.partitions))
    assert all(m.source == "env" and m.partition == 1 for m, _ in wms)
    assert max(m.watermark for m, _ in wms) == T0 + timedelta(minutes=15 * 9)


def test_ingest_agent_emits_anomaly_for_a_jump(tmp_path: Path, registry: RegionRegistry) -> None:
    worker, sent = make_worker(tmp_path, registry)
    records = [reading(i, 20.0 + (i % 5) * 0.2, T0 + timedelta(minutes=15 * i))
               for i in range(120)]
    records += [reading(120 + i, 60.0, T0 + timedelta(minutes=15 * (120 + i))) for i in range(3)]
    asyncio.run(drive(worker, "ingest_env", records, b"harbour"))
    records_out = [(r, p) for r, p in ((ANOMALY_RECORD.validate_json(v), p)
                                       for _, v, p in topic_of(sent, "anomalies"))
                   if isinstance(r, Anomaly)]
    anomalies = [r for r, _ in records_out]
    own = [a for a in anomalies if a.via is None and not a.city]
    # the jump, once by each view: the fast one (its first reading) and the slow one
    assert sorted(a.detector for a in own) == ["sensor_ensemble", "sustained_shift"]
    a = next(a for a in own if a.detector == "sensor_ensemble")
    # one copy per neighbour, keyed by the neighbour, so a boundary incident sees both sides
    copies = [c for c in anomalies if c.via is not None and c.anomaly_id.startswith(
        a.anomaly_id)]
    assert sorted(c.region for c in copies) == sorted(registry.neighbours("harbour"))
    assert all(c.via == "harbour" and c.p_value == a.p_value for c in copies)
    # and one copy to every anomalies partition, for the city-wide view
    city = [(c, p) for c, p in records_out if c.city and c.anomaly_id.startswith(a.anomaly_id)]
    assert sorted(p for _, p in city) == list(range(worker.settings.partitions))
    assert (a.kind, a.region, a.observed) == ("env:water_cod", "harbour", 60.0)
    assert a.expected == pytest.approx(20.4, abs=0.5)
    assert a.detector == "sensor_ensemble"
    assert a.event_ids == ["r-120"]  # the first high reading; its repeats are not re-sent


def test_correlate_agent_fires_on_arrival_and_confirms_in_event_time(
    tmp_path: Path, registry: RegionRegistry
) -> None:
    worker, sent = make_worker(tmp_path, registry)

    def anomaly(i: str, source: str, dept: str, kind: str, t: datetime) -> bytes:
        return Anomaly(
            anomaly_id=i, kind=kind, source=source, department=dept,  # type: ignore[arg-type]
            region="harbour", signal=f"{kind}:harbour", detector="d", observed=9.0,
            expected=1.0, score=6.0, p_value=1e-6, event_time=t, event_ids=[i],
        ).model_dump_json().encode()

    def mark(source: str, part: int, t: datetime) -> bytes:
        return SourceWatermark(source=source, partition=part,  # type: ignore[arg-type]
                               watermark=t).model_dump_json().encode()

    n = worker.settings.partitions
    later = T0 + timedelta(hours=13)  # 3 h past the anomalies below

    t1 = T0 + timedelta(hours=10)
    # the complaint arrives before the earlier reading: the early firing takes what has
    # arrived in event-time order, so the incident starts with the reading
    records = [
        anomaly("c1", "complaint", "citizen_hotline", "complaint:odor", t1 + timedelta(hours=1)),
        anomaly("e1", "env", "ecology_bureau", "env:water_cod", t1),
        # every source partition but one reports: the buffer releases nothing yet
        *[mark(src, p, later) for src in ("env", "complaint", "market") for p in range(n)
          if (src, p) != ("market", n - 1)],
        b"not an anomaly",
    ]
    asyncio.run(drive(worker, "correlate", records, b"harbour"))
    early = topic_of(sent, "warnings")  # fired on arrival, no watermark has passed them
    assert worker.correlation.held() == 2
    asyncio.run(drive(worker, "correlate", [mark("market", n - 1, later)], b"harbour"))
    assert worker.correlation.held() == 0
    # the authoritative correlation in event time reaches the same version: silent
    assert topic_of(sent, "warnings") == early

    warnings = [Warning.model_validate_json(v) for _, v, _ in early]
    assert [(w.status, w.version, w.scenario) for w in warnings] == [("new", 1, "pollution")]
    assert warnings[0].first_seen == t1
    assert [e.signal for e in warnings[0].evidence] == [
        "env:water_cod:harbour", "complaint:odor:harbour"]
    dead = [DeadLetter.model_validate_json(v) for _, v, _ in topic_of(sent, "deadletter")]
    assert len(dead) == 1 and dead[0].original_b64
    # the same version as CAP 1.2 on tocsin.warnings.cap, same key
    caps = topic_of(sent, "warnings.cap")
    assert len(caps) == 1 and caps[0][0] == warnings[0].warning_id.encode()
    assert b"urn:oasis:names:tc:emergency:cap:1.2" in caps[0][1]
    assert b"<msgType>Alert</msgType>" in caps[0][1]

    # a duty officer dismisses it: forwarded to the correlator, which cancels the warning
    fb = Feedback(warning_id=warnings[0].warning_id, region="harbour", action="dismiss",
                  by="op-7", at=t1 + timedelta(hours=2), reason="drill").model_dump_json()
    asyncio.run(drive(worker, "correlate", [fb.encode(), mark("market", n - 1, later)],
                      b"harbour"))
    warnings = [Warning.model_validate_json(v) for _, v, _ in topic_of(sent, "warnings")]
    assert [(w.status, w.version) for w in warnings] == [("new", 1), ("cancelled", 2)]
    assert warnings[1].history[0].reason == "drill"
    cancel = topic_of(sent, "warnings.cap")[-1][1]
    assert b"<msgType>Cancel</msgType>" in cancel and b"<references>" in cancel


def test_feedback_agent_forwards_good_decisions_and_dead_letters_bad_ones(
    tmp_path: Path, registry: RegionRegistry
) -> None:
    worker, sent = make_worker(tmp_path, registry)
    good = Feedback(warning_id="tw-harbour-1", region="harbour", action="acknowledge",
                    by="op-1", at=T0).model_dump_json().encode()
    no_reason = json.dumps({"warning_id": "tw-harbour-1", "region": "harbour",
                            "action": "dismiss", "by": "op-1", "at": T0.isoformat()}).encode()
    bad_action = json.dumps({"warning_id": "tw-harbour-1", "region": "harbour",
                             "action": "delete", "by": "op-1", "at": T0.isoformat()}).encode()
    asyncio.run(drive(worker, "feedback", [good, no_reason, bad_action, b"{"], b"harbour"))
    fwd = topic_of(sent, "anomalies")
    assert len(fwd) == 1 and fwd[0][0] == b"harbour"
    rec = ANOMALY_RECORD.validate_json(fwd[0][1])
    assert isinstance(rec, Feedback) and rec.action == "acknowledge"
    dead = [DeadLetter.model_validate_json(v) for _, v, _ in topic_of(sent, "deadletter")]
    assert len(dead) == 3
    assert "needs a reason" in dead[0].reason and "bad feedback" in dead[1].reason


def test_out_of_range_times_are_dead_lettered_not_fatal(
    tmp_path: Path, registry: RegionRegistry
) -> None:
    # (review finding) 0001-01-01T00:00+01:00 has no UTC equivalent
    worker, sent = make_worker(tmp_path, registry)
    bad = json.dumps({"warning_id": "tw-harbour-1", "region": "harbour", "action": "acknowledge",
                      "by": "op", "at": "0001-01-01T00:00:00+01:00"}).encode()
    good = Feedback(warning_id="tw-harbour-1", region="harbour", action="acknowledge",
                    by="op", at=T0).model_dump_json().encode()
    asyncio.run(drive(worker, "feedback", [bad, good], b"harbour"))
    assert len(topic_of(sent, "anomalies")) == 1
    dead = [DeadLetter.model_validate_json(v) for _, v, _ in topic_of(sent, "deadletter")]
    assert len(dead) == 1 and "out of range" in dead[0].reason
    worker2, sent2 = make_worker(tmp_path / "c", registry)
    bad_rec = json.dumps({"record": "feedback", **json.loads(bad)}).encode()
    asyncio.run(drive(worker2, "correlate", [bad_rec], b"harbour"))
    assert len(topic_of(sent2, "deadletter")) == 1
