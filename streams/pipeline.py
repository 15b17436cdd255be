"""The whole processing path without Kafka: ingest -> detect -> correlate.

The faust agents call these same stages, so ``tocsin eval replay`` (in-process) and a live
worker give the same answers for the same events."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from detectors.correlation import Correlator, Finding, IncidentVersion

from .detection import Detection, DetectParams
from .ingest import Ingestor, Origin
from .regions import RegionRegistry
from .schemas import Anomaly, DeadLetter, Evidence, Warning
from .settings import TocsinSettings


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _num(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def finding_to_anomaly(f: Finding) -> Anomaly:
    return Anomaly(
        anomaly_id=f.anomaly_id, kind=f.kind, source=f.source,
        department=f.department, region=f.region, signal=f.signal, detector=f.detector,
        observed=_num(f.observed), expected=_num(f.expected), score=round(f.score, 3),
        p_value=f.p_value, event_time=_dt(f.t), event_ids=list(f.event_ids),
    )


def anomaly_to_finding(a: Anomaly) -> Finding:
    return Finding(
        anomaly_id=a.anomaly_id, source=a.source, department=a.department, region=a.region,
        kind=a.kind, signal=a.signal, detector=a.detector, observed=a.observed,
        expected=a.expected, p_value=a.p_value, t=a.event_time.timestamp(),
        event_ids=tuple(a.event_ids),
    )


def version_to_warning(v: IncidentVersion, sent_at: datetime | None = None) -> Warning:
    return Warning(
        warning_id=v.warning_id, version=v.version, status=v.status,
        region=v.region, scenario=v.scenario, severity=v.severity,
        urgency=v.urgency, certainty=v.certainty, score=v.score,
        departments=list(v.departments), first_seen=_dt(v.first_seen),
        last_seen=_dt(v.last_seen),
        evidence=[
            Evidence(
                source=g.source, department=g.department,
                region=g.region, signal=g.signal, detector=g.detector,
                observed=_num(g.observed), expected=_num(g.expected), score=round(g.score, 3),
                p_value=g.p_value, event_time=_dt(g.t), event_ids=list(g.event_ids),
            )
            for g in v.evidence
        ],
        explanation=v.explanation, sent_at=sent_at,
    )


class CorrelationStage:
    """Wire-level wrapper of the correlator: anomalies in, warnings out."""

    def __init__(self, settings: TocsinSettings) -> None:
        self.correlator = Correlator(
            window_s=settings.correlation_window_s, quiet_s=settings.quiet_resolve_s
        )

    def process(self, a: Anomaly) -> list[Warning]:
        now = datetime.now(UTC)
        return [version_to_warning(v, now) for v in self.correlator.process(anomaly_to_finding(a))]


SOURCES = ("env", "complaint", "market")


@dataclass
class Counters:
    received: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    valid: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    dead: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    duplicate: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    anomalies: int = 0



@dataclass
class StepResult:
    dead: DeadLetter | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    duplicate: bool = False


def partition_for(key: bytes | None, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (murmur2, positive)."""
    if key is None:
        return 0
    from aiokafka.partitioner import murmur2

    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class SourceStage:
    """Ingest + detect for the three source topics (one instance per worker).

    Detector state (and its event-time watermark) is kept per partition: a partition's
    records arrive in producer order, so a replay and a live run see the same sequence."""

    def __init__(self, settings: TocsinSettings, registry: RegionRegistry) -> None:
        self.ingestor = Ingestor(registry, settings.dedup_window)
        self._params = DetectParams(lateness_s=settings.allowed_lateness_s)
        self._detection: dict[int, Detection] = {}
        self.counters = Counters()

    def detection(self, partition: int) -> Detection:
        d = self._detection.get(partition)
        if d is None:
            d = self._detection[partition] = Detection(self._params)
        return d

    def process(self, source: str, raw: bytes, origin: Origin) -> StepResult:
        c = self.counters
        c.received[source] += 1
        res = self.ingestor.ingest(source, raw, origin)
        if res.duplicate:
            c.duplicate[source] += 1
            return StepResult(duplicate=True)
        if res.dead is not None:
            c.dead[source] += 1
            return StepResult(dead=res.dead)
        assert res.record is not None
        c.valid[source] += 1
        found = self.detection(origin.partition).process(source, res.record)
        c.anomalies += len(found)
        return StepResult(anomalies=[finding_to_anomaly(f) for f in found])


class Pipeline:
    """Everything in one process, for evaluation and tests."""

    def __init__(self, settings: TocsinSettings, registry: RegionRegistry) -> None:
        self.sources = SourceStage(settings, registry)
        self.correlation = CorrelationStage(settings)
        self.dead_letters: list[DeadLetter] = []
        self.anomalies: list[Anomaly] = []
        self.warnings: list[Warning] = []

    def feed(self, source: str, raw: bytes, origin: Origin) -> list[Warning]:
        step = self.sources.process(source, raw, origin)
        if step.dead is not None:
            self.dead_letters.append(step.dead)
        out: list[Warning] = []
        for a in step.anomalies:
            self.anomalies.append(a)
            out.extend(self.correlation.process(a))
        self.warnings.extend(out)
        return out
