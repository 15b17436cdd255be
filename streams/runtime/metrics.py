"""Prometheus metrics of a Tocsin worker (prometheus-client, an explicit registry).

Naming follows Prometheus practice: a ``tocsin_`` prefix, base units (seconds, bytes),
``_total`` on counters. Every label is bounded: ``source`` and ``department`` are the three
source departments, ``region`` comes from the region registry, ``scenario`` from the
templates, ``severity``/``status`` from CAP's vocabularies, ``reason`` from the dead-letter
error codes, ``topic``/``partition`` from the topic catalogue; the per-signal gauges are
capped by ``metrics_max_signals``. No label ever carries an event's content.

Counters are incremented once per batch (``observe_*``), never per event; the per-signal
observed/expected gauges are read from the detectors at scrape time."""

from __future__ import annotations

import logging
import platform
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from detectors.base import STATUSES
from streams.core.errors import ConfigError
from streams.core.schemas import SEVERITIES, SOURCES, Anomaly, Warning
from streams.pipeline.detection import is_weak
from streams.runtime.station_metrics import StationMetrics

log = logging.getLogger("tocsin.worker")

#: at most this many signal kinds exported as city-wide conditions at once
MAX_COMMON_MODE_KINDS = 50
#: (department, detector, level) combinations the detect stage can produce
FINDINGS = (("env", "sensor_ensemble", "anomaly"), ("env", "sustained_shift", "anomaly"),
            ("complaint", "count_surge", "anomaly"),
            ("complaint", "count_surge", "weak"), ("market", "robust_baseline", "anomaly"),
            ("market", "count_surge", "anomaly"), ("market", "count_surge", "weak"),
            ("market", "rate_surge", "anomaly"))

#: detection delay (event time from an incident's first evidence to its first warning)
DELAY_BUCKETS = (300, 600, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600,
                 48 * 3600)
#: wall-clock latencies (event time to warning when live; time spent on a batch)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

#: signal reader: yields (region, department, signal kind, observed, expected)
SignalReader = Callable[[], Iterable[tuple[str, str, str, float, float]]]


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


class _SignalCollector(Collector):
    """Observed and expected value of each (region, signal kind), read at scrape time."""

    def __init__(self, read: SignalReader, limit: int, dropped: Counter) -> None:
        self._read = read
        self._limit = limit
        self._dropped = dropped
        self._exported: set[tuple[str, str, str]] = set()

    def collect(self) -> Iterator[Metric]:
        labels = ["region", "department", "signal"]
        obs = GaugeMetricFamily("tocsin_signal_observed",
                                "Latest observed value of a signal (its detector's unit).",
                                labels=labels)
        exp = GaugeMetricFamily("tocsin_signal_expected",
                                "Value the signal's detector expected at the same time.",
                                labels=labels)
        for region, dept, kind, o, e in list(self._read()):
            key = (region, dept, kind)
            if key not in self._exported:
                if len(self._exported) >= self._limit:
                    self._dropped.inc()
                    continue
                self._exported.add(key)
            obs.add_metric(list(key), o)
            exp.add_metric(list(key), e)
        yield obs
        yield exp

    def describe(self) -> Iterator[Metric]:
        return iter(())


class TocsinMetrics:
    """Every metric a worker exports, registered on ``registry`` (tests pass their own)."""

    def __init__(self, registry: CollectorRegistry, *, regions: Iterable[str],
                 region_coords: dict[str, tuple[str, float, float]] | None = None,
                 scenarios: Iterable[str] = (), app_id: str = "tocsin", partitions: int = 1,
                 max_signals: int = 5000) -> None:
        self.registry = registry
        self.regions = tuple(regions)
        self.scenarios = tuple(scenarios)
        self._ingest_metrics(registry)
        self._warning_metrics(registry)
        self._runtime_metrics(registry)
        self._checkpoint_metrics(registry)
        self._info_metrics(registry, app_id, partitions)
        self._max_signals = max_signals
        self._active: dict[str, tuple[str, str]] = {}  # warning id -> (severity, region)
        self._seen: dict[str, Tally[str]] = {}
        self._assigned_topics: set[str] = set()
        for name, lat_lon in (region_coords or {}).items():
            label, lat, lon = lat_lon
            self.region_info.labels(name, label, f"{lat:.5f}", f"{lon:.5f}").set(1)
        self._zero_series()
        self._set_active()

    def _ingest_metrics(self, r: CollectorRegistry) -> None:
        """Per source: records received, valid, dead-lettered, duplicate, late; findings."""
        self.events_received = Counter(
            "tocsin_events_received", "Records consumed from a source topic.", ["source"],
            registry=r)
        self.events_valid = Counter(
            "tocsin_events_valid", "Records that passed validation.", ["source"], registry=r)
        self.events_dead = Counter(
            "tocsin_events_dead_lettered", "Records sent to the dead-letter topic, by reason.",
            ["source", "reason"], registry=r)
        self.events_duplicate = Counter(
            "tocsin_events_duplicate", "Exact re-deliveries dropped.", ["source"], registry=r)
        self.events_late = Counter(
            "tocsin_events_late", "Records later than the allowed lateness (not scored).",
            ["source"], registry=r)
        self.last_event_time = Gauge(
            "tocsin_source_last_event_timestamp_seconds",
            "Largest event time processed per source (Unix seconds).", ["source"], registry=r)
        self.last_processed = Gauge(
            "tocsin_source_last_processed_timestamp_seconds",
            "Wall-clock time a batch of the source was last processed (Unix seconds).",
            ["source"], registry=r)
        self.anomalies = Counter(
            "tocsin_anomalies", "Findings sent to the correlator (level=anomaly: significant "
            "on its own; level=weak: supporting evidence only).",
            ["department", "detector", "level"], registry=r)

    def _warning_metrics(self, r: CollectorRegistry) -> None:
        """Warnings published, open, and how long they took."""
        self.warnings_emitted = Counter(
            "tocsin_warnings_emitted", "Warning versions published, by status.",
            ["status", "scenario"], registry=r)
        self.warnings_active = Gauge(
            "tocsin_warnings_active", "Open warnings (new or updated, not resolved).",
            ["severity", "region"], registry=r)
        self.detection_delay = Histogram(
            "tocsin_detection_delay_seconds",
            "Event time from an incident's first evidence to its first warning.",
            ["scenario"], buckets=DELAY_BUCKETS, registry=r)
        self.warning_latency = Histogram(
            "tocsin_warning_latency_seconds",
            "Wall-clock time from the newest evidence's event time to the warning's "
            "publication (end to end; large when replaying history).",
            buckets=LATENCY_BUCKETS, registry=r)

    def _runtime_metrics(self, r: CollectorRegistry) -> None:
        """Batches, lag, partitions, broker, detector state, conditions, notifications."""
        self.batch_seconds = Histogram(
            "tocsin_batch_processing_seconds",
            "Wall-clock time a worker spent on one batch, outputs delivered.",
            ["agent"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_events = Counter(
            "tocsin_batch_events", "Records handled by an agent (throughput).", ["agent"],
            registry=r)
        self.detect_seconds = Counter(
            "tocsin_detect_seconds", "Wall-clock seconds spent in ingest and the detectors.",
            ["source"], registry=r)
        self.consumer_lag = Gauge(
            "tocsin_consumer_lag_messages", "High watermark minus the next offset to process.",
            ["topic", "partition"], registry=r)
        self.assigned_partitions = Gauge(
            "tocsin_assigned_partitions", "Partitions this worker owns, per topic.", ["topic"],
            registry=r)
        self.broker_reachable = Gauge(
            "tocsin_broker_reachable",
            "1 if the broker answered the worker's last metadata request, else 0.",
            registry=r)
        self.tracked_series = Gauge(
            "tocsin_tracked_series", "Signal series the detectors hold state for.", registry=r)
        self.sensor_faults = Counter(
            "tocsin_sensor_fault_readings", "Sensor readings screened out as an instrument "
            "fault (stuck, impossible, unit_slip, erratic, step, drift): for operators, "
            "never incident evidence.",
            ["kind"], registry=r)
        self.stations = StationMetrics(r)
        self.common_mode = Gauge(
            "tocsin_common_mode_regions", "Regions in which a signal kind is anomalous at "
            "once, while it is a city-wide (common-mode) condition; local warnings of that "
            "kind are held back.", ["kind"], registry=r)
        self.conditions = Counter(
            "tocsin_citywide_conditions", "City-wide condition versions published on "
            "tocsin.conditions, by level (notice: one department; warning: several) and "
            "status.", ["level", "status"], registry=r)
        self.reorder_held = Gauge(
            "tocsin_reorder_buffer_records",
            "Anomalies held in event-time order in front of the correlator.", registry=r)
        self.notifications = Counter(
            "tocsin_notifications", "Deliveries to Grafana and Alertmanager, by outcome.",
            ["target", "outcome"], registry=r)
        self.signals_dropped = Counter(
            "tocsin_metrics_signals_dropped",
            "Signal series not exported because metrics_max_signals was reached.", registry=r)

    def _checkpoint_metrics(self, r: CollectorRegistry) -> None:
        """Checkpoints written, their time and size, restores, records skipped."""
        self.checkpoints = Counter(
            "tocsin_checkpoints", "Partition checkpoints written to the checkpoints topic, "
            "by outcome (written, failed).", ["outcome"], registry=r)
        self.checkpoint_seconds = Histogram(
            "tocsin_checkpoint_seconds",
            "Wall-clock time of one checkpoint round (capture, write, commit).",
            buckets=LATENCY_BUCKETS, registry=r)
        self.checkpoint_bytes = Gauge(
            "tocsin_checkpoint_bytes", "Size of the last checkpoint round, all partitions.",
            registry=r)
        self.restores = Counter(
            "tocsin_checkpoint_restores", "Partitions taken over, by outcome (restored: from "
            "a checkpoint; none: no checkpoint yet; refused: corrupt or unreadable).",
            ["outcome"], registry=r)
        self.records_skipped = Counter(
            "tocsin_records_already_covered",
            "Records re-delivered after a restart or rebalance that the restored state "
            "already covers (skipped, not processed twice).", ["topic"], registry=r)

    def _info_metrics(self, r: CollectorRegistry, app_id: str, partitions: int) -> None:
        """The region registry and the build."""
        self.region_info = Gauge(
            "tocsin_region_info", "The region registry: name and centroid per region (1).",
            ["region", "name", "latitude", "longitude"], registry=r)
        self.build = Info("tocsin_build", "Version and configuration of the worker.",
                          registry=r)
        self.build.info({
            "version": package_version("tocsin"),
            "faust_version": package_version("faust-streaming"),
            "python_version": platform.python_version(),
            "app_id": app_id, "partitions": str(partitions),
        })

    def _zero_series(self) -> None:
        """Every bounded series exists from the start (0), so rates and dashboards have
        data."""
        for src in SOURCES:
            for c in (self.events_received, self.events_valid, self.events_duplicate,
                      self.events_late, self.detect_seconds):
                c.labels(src)
        for labels in FINDINGS:
            self.anomalies.labels(*labels)
        for status in STATUSES:
            for sc in self.scenarios:
                self.warnings_emitted.labels(status, sc)
        for sc in self.scenarios:
            self.detection_delay.labels(sc)
        for outcome in ("written", "failed"):
            self.checkpoints.labels(outcome)
        for outcome in ("restored", "none", "refused"):
            self.restores.labels(outcome)

    def serve(self, addr: str, port: int) -> None:
        """Serve /metrics on ``addr:port`` (a daemon thread; port 0: none)."""
        if not port:
            return
        try:
            start_http_server(port, addr, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}; set "
                "TOCSIN_METRICS_PORT to a free port (0 turns the endpoint off)") from exc
        log.info("metrics on http://%s:%d/metrics", addr, port)

    def add_signal_reader(self, read: SignalReader) -> None:
        self.registry.register(_SignalCollector(read, self._max_signals, self.signals_dropped))

    def add_entity_reader(self, read: Callable[[], Iterable[tuple[str, float]]]) -> None:
        """The riskiest entities' gauge (streams/runtime/entity_metrics.py)."""
        from streams.runtime.entity_metrics import EntityCollector

        self.registry.register(EntityCollector(read))

    # -- once per batch -------------------------------------------------------------------
    def observe_source(self, source: str, counts: dict[str, int], late: int,
                       dead_reasons: Tally[str], last_event_time: float | None,
                       seconds: float, n_events: int) -> None:
        """Cumulative counters of one source -> increments since the previous batch."""
        prev = self._seen.setdefault(source, Tally())
        for name, metric in (("received", self.events_received),
                             ("valid", self.events_valid),
                             ("duplicate", self.events_duplicate)):
            delta = counts.get(name, 0) - prev[name]
            if delta > 0:
                metric.labels(source).inc(delta)
                prev[name] += delta
        if late > prev["late"]:
            self.events_late.labels(source).inc(late - prev["late"])
            prev["late"] = late
        for reason, n in dead_reasons.items():
            self.events_dead.labels(source, reason).inc(n)
        if last_event_time is not None:
            self.last_event_time.labels(source).set(last_event_time)
        self.last_processed.labels(source).set(time.time())
        self.detect_seconds.labels(source).inc(seconds)
        self.batch_events.labels(f"ingest.{source}").inc(n_events)

    def observe_anomalies(self, anomalies: Iterable[Anomaly]) -> None:
        tally: Tally[tuple[str, str, str]] = Tally()
        for a in anomalies:
            if a.via is not None or a.city:
                continue  # a neighbour's or the city view's copy, counted where found
            tally[(a.source, a.detector, "weak" if is_weak(a.anomaly_id) else "anomaly")] += 1
        for labels, n in tally.items():
            self.anomalies.labels(*labels).inc(n)

    def observe_faults(self, totals: dict[str, int]) -> None:
        """Cumulative fault counts by kind -> increments since the previous call."""
        prev = self._seen.setdefault("~faults", Tally())
        for kind, n in totals.items():
            if n > prev[kind]:
                self.sensor_faults.labels(kind).inc(n - prev[kind])
                prev[kind] = n

    def observe_common_mode(self, active: dict[str, int]) -> None:
        self.common_mode.clear()
        for kind, n in sorted(active.items())[:MAX_COMMON_MODE_KINDS]:
            self.common_mode.labels(kind).set(n)

    def observe_batch(self, agent: str, seconds: float) -> None:
        self.batch_seconds.labels(agent).observe(seconds)

    def observe_lag(self, topic: str, partition: int, lag: int) -> None:
        self.consumer_lag.labels(topic, str(partition)).set(max(lag, 0))

    def observe_batch_lag(self, consumer: Any, messages: Iterable[Any]) -> None:
        """Consumer lag of the partitions of a batch's ``messages`` (high watermark - next
        offset), as far as ``consumer`` (faust's) knows the high watermarks."""
        last: dict[Any, int] = {}
        for m in messages:
            last[m.tp] = m.offset
        for tp, offset in last.items():
            try:
                hw = consumer.highwater(tp)
            except Exception:  # not known yet: no figure this batch
                continue
            if hw is not None:
                self.observe_lag(tp.topic, tp.partition, int(hw) - offset - 1)

    def observe_assignment(self, assigned: Iterable[tuple[str, int]]) -> None:
        """The worker's partitions after a rebalance (topic, partition) pairs."""
        counts = Tally(topic for topic, _ in assigned)
        for topic in self._assigned_topics | set(counts):
            self.assigned_partitions.labels(topic).set(counts.get(topic, 0))
        self._assigned_topics |= set(counts)

    def observe_warnings(self, warnings: Iterable[Warning], now: float | None = None) -> None:
        now = time.time() if now is None else now
        changed = False
        for w in warnings:
            self.warnings_emitted.labels(w.status, w.scenario).inc()
            if w.status == "new":
                self.detection_delay.labels(w.scenario).observe(
                    max(0.0, (w.last_seen - w.first_seen).total_seconds()))
            if w.status in ("new", "update"):
                self.warning_latency.observe(max(0.0, now - w.last_seen.timestamp()))
                self._active[w.warning_id] = (w.severity, w.region)
            else:
                self._active.pop(w.warning_id, None)
            changed = True
        if changed:
            self._set_active()

    def _set_active(self) -> None:
        counts = Tally(self._active.values())
        regions = set(self.regions) | {r for _, r in counts}
        for sev in SEVERITIES:
            for region in regions:
                self.warnings_active.labels(sev, region).set(counts.get((sev, region), 0))

    @property
    def active_warnings(self) -> int:
        return len(self._active)
