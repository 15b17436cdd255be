"""The faust application: ingest+detect agents on the three source topics, a correlate agent
on the anomalies topic, a feedback agent, and the dead-letter topic.

Agents take events in batches (``take_events``) and send their outputs once per batch;
a batch is acknowledged only after its outputs are delivered (at-least-once). Warnings go
out through the :class:`~streams.runtime.publisher.Publisher` (its sinks: the Kafka
topics, Alertmanager, Grafana); checkpoints, offsets and restores are the
:class:`~streams.runtime.checkpointer.Checkpointer`'s."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from streams.core.errors import validation_message
from streams.core.regions import RegionRegistry
from streams.core.schemas import (
    ANOMALY_RECORD,
    Anomaly,
    Feedback,
    SourceWatermark,
    check_feedback,
)
from streams.core.settings import TocsinSettings
from streams.core.topics import (
    ANOMALIES,
    CHECKPOINTS,
    DEADLETTER,
    FEEDBACK,
    SOURCE_TOPICS,
    topic_name,
)
from streams.ingest.ingestor import Origin, dead_letter
from streams.pipeline.entities import ENTITY_SCENARIO
from streams.pipeline.stages import CorrelationStage, SourceStage
from streams.runtime.app import make_app, make_topic, watch_broker
from streams.runtime.checkpointer import Checkpointer
from streams.runtime.metrics import TocsinMetrics
from streams.runtime.publisher import build_publisher
from streams.runtime.station_metrics import MAX_ATTENTION

log = logging.getLogger("tocsin.worker")


def on_processing_error(topic: str, partition: int, offset: int, exc: BaseException) -> None:
    """Called for a record whose processing raised: the record goes to the dead-letter topic."""
    log.error("processing failed for %s[%d]@%d: %s: %s; record sent to the dead-letter topic",
              topic, partition, offset, type(exc).__name__, exc)


class Worker:
    """Holds the faust app and runs the agents. Checkpointing is the
    :class:`~streams.runtime.checkpointer.Checkpointer`'s (``checkpointer``), publishing
    warnings the :class:`~streams.runtime.publisher.Publisher`'s (``publisher``)."""

    def __init__(self, settings: TocsinSettings, registry: RegionRegistry) -> None:
        self.settings = settings
        self.sources = SourceStage(settings, registry)
        self.correlation = CorrelationStage(settings, catalogue=self.sources.catalogue,
                                            zone=settings.zone(registry.timezone))
        self.registry = registry
        self.dead_sent = 0
        self.processed: dict[str, int] = {}  # records fully handled, per agent
        self.metrics = TocsinMetrics(
            CollectorRegistry(), regions=registry.ids(),
            region_coords={r: (registry.get(r).name, registry.get(r).lat, registry.get(r).lon)
                           for r in registry.ids()},
            scenarios=[*(t.name for t in self.correlation.templates.scenarios), ENTITY_SCENARIO],
            app_id=settings.app_id, partitions=settings.partitions,
            max_signals=settings.metrics_max_signals)
        self.metrics.add_signal_reader(self.sources.signals)
        self.metrics.add_entity_reader(lambda: self.sources.entity_top(settings.entity_risk_top))
        self.app = make_app(settings)
        self.deadletter_topic = self._topic(DEADLETTER)
        self.anomalies_topic = self._topic(ANOMALIES)
        self.feedback_topic = self._topic(FEEDBACK)
        self._agent_topics = {topic_name(settings, b) for b in (
            *SOURCE_TOPICS.values(), ANOMALIES, FEEDBACK)}
        self.publisher, self.cap = build_publisher(settings, registry, self.correlation.templates,
                                                   self.metrics, self.send, self._topic)
        self.checkpointer = Checkpointer(
            settings, self.app, self.metrics, sources=self.sources,
            correlation=self.correlation, cap=self.cap, topic=self._topic(CHECKPOINTS),
            agent_topics=self._agent_topics, send=self.send)
        self._connect()

    def _topic(self, base: str) -> Any:
        return make_topic(self.app, self.settings, base)

    def _connect(self) -> None:
        """The agents, timers, tasks and signal handlers."""
        app, s, cp = self.app, self.settings, self.checkpointer
        app.agent(self.feedback_topic, name="tocsin.feedback")(self._feedback)
        for source, base in SOURCE_TOPICS.items():
            app.agent(self._topic(base), name=f"tocsin.ingest.{source}")(
                self._ingest_agent(source))
        app.agent(self.anomalies_topic, name="tocsin.correlate")(self._correlate)
        app.timer(10.0)(self._report)
        app.timer(1.0)(self._flush_idle)
        app.task(self.publisher.start)
        app.task(self._watch_broker)
        app.timer(s.checkpoint_interval_s)(cp.tick)
        app.on_before_shutdown.connect(cp.final)
        app.on_before_shutdown.connect(self.publisher.stop)
        app.on_rebalance_complete.connect(self._on_rebalance)
        app.on_partitions_revoked.connect(cp.on_revoked)
        app.on_partitions_assigned.connect(cp.on_assigned)

    async def _on_rebalance(self, *args: Any, **kwargs: Any) -> None:
        assigned = self.app.consumer.assignment()
        self.metrics.observe_assignment((tp.topic, tp.partition) for tp in assigned)
        log.info("rebalance complete: %d partitions assigned", len(assigned))

    async def _watch_broker(self) -> None:
        await watch_broker(self.settings, self.metrics)

    def _lag(self, events: list[Any]) -> None:
        """Consumer lag of the partitions in this batch (high watermark - next offset)."""
        self.metrics.observe_batch_lag(self.app.consumer,
                                       [ev.message for ev in events])

    # -- agents ---------------------------------------------------------------------------
    def _ingest_agent(self, source: str) -> Any:
        async def ingest(stream: Any) -> AsyncIterator[None]:
            s = self.settings
            async for events in stream.take_events(s.batch_size, s.batch_within_s):
                async with self.checkpointer.batch(f"ingest.{source}"):
                    await self._ingest_batch(source, events)
                yield None

        ingest.__name__ = f"ingest_{source}"
        return ingest

    async def _ingest_batch(self, source: str, events: list[Any]) -> None:
        s = self.settings
        started = time.perf_counter()
        pending: list[Awaitable[Any]] = []
        touched: set[int] = set()
        dead_reasons: Counter[str] = Counter()
        found: list[Anomaly] = []
        for ev in events:
            m = ev.message
            if not self.checkpointer.accept(m):
                continue
            self.checkpointer.done(m)
            touched.add(m.partition)
            origin = Origin(m.topic, m.partition, m.offset, m.key)
            raw = ev.value if isinstance(ev.value, bytes) else bytes(ev.value or b"")
            try:
                step = self.sources.process(source, raw, origin)
            except Exception as exc:  # a bug must not stop the stream nor lose data
                on_processing_error(m.topic, m.partition, m.offset, exc)
                d = dead_letter(raw, origin, f"processing error: {exc!r}",
                                "processing_error")
                pending.append(await self._send(self.deadletter_topic, None,
                                                d.model_dump_json().encode()))
                dead_reasons["processing_error"] += 1
                continue
            if step.dead is not None:
                pending.append(await self._send(
                    self.deadletter_topic, m.key, step.dead.model_dump_json().encode()))
                self.dead_sent += 1
                dead_reasons[step.dead.error_type] += 1
            found.extend(step.anomalies)
            for a in step.anomalies:
                if a.city:  # the common-mode view: every correlate partition gets it
                    body = a.model_dump_json().encode()
                    for target in range(s.partitions):
                        pending.append(await self._send(
                            self.anomalies_topic, None, body, partition=target))
                    continue
                pending.append(await self._send(
                    self.anomalies_topic, a.region.encode(),
                    a.model_dump_json().encode()))
        pending.extend(await self._send_watermarks(source, touched))
        pending.extend(self.publisher.publish_detected(self.sources))
        detect_s = time.perf_counter() - started
        if pending:
            await asyncio.gather(*pending)
        self._observe_ingest(source, touched, dead_reasons, found, detect_s, len(events))
        self.metrics.observe_batch(f"ingest.{source}", time.perf_counter() - started)
        self._lag(events)
        self.processed[source] = self.processed.get(source, 0) + len(events)

    async def _send_watermarks(self, source: str, touched: set[int]) -> list[Awaitable[Any]]:
        """After a batch's anomalies: tell every correlate partition how far each source
        partition has got, so it can release anomalies in event-time order."""
        pending: list[Awaitable[Any]] = []
        for part in sorted(touched):
            wm = self.sources.watermark(source, part)
            if wm is None:
                continue
            marker = SourceWatermark(
                source=source, partition=part,
                watermark=datetime.fromtimestamp(wm, UTC),
            ).model_dump_json().encode()
            for target in range(self.settings.partitions):
                pending.append(await self._send(
                    self.anomalies_topic, None, marker, partition=target))
        return pending

    def _observe_ingest(self, source: str, touched: set[int], dead_reasons: Counter[str],
                        found: list[Anomaly], detect_s: float, n_events: int) -> None:
        c = self.sources.counters
        self.metrics.observe_source(
            source, {"received": c.received[source], "valid": c.valid[source],
                     "duplicate": c.duplicate[source]},
            self.sources.late(source), dead_reasons,
            max((w for p in touched
                 if (w := self.sources.watermark(source, p)) is not None),
                default=None),
            detect_s, n_events)
        self.metrics.observe_anomalies(found)
        if source == "env":
            self.metrics.observe_faults(self.sources.sensor_faults())

    async def _correlate(self, stream: Any) -> AsyncIterator[None]:
        s = self.settings
        async for events in stream.take_events(s.batch_size, s.batch_within_s):
            async with self.checkpointer.batch("correlate"):
                await self._correlate_batch(events)
            yield None

    async def _correlate_batch(self, events: list[Any]) -> None:
        started = time.perf_counter()
        pending: list[Awaitable[Any]] = []
        touched: set[int] = set()
        wall = time.monotonic()
        for ev in events:
            m = ev.message
            if not self.checkpointer.accept(m):
                continue
            self.checkpointer.done(m)
            raw = ev.value if isinstance(ev.value, bytes) else bytes(ev.value or b"")
            try:
                rec = ANOMALY_RECORD.validate_json(raw)
            except (ValidationError, ValueError) as exc:
                on_processing_error(m.topic, m.partition, m.offset, exc)
                d = dead_letter(raw, Origin(m.topic, m.partition, m.offset, m.key),
                                f"bad anomaly record: {validation_message(exc)}", "schema")
                pending.append(await self._send(self.deadletter_topic, m.key,
                                                d.model_dump_json().encode()))
                continue
            self.publisher.publish(self.correlation.add(m.partition, rec, wall))
            touched.add(m.partition)
        for part in sorted(touched):
            self.publisher.publish(self.correlation.release(part, wall))
        self.publisher.publish_conditions(self.correlation.take_conditions())
        await self.publisher.flush()
        if pending:
            await asyncio.gather(*pending)
        m = self.metrics
        m.observe_batch("correlate", time.perf_counter() - started)
        m.batch_events.labels("correlate").inc(len(events))
        m.reorder_held.set(self.correlation.held())
        m.observe_common_mode(self.correlation.common_mode())
        self._lag(events)
        self.processed["correlate"] = self.processed.get("correlate", 0) + len(events)

    async def _feedback(self, stream: Any) -> AsyncIterator[None]:
        """Validate duty officers' decisions and forward them to the correlator that holds
        the region (through the anomalies topic, keyed by region); bad ones are
        dead-lettered with the reason."""
        s = self.settings
        async for events in stream.take_events(s.batch_size, s.batch_within_s):
            async with self.checkpointer.batch("feedback"):
                await self._feedback_batch(events)
            yield None

    async def _feedback_batch(self, events: list[Any]) -> None:
        from detectors.fusion.feedback import Decision, InvalidDecision

        pending: list[Awaitable[Any]] = []
        for ev in events:
            m = ev.message
            if not self.checkpointer.accept(m):
                continue
            self.checkpointer.done(m)
            origin = Origin(m.topic, m.partition, m.offset, m.key)
            raw = ev.value if isinstance(ev.value, bytes) else bytes(ev.value or b"")
            try:
                fb = check_feedback(Feedback.model_validate_json(raw))
                Decision(fb.warning_id, fb.action, fb.by, fb.at.timestamp(), fb.reason)
            except (ValidationError, InvalidDecision, ValueError, OverflowError) as exc:
                d = dead_letter(raw, origin, f"bad feedback: {validation_message(exc)}",
                                "schema")
                pending.append(await self._send(self.deadletter_topic, m.key,
                                                d.model_dump_json().encode()))
                continue
            pending.append(await self._send(self.anomalies_topic, fb.region.encode(),
                                            fb.model_dump_json().encode()))
        if pending:
            await asyncio.gather(*pending)
        self.processed["feedback"] = self.processed.get("feedback", 0) + len(events)

    async def _flush_idle(self) -> None:
        """Input stopped: correlate what the reorder buffers still hold."""
        if not self.correlation.held():
            return
        async with self.checkpointer.batch("flush"):
            held = self.correlation.held_by_partition()
            self.publisher.publish(self.correlation.flush_idle(time.monotonic()))
            self.publisher.publish_conditions(self.correlation.take_conditions())
            after = self.correlation.held_by_partition()
            self.checkpointer.mark_dirty(p for p, n in held.items() if after.get(p) != n)
            await self.publisher.flush()

    async def send(self, topic: Any, key: bytes | None, value: bytes,
                   partition: int | None = None) -> Awaitable[Any]:
        """Queue one record: the one way out to Kafka of the agents, the publisher and the
        checkpointer (through :meth:`_send`, which tests replace)."""
        return await self._send(topic, key, value, partition)

    @staticmethod
    async def _send(topic: Any, key: bytes | None, value: bytes,
                    partition: int | None = None) -> Awaitable[Any]:
        """Queue one record; the returned future resolves once the broker has it."""
        fut: Awaitable[Any] = await topic.send(key=key, value=value, partition=partition)
        return fut

    async def _report(self) -> None:
        self.metrics.tracked_series.set(self.sources.n_series)
        c = self.sources.counters
        summary, missing, worst = self.sources.station_health(MAX_ATTENTION)
        self.metrics.stations.observe(summary, c.valid["env"], missing, worst)
        self.publisher.notify_stations(worst)
        log.info("received=%s valid=%s dead=%s duplicate=%s anomalies=%d warnings=%d at %s",
                 c.received, c.valid, c.dead, c.duplicate, c.anomalies,
                 self.publisher.warnings_sent,
                 datetime.now(UTC).isoformat(timespec="seconds"))

    def serve_metrics(self) -> None:
        """Serve /metrics on ``metrics_addr:metrics_port`` (a daemon thread; 0: none)."""
        self.metrics.serve(self.settings.metrics_addr, self.settings.metrics_port)

    def run(self, loglevel: str = "info") -> None:
        """Run the worker until stopped (SIGINT/SIGTERM)."""
        from streams.core.topics import check_topics

        self.serve_metrics()  # first: an outage at start shows on tocsin_broker_reachable
        check_topics(self.settings)  # missing or unevenly partitioned topics: refuse
        if self.settings.uvloop:
            try:
                import uvloop
            except ImportError:
                log.warning("uvloop is not installed: running on asyncio's default loop")
            else:
                uvloop.install()
        worker = faust.Worker(self.app, loglevel=loglevel, quiet=True)
        worker.execute_from_commandline()
