"""Pipeline health (uid ``tocsin-health``): is Tocsin keeping up, and is its input sound?
For the operators who run it; the alert rules in deploy/prometheus/rules watch the same
series."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, stat
from grafana_foundation_sdk.models import dashboard as dm

from .common import (
    builtin_annotations,
    new_dashboard,
    query,
    stat_panel,
    table_panel,
    threshold_line,
    thresholds,
    timeseries_panel,
    transformation,
)

UID = "tocsin-health"
RI = "[$__rate_interval]"
#: a source not processed for this long fires TocsinSourceQuiet
QUIET_S = 900


def per_received(numerator: str) -> str:
    """``numerator`` (summed by source) as a share of the records received per source."""
    return (f"{numerator}\n/ clamp_min(sum by (source) "
            f"(rate(tocsin_events_received_total{RI})), 1e-9)")


def rate_by_source(metric: str) -> str:
    return f"sum by (source) (rate({metric}{RI}))"


def flag_panel(title: str, description: str, expr: str, yes: str, no: str,
               w: int) -> stat.Panel:
    """A 0/1 series per instance shown as green ``yes`` / red ``no``."""
    return stat_panel(title, description, [query(expr, "{{instance}}", instant=True)],
                      w=w, steps=thresholds("red", (1, "green"))).mappings([dm.ValueMap(
                          options={"0": dm.ValueMappingResult(text=no, color="red"),
                                   "1": dm.ValueMappingResult(text=yes, color="green")})])


def build() -> dashboard.Dashboard:
    d = new_dashboard(
        UID, "Tocsin — pipeline health",
        "Is Tocsin keeping up and is its input sound: workers, throughput, consumer lag, "
        "latency, dead letters and data quality per department, freshness, detector cost. "
        "For the operators; the alert rules watch the same series.", time_from="now-1h")
    d = d.annotation(builtin_annotations())
    d = status_row(d)
    d = throughput_row(d)
    d = latency_row(d)
    d = quality_row(d)
    d = stations_row(d)
    d = freshness_row(d)
    return d.with_row(internals_row())


def status_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    d = d.with_row(dashboard.Row("Status"))
    d = d.with_panel(flag_panel(
        "Workers", "Each Tocsin worker Prometheus scrapes: UP when its metrics endpoint "
        "answered the last scrape, DOWN when not.", 'up{job="tocsin"}', "UP", "DOWN", w=6))
    d = d.with_panel(stat_panel(
        "Consumer lag", "Records waiting in Kafka behind the workers (all topics and "
        "partitions). Growing: warnings are being delayed.",
        [query("sum(tocsin_consumer_lag_messages)", "lag", instant=True)],
        w=4, steps=thresholds("green", (1000, "orange"), (10000, "red"))))
    d = d.with_panel(stat_panel(
        "Stalest department", "Time since the department whose data is oldest was last "
        f"processed by any worker. Above {QUIET_S // 60} min the alert TocsinSourceQuiet "
        "fires: warnings that need that department cannot be raised.",
        [query("max(time() - max by (source) "
               "(tocsin_source_last_processed_timestamp_seconds))", "stalest", instant=True)],
        unit="s", w=4, steps=thresholds("green", (300, "orange"), (QUIET_S, "red"))))
    d = d.with_panel(stat_panel(
        "Dead letters", "Records sent to the dead-letter topic in the selected range "
        "(unreadable or invalid; they are not scored).",
        [query("sum(increase(tocsin_events_dead_lettered_total[$__range])) or vector(0)",
               "dead letters", instant=True)],
        w=3, steps=thresholds("green", (1, "orange"))))
    d = d.with_panel(stat_panel(
        "Notification failures", "Deliveries to Grafana (annotations) or Alertmanager "
        "that failed in the selected range: duty officers may have missed warnings.",
        [query('sum(increase(tocsin_notifications_total{outcome="failed"}[$__range])) '
               "or vector(0)", "failed", instant=True)],
        w=3, steps=thresholds("green", (1, "red"))))
    return d.with_panel(stat_panel(
        "Tracked series", "Signal series the detectors hold state for (all workers). "
        "Memory grows with it.",
        [query("sum(tocsin_tracked_series)", "series", instant=True)],
        w=4, steps=thresholds("blue")))


def throughput_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    d = d.with_row(dashboard.Row("Throughput and lag"))
    d = d.with_panel(timeseries_panel(
        "Throughput by agent", "Records each agent handled per second (ingest.<department> "
        "for the source topics).",
        [query(f"sum by (agent) (rate(tocsin_batch_events_total{RI}))", "{{agent}}")],
        unit="cps", w=8, axis_label="records / s"))
    d = d.with_panel(timeseries_panel(
        "Records received and valid per department", "Records consumed from each "
        "department's topic per second (received) and those that passed validation "
        "(valid). The gap is dead letters and duplicates.",
        [query(rate_by_source("tocsin_events_received_total"), "{{source}} received"),
         query(rate_by_source("tocsin_events_valid_total"), "{{source}} valid")],
        unit="cps", w=8, axis_label="records / s"))
    return d.with_panel(timeseries_panel(
        "Consumer lag by topic", "High watermark minus the next offset to process, summed "
        "over partitions and workers. Flat: keeping up; growing: falling behind.",
        [query("sum by (topic) (tocsin_consumer_lag_messages)", "{{topic}}")],
        w=8, axis_label="records behind"))


def latency_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    d = d.with_row(dashboard.Row("Latency and cost"))
    d = d.with_panel(timeseries_panel(
        "Batch processing time", "Wall-clock time a worker spent on one batch, outputs "
        "delivered: median and 95th percentile per agent.",
        [query(f"histogram_quantile({q}, sum by (le, agent) "
               f"(rate(tocsin_batch_processing_seconds_bucket{RI})))", f"{{{{agent}}}} {n}")
         for q, n in ((0.5, "median"), (0.95, "p95"))],
        unit="s", w=8))
    d = d.with_panel(timeseries_panel(
        "Warning latency", "Wall-clock time from the newest evidence's event time to the "
        "warning's publication (end to end): median and 95th percentile. Large while "
        "replaying history.",
        [query(f"histogram_quantile({q}, sum by (le) "
               f"(rate(tocsin_warning_latency_seconds_bucket{RI})))", n)
         for q, n in ((0.5, "median"), (0.95, "p95"))],
        unit="s", w=8))
    return d.with_panel(timeseries_panel(
        "Detector cost per record", "Wall-clock seconds spent in ingest and the detectors "
        "per valid record of each department.",
        [query(f"{rate_by_source('tocsin_detect_seconds_total')}\n/ clamp_min("
               f"{rate_by_source('tocsin_events_valid_total')}, 1e-9)", "{{source}}")],
        unit="s", w=8))


def quality_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    d = d.with_row(dashboard.Row("Data quality per department"))
    d = d.with_panel(timeseries_panel(
        "Dead letters by reason", "Records sent to the dead-letter topic per second, by "
        "department and error code. They are not scored: a department that changed its "
        "format is invisible to Tocsin.",
        [query(f"sum by (source, reason) (rate(tocsin_events_dead_lettered_total{RI}))",
               "{{source}} {{reason}}")],
        unit="cps", w=6, axis_label="records / s"))
    d = d.with_panel(timeseries_panel(
        "Invalid share", "Share of the records received from each department that were "
        "invalid (dead-lettered). Above 5% for 10 min: alert TocsinDeadLetterRateHigh.",
        [query(per_received(
            f"(\n  {rate_by_source('tocsin_events_received_total')}\n"
            f"  - {rate_by_source('tocsin_events_valid_total')}\n"
            f"  - {rate_by_source('tocsin_events_duplicate_total')}\n)"), "{{source}}")],
        unit="percentunit", w=6)
        .override_by_regexp(".*", threshold_line((0.05, "red"))))
    d = d.with_panel(timeseries_panel(
        "Duplicate share", "Share of the records received from each department that were "
        "exact re-deliveries (dropped). High after a producer retry storm or a replay.",
        [query(per_received(rate_by_source("tocsin_events_duplicate_total")), "{{source}}")],
        unit="percentunit", w=6))
    return d.with_panel(timeseries_panel(
        "Late share", "Share of the records received from each department that arrived "
        "later than the allowed lateness: kept but not scored.",
        [query(per_received(rate_by_source("tocsin_events_late_total")), "{{source}}")],
        unit="percentunit", w=6))


def stations_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    d = d.with_row(dashboard.Row("Stations"))
    d = d.with_panel(timeseries_panel(
        "Sensor series by status", "Sensor series (a station's metric) by health: ok, "
        "silent (no reading for three of its learned cadences while the other stations "
        "report), stuck (one value eight times running), faulty (last reading screened "
        "out), learning (cadence not known yet). Silent or stuck for 30 min: alert "
        "TocsinStationsSilent.",
        [query("sum by (status) (tocsin_sensor_series)", "{{status}}")],
        stacked=True, w=8, axis_label="series"))
    d = d.with_panel(timeseries_panel(
        "Missing readings", "Share of the sensor readings expected from each series' "
        "learned cadence that did not come.",
        [query(f"sum(rate(tocsin_sensor_readings_missing_total{RI}))\n/ clamp_min("
               f"sum(rate(tocsin_sensor_readings_expected_total{RI})), 1e-9)", "missing")],
        unit="percentunit", w=6))
    return d.with_panel(table_panel(
        "Stations needing attention", "The 20 sensor series most in need of attention "
        "(faulty, silent, stuck; worst first) and the share of their expected readings "
        "that are missing. Send a maintenance crew; runbook: TocsinStationsSilent.",
        [query("sort_desc(max by (station, metric, status) (tocsin_station_attention))", "",
               instant=True, table_format=True)],
        unit="percentunit", w=10)
        .with_transformation(transformation("organize", {
            "excludeByName": {"Time": True}, "indexByName": {},
            "renameByName": {"Value": "missing"}})))


def freshness_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    d = d.with_row(dashboard.Row("Freshness"))
    d = d.with_panel(timeseries_panel(
        "Event-time lag per department", "How far behind now the newest event processed "
        "from each department is (its event time). Large when the department sends late "
        "or while replaying history.",
        [query("time() - max by (source) (tocsin_source_last_event_timestamp_seconds)",
               "{{source}}")],
        unit="s", w=12))
    return d.with_panel(timeseries_panel(
        "Time since last batch per department", "Wall-clock time since any worker last "
        f"processed a batch of each department. Above {QUIET_S // 60} min (dashed line): "
        "alert TocsinSourceQuiet.",
        [query("time() - max by (source) (tocsin_source_last_processed_timestamp_seconds)",
               "{{source}}")],
        unit="s", w=12)
        .override_by_regexp(".*", threshold_line((QUIET_S, "red"))))


def internals_row() -> dashboard.Row:
    """Collapsed: per-worker internals and the build of each worker."""
    return (dashboard.Row("Worker internals")
            .with_panel(timeseries_panel(
                "Tracked series and reorder buffer per worker", "Signal series the "
                "detectors hold state for, and anomalies held in event-time order in front "
                "of the correlator, per worker.",
                [query("sum by (instance) (tocsin_tracked_series)", "{{instance}} series"),
                 query("sum by (instance) (tocsin_reorder_buffer_records)",
                       "{{instance}} reorder buffer")], w=12))
            .with_panel(timeseries_panel(
                "Notifications by target and outcome", "Deliveries to Grafana and "
                "Alertmanager per second by outcome (0 until the first delivery).",
                [query(f"sum by (target, outcome) (rate(tocsin_notifications_total{RI}))\n"
                       "or on () vector(0)", "{{target}} {{outcome}}")],
                unit="cps", w=12))
            .with_panel(timeseries_panel(
                "Checkpoints per worker", "Partition checkpoints written (and failed) per "
                "second by each worker. Offsets are committed only with a checkpoint: "
                "failures without writes for 15 min raise TocsinCheckpointsFailing.",
                [query(f"sum by (instance, outcome) (rate(tocsin_checkpoints_total{RI}))",
                       "{{instance}} {{outcome}}")],
                unit="cps", w=8))
            .with_panel(timeseries_panel(
                "Checkpoint time", "Wall-clock time of a checkpoint round per worker "
                "(95th percentile): batches wait this long while the state is captured.",
                [query("histogram_quantile(0.95, sum by (le, instance) "
                       f"(rate(tocsin_checkpoint_seconds_bucket{RI})))", "{{instance}} p95")],
                unit="s", w=8))
            .with_panel(flag_panel(
                "Broker reachable", "Whether each worker's last metadata probe was answered "
                "(TocsinBrokerUnreachable fires after 2 min without).",
                "tocsin_broker_reachable", "YES", "NO", w=8))
            .with_panel(stat_panel(
                "Signal series not exported", "Signal series left out of the "
                "observed/expected gauges in the selected range because metrics_max_signals "
                "was reached (raise it, or expect gaps on the region drill-down).",
                [query("sum(increase(tocsin_metrics_signals_dropped_total[$__range]))",
                       "dropped", instant=True)],
                w=6, h=6, steps=thresholds("green", (1, "orange"))))
            .with_panel(table_panel(
                "Build", "Version and configuration of each worker.",
                [query("tocsin_build_info", "", instant=True, table_format=True)],
                w=18, h=6)
                .with_transformation(transformation("organize", {
                    "excludeByName": {"Time": True, "Value": True, "__name__": True,
                                      "job": True},
                    "indexByName": {"instance": 0, "version": 1, "app_id": 2,
                                    "partitions": 3, "faust_version": 4,
                                    "python_version": 5},
                    "renameByName": {}}))))
