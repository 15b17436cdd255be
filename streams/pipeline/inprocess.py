"""The whole processing path in one process, for evaluation and tests: the same stages
the faust agents call (:mod:`streams.pipeline.stages`), with records routed to partitions
as a live worker routes them, so ``tocsin eval replay`` and a live worker give the same
answers for the same events (see "Replay and live" in docs/architecture.md)."""

from __future__ import annotations

import math

from streams.core.regions import RegionRegistry
from streams.core.schemas import (
    Anomaly,
    Condition,
    DeadLetter,
    EntityRiskRecord,
    Feedback,
    Warning,
)
from streams.core.settings import TocsinSettings
from streams.ingest.ingestor import Origin
from streams.pipeline.stages import CorrelationStage, SourceStage, partition_for


class Pipeline:
    """Everything in one process, for evaluation and tests."""

    def __init__(self, settings: TocsinSettings, registry: RegionRegistry) -> None:
        self.settings = settings
        self.sources = SourceStage(settings, registry)
        self.correlation = CorrelationStage(settings, expect_all_sources=False,
                                            catalogue=self.sources.catalogue,
                                            zone=settings.zone(registry.timezone))
        self._wm: dict[tuple[str, int], float] = {}
        self.dead_letters: list[DeadLetter] = []
        self.anomalies: list[Anomaly] = []
        self.warnings: list[Warning] = []  # the correlator's (incidents)
        # limit pre-warnings (not incidents: never correlated, never returned by feed)
        self.prewarnings: list[Warning] = []
        self.conditions: list[Condition] = []
        self.entity_records: list[EntityRiskRecord] = []  # tocsin.entities.risk

    def feed(self, source: str, raw: bytes, origin: Origin) -> list[Warning]:
        step = self.sources.process(source, raw, origin)
        if step.dead is not None:
            self.dead_letters.append(step.dead)
        n = self.settings.partitions
        self.prewarnings.extend(self.sources.take_prewarnings())
        # entity risk: its topic records, and its warnings (published as the worker does)
        entities = self.sources.take_entities()
        self.entity_records.extend(entities.records)
        out: list[Warning] = list(entities.warnings)
        for a in step.anomalies:
            if a.city:  # to every partition, as a live ingest agent sends it
                for part in range(n):
                    out.extend(self.correlation.add(part, a, 0.0))
                continue
            if a.via is None:  # neighbour copies are routing, not new anomalies
                self.anomalies.append(a)
            out.extend(self.correlation.add(partition_for(a.region.encode(), n), a, 0.0))
        # a live ingest agent sends its watermark after each batch; here, after each record
        wm = self.sources.watermark(source, origin.partition)
        if wm is not None and wm > self._wm.get((source, origin.partition), -math.inf):
            self._wm[source, origin.partition] = wm
            for part in range(n):
                self.correlation.watermark(part, source, origin.partition, wm, 0.0)
                out.extend(self.correlation.release(part, 0.0))
            self.conditions.extend(self.correlation.take_conditions())
        self.warnings.extend(out)
        return out

    @property
    def published(self) -> list[Warning]:
        """Every warning version a live worker publishes on ``tocsin.warnings`` for the
        same input: the correlator's (incidents, entity risk) and the limit pre-warnings."""
        return self.warnings + self.prewarnings

    def feedback(self, fb: Feedback) -> list[Warning]:
        """A duty officer's decision, routed like the live worker routes it (by region)."""
        part = partition_for(fb.region.encode(), self.settings.partitions)
        out = self.correlation.add(part, fb, 0.0)
        out.extend(self.correlation.release(part, 0.0))
        self.warnings.extend(out)
        return out

    def finish(self) -> list[Warning]:
        """End of input: correlate whatever the reorder buffers still hold."""
        out: list[Warning] = []
        for part in range(self.settings.partitions):
            out.extend(self.correlation.release(part, 0.0))
        out.extend(self.correlation.flush())
        self.conditions.extend(self.correlation.take_conditions())
        self.warnings.extend(out)
        return out
