"""The :class:`Publisher`: every batch of warnings, to every sink.

The sinks (:class:`streams.publish.sink.Sink`) are the Kafka outputs
(:mod:`streams.publish.kafka_sinks`: the warnings topic, the CAP topic when
``publish_cap`` is set, the sharing views and releases) and the notification sinks
(Alertmanager and Grafana, when their URLs are set: built at :meth:`Publisher.start`, as
they need the running loop). City-wide conditions go to the conditions topic. The worker
calls :meth:`Publisher.publish` during a batch and awaits :meth:`Publisher.flush` before
the batch ends."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from detectors.fusion.templates import TemplateSet
from detectors.signals.prewarning import SCENARIO as PREWARNING
from streams.core.regions import RegionRegistry
from streams.core.schemas import Condition, Warning
from streams.core.settings import TocsinSettings
from streams.core.topics import (
    CONDITIONS,
    ENTITY_RISK,
    RELEASES,
    WARNINGS,
    WARNINGS_CAP,
    view_topic,
)
from streams.pipeline.entities import ENTITY_SCENARIO, EntityStep
from streams.publish.grants import Grant, check_grants, load_grants
from streams.publish.kafka_sinks import CapSink, Outbox, Send, SharingSink, WarningsTopicSink
from streams.publish.sink import Sink
from streams.runtime.metrics import TocsinMetrics

if TYPE_CHECKING:
    from streams.pipeline.stages import SourceStage

log = logging.getLogger("tocsin.worker")


def notification_sinks(settings: TocsinSettings, metrics: TocsinMetrics) -> list[Sink]:
    """The Alertmanager and Grafana sinks the settings ask for (never block the stream)."""
    s, m = settings, metrics
    sinks: list[Sink] = []
    if s.alertmanager_url:
        from streams.publish.alertmanager import AlertmanagerSink

        sinks.append(AlertmanagerSink(
            s.alertmanager_url, runbook_url=s.runbook_url, dashboard_url=s.dashboard_url,
            resend_s=s.alertmanager_resend_s,
            on_result=lambda r: m.notifications.labels("alertmanager", r).inc()))
    if s.grafana_url:
        from streams.publish.grafana import AnnotationSink

        sinks.append(AnnotationSink(
            s.grafana_url,
            s.grafana_token.get_secret_value() if s.grafana_token else None,
            s.grafana_dashboard_uid,
            on_result=lambda r: m.notifications.labels("grafana", r).inc()))
    return sinks


class Publisher:
    """Fans warnings out to its sinks; conditions to ``conditions_topic``."""

    def __init__(self, settings: TocsinSettings, metrics: TocsinMetrics, outbox: Outbox,
                 sinks: list[Sink], conditions_topic: Any, entity_topic: Any = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.outbox = outbox
        self.kafka = list(sinks)
        self.notifiers: list[Sink] = []
        self.conditions_topic = conditions_topic
        self.entity_topic = entity_topic
        self.warnings_sent = 0

    @property
    def sinks(self) -> list[Sink]:
        return [*self.notifiers, *self.kafka]

    async def start(self) -> None:
        """Build the notification sinks and start every sink."""
        self.notifiers = notification_sinks(self.settings, self.metrics)
        for sink in self.sinks:
            await sink.start()

    async def stop(self, *args: Any, **kwargs: Any) -> None:
        for sink in self.sinks:
            await sink.stop()

    def publish(self, warnings: list[Warning]) -> None:
        """Hand new warning versions to every sink (no I/O: :meth:`flush` delivers)."""
        if not warnings:
            return
        self.metrics.observe_warnings(warnings)
        for w in warnings:
            log.info("warning %s v%d %s %s %s", w.warning_id, w.version, w.status,
                     w.region, w.scenario)
        self.warnings_sent += len(warnings)
        for sink in self.sinks:
            sink.submit(warnings)

    def notify_stations(self, rows: list[tuple[str, str, str, float]]) -> None:
        """Station-fault notices (the sinks that notify operators: Alertmanager)."""
        for sink in self.notifiers:
            notify = getattr(sink, "notify_stations", None)
            if notify is not None:
                notify(rows)

    def publish_conditions(self, conditions: list[Condition]) -> None:
        """City-wide conditions (only partition 0's correlator has any)."""
        for c in conditions:
            log.info("city-wide condition %s v%d %s %s %s", c.condition_id, c.version,
                     c.status, c.level, ",".join(c.kinds))
            self.metrics.conditions.labels(c.level, c.status).inc()
            self.outbox.put(self.conditions_topic, c.condition_id.encode(),
                            c.model_dump_json().encode())

    def publish_entities(self, step: EntityStep) -> list[Awaitable[None]]:
        """Entity risk from the detect stage: its warnings (entity_risk, to every sink like
        the correlator's) and its records to the compacted ``tocsin.entities.risk``; returns
        the flush to await before the batch is acknowledged (none if there is nothing)."""
        if not (step.warnings or step.records):
            return []
        self.publish(step.warnings)
        for r in step.records:
            self.outbox.put(self.entity_topic, r.entity_id.encode(), r.model_dump_json().encode())
        return [self.flush()]

    def publish_detected(self, sources: SourceStage) -> list[Awaitable[None]]:
        """What the detect stage warns of by itself: entity risk (:meth:`publish_entities`)
        and the limit pre-warnings (streams/pipeline/prewarnings.py; never correlated);
        returns the flush to await before the batch is acknowledged (none if nothing)."""
        out = self.publish_entities(sources.take_entities())
        pre = sources.take_prewarnings()
        if pre:
            self.publish(pre)
            out = out or [self.flush()]
        return out

    async def flush(self) -> None:
        """Deliver what was published: return once the broker has every Kafka record
        (notification sinks post from their own tasks)."""
        await self.outbox.flush()
        for sink in self.sinks:
            await sink.flush()


def build_publisher(settings: TocsinSettings, registry: RegionRegistry, templates: TemplateSet,
                    metrics: TocsinMetrics, send: Send,
                    topic: Callable[[str], Any]) -> tuple[Publisher, CapSink]:
    """The worker's publisher: the Kafka sinks of warnings (topic, CAP, sharing views and
    releases) and the conditions topic (``topic`` makes a topic from its base name); the
    notification sinks are added when it starts. Also returns the CAP sink, whose earlier
    versions of open warnings are checkpointed even when CAP is not published."""
    s = settings
    outbox = Outbox(send)
    cap = CapSink(outbox, topic(WARNINGS_CAP), registry=registry, templates=templates,
                  sender=s.cap_sender, partitions=s.partitions)
    # sharing grants (docs/sharing.md): unset, no views and no releases
    grants: list[Grant] = [] if s.grants is None else check_grants(
        load_grants(s.grants),
        {t.name for t in (*templates.scenarios, templates.generic)}
        | {ENTITY_SCENARIO, PREWARNING},
        set(registry.ids()), str(s.grants))
    sharing = SharingSink(outbox, grants,
                          {g.audience: topic(view_topic(g.audience)) for g in grants},
                          topic(RELEASES))
    sinks: list[Sink] = [WarningsTopicSink(outbox, topic(WARNINGS))]
    if s.publish_cap:
        sinks.append(cap)
    sinks.append(sharing)
    return Publisher(s, metrics, outbox, sinks, topic(CONDITIONS), topic(ENTITY_RISK)), cap
