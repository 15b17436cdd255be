"""The whole processing path without Kafka: ingest -> detect -> correlate. The faust
agents call these same stages, so ``tocsin eval replay`` (in-process) and a live worker
give the same answers for the same events."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from detectors.fusion.correlation import Correlator, IncidentVersion
from detectors.fusion.early import EarlyFiring
from detectors.fusion.feedback import Decision, InvalidDecision
from detectors.fusion.ledger import Ledger
from detectors.fusion.reorder import EventTimeBuffer
from detectors.fusion.templates import DEFAULT_FILE, load_templates
from detectors.fusion.wording import Wording
from detectors.signals.catalogue import Catalogue
from detectors.signals.station_health import merge_health
from streams.core.regions import RegionRegistry
from streams.core.schemas import (
    SOURCES,
    Anomaly,
    Condition,
    DeadLetter,
    Feedback,
    SourceWatermark,
    Warning,
)
from streams.core.settings import TocsinSettings
from streams.core.signals import packaged, signals_for, with_signals
from streams.ingest.ingestor import Origin, ingestor_for
from streams.pipeline.detection import Detection, DetectParams, PreWarningViews
from streams.pipeline.entities import EntityViews
from streams.pipeline.records import (
    anomaly_to_finding,
    city_copy,
    condition_to_record,
    finding_to_anomaly,
    fusion_rule,
    neighbour_copies,
    version_to_warning,
)


@dataclass
class _CorrelationPartition:
    buffer: EventTimeBuffer[Anomaly | Feedback]
    correlator: Correlator
    last_input: float = 0.0  # wall clock (monotonic) of the last record seen
    ledger: Ledger = field(default_factory=Ledger)  # what has been published


class CorrelationStage:
    """Anomalies and source watermarks in, warnings out; one state per anomalies partition.

    Anomalies of one region always share an anomalies partition. Each anomaly fires on
    arrival (``early_firing``, :mod:`detectors.fusion.early`): the incidents the anomalies
    that have arrived open or extend are published at once. In front of each partition's
    authoritative correlator an event-time buffer releases anomalies sorted by event time
    once every source partition's watermark has passed them, so a live worker and an
    in-process replay reach the same incidents and final versions whatever the arrival
    order; a :class:`~detectors.fusion.ledger.Ledger` publishes only what is new and
    withdraws early warnings that do not stand. ``wall`` arguments are a monotonic clock
    (seconds).
    """

    def __init__(self, settings: TocsinSettings, expect_all_sources: bool = True,
                 catalogue: Catalogue | None = None, zone: tzinfo = UTC) -> None:
        self.settings = settings
        # a live worker waits for every source partition (or its idle timeout); the
        # in-process replay, whose input is already in file order, for those seen so far
        self._expected = [f"{src}/{p}" for src in SOURCES for p in range(settings.partitions)
                          ] if expect_all_sources else []
        self._parts: dict[int, _CorrelationPartition] = {}
        self._early: dict[int, EarlyFiring] = {}  # derived from _parts: never checkpointed
        self.templates = load_templates(settings.scenarios or DEFAULT_FILE)
        if catalogue is not None:  # its metrics' kinds join the templates they feed
            self.templates = with_signals(self.templates, catalogue)
        self.wording = Wording.of((catalogue or packaged()).words(), zone)

    def part(self, partition: int, wall: float = 0.0) -> _CorrelationPartition:
        p = self._parts.get(partition)
        if p is None:
            s = self.settings
            p = self._parts[partition] = _CorrelationPartition(
                EventTimeBuffer(s.allowed_lateness_s, s.reorder_idle_s, self._expected, wall),
                Correlator(window_s=s.correlation_window_s, quiet_s=s.quiet_resolve_s,
                           templates=self.templates, neighbour_decay=s.neighbour_decay,
                           lags={str(k): v for k, v in s.department_lags_s.items()},
                           wording=self.wording),
            )
        return p

    def add(self, partition: int, rec: Anomaly | SourceWatermark | Feedback,
            wall: float) -> list[Warning]:
        """Take one record; return the warnings it fires on arrival (early firing)."""
        p = self.part(partition, wall)
        p.last_input = wall
        if isinstance(rec, Anomaly):
            p.buffer.push(rec.event_time.timestamp(), rec.anomaly_id, rec)
            if self.settings.early_firing:
                return self._fire(partition, p, rec)
        elif isinstance(rec, Feedback):
            # in event-time order with the anomalies: a replay applies it at the same point
            p.buffer.push(rec.at.timestamp(), _feedback_key(rec), rec)
            if self.settings.early_firing:
                return self._fire(partition, p, rec)
        else:
            p.buffer.watermark(f"{rec.source}/{rec.partition}", rec.watermark.timestamp(), wall)
        return []

    def _fire(self, partition: int, p: _CorrelationPartition, rec: Anomaly | Feedback
              ) -> list[Warning]:
        """Fire on the arrival of ``rec`` (already in the buffer)."""
        early = self._early.get(partition)
        if early is None:  # new, or adopted from a checkpoint: what its buffer holds
            early = self._early[partition] = EarlyFiring(p.correlator)
            for _, held in p.buffer.held():
                _early_add(early, held)
        else:
            _early_add(early, rec)
        if isinstance(rec, Anomaly) and rec.city:
            return []
        fired = early.fire(p.correlator, rec.region)
        return self._publish(p, [pv for t, v in fired
                                 if (pv := p.ledger.publish(v, early_at=t)) is not None])

    def watermark(self, partition: int, source: str, src_partition: int, t: float,
                  wall: float) -> None:
        """Same as ``add`` of a ``SourceWatermark``, without building the record."""
        p = self.part(partition)
        p.last_input = wall
        p.buffer.watermark(f"{source}/{src_partition}", t, wall)

    def release(self, partition: int, wall: float) -> list[Warning]:
        """Correlate every anomaly of ``partition`` that is final by now."""
        p = self.part(partition)
        return self._correlate(partition, p.buffer.release(wall), p.buffer.released_until)

    def flush_idle(self, wall: float) -> list[Warning]:
        """Flush partitions with no input for ``reorder_idle_s``: the stream has stopped."""
        out: list[Warning] = []
        for part, p in list(self._parts.items()):
            if len(p.buffer) and wall - p.last_input > self.settings.reorder_idle_s:
                out.extend(self._correlate(part, p.buffer.flush(), math.inf))
        return out

    def flush(self) -> list[Warning]:
        """Correlate everything still held (end of a replay)."""
        out: list[Warning] = []
        for part, p in list(self._parts.items()):
            out.extend(self._correlate(part, p.buffer.flush(), math.inf))
        return out

    def common_mode(self) -> dict[str, int]:
        """Signal kinds city-wide now (per the correlators' event time), and in how many
        regions."""
        out: dict[str, int] = {}
        for p in self._parts.values():
            c = p.correlator
            for kind, n in c.city.active(c.watermark).items():
                out[kind] = max(out.get(kind, 0), n)
        return out

    def take_conditions(self) -> list[Condition]:
        """City-wide condition versions since the last call. Every partition's correlator
        sees the whole city (``city_copy``), so only partition 0's are published: one
        condition, whichever worker holds that partition."""
        out: list[Condition] = []
        now = datetime.now(UTC)
        for part, p in self._parts.items():
            taken = p.correlator.city.take()
            if part == 0:
                out.extend(condition_to_record(c, now, self.wording) for c in taken)
        return out

    def held(self) -> int:
        return sum(len(p.buffer) for p in self._parts.values())

    def held_by_partition(self) -> dict[int, int]:
        """Anomalies held in each partition's reorder buffer."""
        return {part: len(p.buffer) for part, p in self._parts.items()}

    def export(self, partition: int) -> _CorrelationPartition | None:
        """Partition ``partition``'s reorder buffer and correlator (for a checkpoint)."""
        return self._parts.get(partition)

    def adopt(self, partition: int, state: _CorrelationPartition | None, wall: float) -> None:
        """Take over ``partition`` from a checkpoint; ``wall`` restarts its idle clocks."""
        self._parts.pop(partition, None)
        self._early.pop(partition, None)
        if state is not None:
            state.buffer.rebase(wall)
            state.last_input = wall
            # the templates this worker loaded, not the pickled copy
            state.correlator.templates = self.templates.scenarios
            state.correlator.generic = self.templates.generic
            state.correlator.wording = self.wording
            self._parts[partition] = state

    def drop(self, partition: int) -> None:
        self._parts.pop(partition, None)
        self._early.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._parts)

    def _correlate(
        self, part: int, items: list[tuple[float, Anomaly | Feedback]],
        until: float,
    ) -> list[Warning]:
        """The authoritative correlator takes ``items`` (in event-time order), then event
        time moves to ``until`` (``inf``: everything held was flushed; nothing moves)."""
        p = self._parts[part]
        versions: list[IncidentVersion] = []
        for _, a in items:
            if isinstance(a, Feedback):
                if (d := _decision(a)) is not None:
                    versions.extend(p.correlator.feedback(d, a.region))
                continue
            versions.extend(p.correlator.process(anomaly_to_finding(a)))
        if math.isfinite(until):
            versions.extend(p.correlator.advance(until))  # resolve quiet incidents
        published = [pv for v in versions if (pv := p.ledger.publish(v)) is not None]
        # early warnings the correlator did not produce by now do not stand
        published.extend(p.ledger.retract(until))
        early = self._early.get(part)
        if early is not None:
            early.final(until)
        return self._publish(p, published)

    def _publish(self, p: _CorrelationPartition, versions: list[IncidentVersion]
                 ) -> list[Warning]:
        if not versions:
            return []
        now = datetime.now(UTC)
        return [version_to_warning(v, now, *fusion_rule(p.correlator, v)) for v in versions]


def _feedback_key(fb: Feedback) -> str:
    """A decision's key in the reorder buffer (after the anomalies of the same time)."""
    return f"~fb|{fb.warning_id}|{fb.action}|{fb.by}"


def _decision(fb: Feedback) -> Decision | None:
    try:
        return Decision(fb.warning_id, fb.action, fb.by, fb.at.timestamp(), fb.reason)
    except InvalidDecision:  # validated before it got here; never stop on it
        return None


def _early_add(early: EarlyFiring, rec: Anomaly | Feedback) -> None:
    if isinstance(rec, Anomaly):
        early.add(anomaly_to_finding(rec))
    elif (d := _decision(rec)) is not None:
        early.decide(d, rec.region, _feedback_key(rec))


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


def partition_for(key: bytes | None, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (murmur2, positive)."""
    if key is None:
        return 0
    from aiokafka.partitioner import murmur2

    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class SourceStage(EntityViews, PreWarningViews):
    """Ingest + detect for the three source topics (one instance per worker), entity risk.

    Detector state (and its event-time watermark) is kept per partition: a partition's
    records arrive in producer order, so a replay and a live run see the same sequence."""

    def __init__(self, settings: TocsinSettings, registry: RegionRegistry) -> None:
        #: the signal catalogue in force, read once (a bad one stops the start here)
        self.catalogue = signals_for(settings, registry.ids())
        self.ingestor = ingestor_for(settings, registry, self.catalogue)
        self.registry = registry
        self._params = DetectParams(lateness_s=settings.allowed_lateness_s,
                                    calendar=settings.holiday_calendar,
                                    directions=self.catalogue.directions(),
                                    catalogue=self.catalogue,
                                    entity_level=settings.entity_risk_level,
                                    zone=settings.zone(registry.timezone))
        self._detection: dict[int, Detection] = {}
        self.counters = Counters()

    def detection(self, partition: int) -> Detection:
        d = self._detection.get(partition)
        if d is None:
            d = self._detection[partition] = Detection(self._params)
        return d

    def watermark(self, source: str, partition: int) -> float | None:
        """Largest event time of ``source`` processed on ``partition`` (None before any)."""
        d = self._detection.get(partition)
        return None if d is None else d.watermark.get(source)

    @property
    def params(self) -> DetectParams:
        """The detection parameters every partition's ``Detection`` shares."""
        return self._params

    def export(self, partition: int) -> dict[str, object]:
        """Partition ``partition``'s detector and de-duplication state (for a checkpoint)."""
        return {"detection": self._detection.get(partition),
                "dedup": self.ingestor.dedup_state(partition)}

    def adopt(self, partition: int, state: dict[str, object]) -> None:
        """Take over ``partition`` from a checkpoint."""
        self.drop(partition)
        det, dedup = state.get("detection"), state.get("dedup")
        if isinstance(det, Detection):
            self._detection[partition] = det
        if isinstance(dedup, dict):
            self.ingestor.adopt_dedup(partition, dedup)

    def drop(self, partition: int) -> None:
        self._detection.pop(partition, None)
        self.ingestor.drop_dedup(partition)

    def late(self, source: str) -> int:
        """Records of ``source`` later than the allowed lateness, over all partitions."""
        return sum(d.late_events.get(source, 0) for d in self._detection.values())

    @property
    def n_series(self) -> int:
        return sum(d.n_series for d in self._detection.values())

    def sensor_faults(self) -> dict[str, int]:
        """Readings screened out as instrument faults so far, by fault kind."""
        out: dict[str, int] = {}
        for d in list(self._detection.values()):
            for kind, n in d.sensor_faults.items():
                out[kind] = out.get(kind, 0) + n
        return out

    def station_health(self, n: int) -> tuple[dict[str, int], int,
                                              list[tuple[str, str, str, float]]]:
        """Sensor series per status, readings missing so far, and the ``n`` series most
        in need of attention; each partition judged at its own newest sensor event time."""
        return merge_health([(d.health, now) for d in list(self._detection.values())
                             if (now := d.watermark.get("env")) is not None], n)

    def signals(self) -> list[tuple[str, str, str, float, float]]:
        """(region, source, signal kind, observed, expected), latest per partition."""
        out = []
        for d in list(self._detection.values()):
            for (region, source, kind), (o, e) in list(d.signals.items()):
                out.append((region, source, kind, o, e))
        return out

    def process(self, source: str, raw: bytes, origin: Origin) -> StepResult:
        c = self.counters
        c.received[source] += 1
        res = self.ingestor.ingest(source, raw, origin)
        if res.duplicate:
            c.duplicate[source] += 1
            return StepResult()
        if res.dead is not None:
            c.dead[source] += 1
            return StepResult(dead=res.dead)
        assert res.record is not None
        c.valid[source] += 1
        found = self.detection(origin.partition).process(source, res.record)
        c.anomalies += len(found)
        out = []
        for f in found:
            a = finding_to_anomaly(f)
            out.append(a)
            out.extend(neighbour_copies(a, self.registry))
            out.append(city_copy(a))
        return StepResult(anomalies=out)
