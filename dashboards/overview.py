"""Duty-officer overview (uid ``tocsin-overview``): what is open, where, how it evolved."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, dashboard, geomap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import geomap as gm

from .common import (
    SEVERITY_COLORS,
    TAG,
    builtin_annotations,
    fixed_color,
    link,
    new_dashboard,
    query,
    setup,
    severity_panel,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
    transformation,
    warning_annotations,
)
from .health import per_received, rate_by_source

UID = "tocsin-overview"
REGION_URL = "/d/tocsin-region/tocsin-region?var-region={value}&${{__url_time_range}}"

ACTIVE_BY_REGION = (
    'sum by (region, severity) (tocsin_warnings_active)\nor\n'
    'label_replace(sum by (region) (tocsin_warnings_active), "severity", "Total", "", "")')
ENTITY_RISK = "sort_desc(max by (entity) (tocsin_entity_risk_score))"
REGIONS_ON_MAP = (
    "max by (region, name, latitude, longitude) (tocsin_region_info)\n"
    "* on (region) group_left ()\n"
    "sum by (region) (tocsin_warnings_active)")


def build() -> dashboard.Dashboard:
    d = new_dashboard(
        UID, "Tocsin — duty officer overview",
        "Open early warnings across departments and regions, where they are and how they "
        "evolved. Red markers on the time series are the warnings Tocsin published "
        "(annotation \"Tocsin warnings\"); hover one for its headline.",
        time_from="now-24h")
    d = d.annotation(builtin_annotations()).annotation(
        warning_annotations("Tocsin warnings", [TAG], "red"))

    # -- top line: how many warnings are open -------------------------------------------
    d = d.with_panel(stat_panel(
        "Open warnings", "Warnings currently open (new or updated, not yet resolved or "
        "cancelled), all regions and severities together.",
        [query("sum(tocsin_warnings_active)", "open", instant=True)],
        w=4, steps=thresholds("green", (1, "orange"))))
    d = d.with_panel(severity_panel(
        "Open warnings by severity", "Open warnings per CAP severity, most severe first. "
        "Extreme: extraordinary threat to life or property; Severe: significant threat; "
        "Moderate: possible threat; Minor: minimal threat.", "", w=14))
    d = d.with_panel(stat_panel(
        "Warning versions published", "Warning versions (new, update, resolved, cancelled) "
        "Tocsin published in the selected time range.",
        [query("sum(increase(tocsin_warnings_emitted_total[$__range]))", "published",
               instant=True)],
        w=3, steps=thresholds("blue")))
    d = d.with_panel(stat_panel(
        "Workers up", "Tocsin stream workers Prometheus can scrape. 0 means nothing on this "
        "dashboard is current: call the operators (see the pipeline health dashboard).",
        [query('sum(up{job="tocsin"})', "up", instant=True)],
        w=3, steps=thresholds("red", (1, "green"))))

    # -- where: map and table -----------------------------------------------------------
    d = d.with_panel(region_map()).with_panel(region_table())

    # -- how it evolved -----------------------------------------------------------------
    active = timeseries_panel(
        "Open warnings over time", "Open warnings per severity (stacked). A step up is a "
        "new warning, a step down one resolved or cancelled.",
        [query("sum by (severity) (tocsin_warnings_active)", "{{severity}}")],
        stacked=True, axis_label="open warnings")
    for sev, color in SEVERITY_COLORS.items():
        active = active.override_by_name(sev, fixed_color(color))
    d = d.with_panel(active)
    d = d.with_panel(timeseries_panel(
        "Warning versions published by status", "Warning versions published per second, "
        "by status: new (first version), update (severity, area or evidence changed), "
        "resolved (condition over), cancelled (withdrawn as false alarm).",
        [query("sum by (status) (rate(tocsin_warnings_emitted_total[$__rate_interval]))",
               "{{status}}")],
        unit="cps", axis_label="versions / s"))
    d = d.with_panel(timeseries_panel(
        "Anomalies per department", "Significant anomalies the detectors of each "
        "department (env: sensors, complaint: citizen complaints, market: market "
        "inspections) found per second. Weak supporting evidence is not counted. A burst in "
        "one department alone rarely opens a warning; several together do.",
        [query('sum by (department) (rate(tocsin_anomalies_total{level="anomaly"}'
               '[$__rate_interval]))', "{{department}}")],
        unit="cps", axis_label="anomalies / s"))
    d = d.with_panel(detection_delay())
    d = d.with_panel(entity_table())
    d = d.with_panel(single_department())
    return d.with_panel(data_quality())


def single_department() -> stat.Panel:
    """Warnings one department raises on its own: limit pre-warnings, risky entities."""
    def opened(scenario: str) -> str:
        return (f'sum(increase(tocsin_warnings_emitted_total{{scenario="{scenario}",'
                f'status="new"}}[$__range])) or vector(0)')
    return stat_panel(
        "Pre-warnings and entity warnings", "Warnings one department raises on its own, "
        "opened in the selected range: limit pre-warnings (a station's forecast will cross "
        "its regulatory limit: the ecology bureau) and entity-risk warnings (a market "
        "entity crossed TOCSIN_ENTITY_RISK_LEVEL: the market regulator).",
        [query(opened("limit_forecast"), "limit pre-warnings", instant=True),
         query(opened("entity_risk"), "entity warnings", instant=True)],
        w=12, h=10, steps=thresholds("blue"))


def data_quality() -> timeseries.Panel:
    """Data quality per department: the shares public data standards ask about."""
    invalid = (f"(\n  {rate_by_source('tocsin_events_received_total')}\n"
               f"  - {rate_by_source('tocsin_events_valid_total')}\n"
               f"  - {rate_by_source('tocsin_events_duplicate_total')}\n)")
    return timeseries_panel(
        "Data quality per department", "Of the records each department sent: the share "
        "invalid (dead-lettered: accuracy), duplicate (re-delivered: consistency), late "
        "(later than the allowed lateness, not scored: timeliness), and of the sensor "
        "readings expected from each station's cadence, the share missing (integrity). "
        "Details on the pipeline health dashboard.",
        [query(per_received(invalid), "{{source}} invalid"),
         query(per_received(rate_by_source("tocsin_events_duplicate_total")),
               "{{source}} duplicate"),
         query(per_received(rate_by_source("tocsin_events_late_total")), "{{source}} late"),
         query("sum(rate(tocsin_sensor_readings_missing_total[$__rate_interval]))\n"
               "/ clamp_min(sum(rate(tocsin_sensor_readings_expected_total"
               "[$__rate_interval])), 1e-9)", "env missing")],
        unit="percentunit", w=24)


def entity_table() -> table.Panel:
    """The riskiest market entities (credit code and risk score), riskiest first."""
    panel = table_panel(
        "Riskiest market entities",
        "Market entities (unified social credit code) with the highest risk score, "
        "-log10 p of their recent recalls, licence violations, failed inspections and "
        "complaints against all entities; the worker exports its top TOCSIN_ENTITY_RISK_TOP. "
        "At TOCSIN_ENTITY_RISK_LEVEL (default 6) the market regulator gets an entity_risk "
        "warning.",
        [query(ENTITY_RISK, "", instant=True, table_format=True)], w=12, h=10)
    return (panel
            .with_transformation(transformation("organize", {
                "excludeByName": {"Time": True},
                "renameByName": {"entity": "Entity", "Value": "Risk score"}}))
            .with_transformation(transformation("sortBy", {
                "fields": {}, "sort": [{"field": "Risk score", "desc": True}]}))
            .thresholds(thresholds("text", (4, "orange"), (6, "red"))))


def region_map() -> geomap.Panel:
    """Regions at their registry centroid, sized and coloured by open warnings."""
    markers = (cb.MapLayerOptions().type("markers").name("Regions").tooltip(True)
               .location(cb.FrameGeometrySource().mode(common.FrameGeometrySourceMode.COORDS)
                         .latitude("latitude").longitude("longitude"))
               .config({
                   "showLegend": True,
                   "style": {
                       "color": {"field": "Value", "fixed": "green"},
                       "opacity": 0.7,
                       "size": {"field": "Value", "fixed": 6, "min": 6, "max": 24},
                       "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                       "symbolAlign": {"horizontal": "center", "vertical": "center"},
                       "text": {"field": "name", "fixed": "", "mode": "field"},
                       "textConfig": {"fontSize": 11, "offsetX": 0, "offsetY": -14,
                                      "textAlign": "center", "textBaseline": "bottom"},
                   },
               }))
    panel = setup(
        geomap.Panel(), "Open warnings by region",
        "Each region of the registry at its centroid; marker size and colour: open "
        "warnings (green none, orange 1-2, red 3 or more). Click a region for its "
        "drill-down.",
        [query(REGIONS_ON_MAP, "{{name}}", instant=True, table_format=True)],
        w=12, h=13)
    return (panel
            .with_transformation(transformation("convertFieldType", {
                "conversions": [
                    {"targetField": "latitude", "destinationType": "number"},
                    {"targetField": "longitude", "destinationType": "number"}],
                "fields": {}}))
            .basemap(cb.MapLayerOptions().type("default").name("Basemap").config({}))
            .layers([markers])
            .view(geomap.MapViewConfig().id("fit").all_layers(True).padding(10))
            .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True)
                      .show_attribution(True))
            .tooltip(geomap.TooltipOptions().mode(gm.TooltipMode.DETAILS))
            .thresholds(thresholds("green", (1, "orange"), (3, "red")))
            .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
            .override_by_regexp(".*", link("Open region drill-down",
                                           REGION_URL.format(value="${__data.fields.region}"))))


def region_table() -> table.Panel:
    """Open warnings per region (rows) and severity (columns), busiest region first."""
    order = ["Region", "Total", *SEVERITY_COLORS]
    panel = table_panel(
        "Open warnings per region and severity",
        "One row per region: open warnings in total and per CAP severity, the busiest "
        "region first. Click a region for its drill-down.",
        [query(ACTIVE_BY_REGION, "", instant=True, table_format=True)], w=12, h=13)
    return (panel
            .with_transformation(transformation("groupingToMatrix", {
                "columnField": "severity", "rowField": "region", "valueField": "Value",
                "emptyValue": "zero"}))
            .with_transformation(transformation("organize", {
                "excludeByName": {},
                "renameByName": {"region\\severity": "Region"},
                "indexByName": {("region\\severity" if n == "Region" else n): i
                                for i, n in enumerate(order)}}))
            .with_transformation(transformation("sortBy", {
                "fields": {}, "sort": [{"field": "Total", "desc": True}]}))
            .thresholds(thresholds("text", (1, "orange")))
            .override_by_name("Region", link("Open region drill-down",
                                             REGION_URL.format(value="${__value.raw}")))
            .override_by_name("Total", [dm.DynamicConfigValue(
                id_val="custom.cellOptions", value={"type": "color-text"})]))


def detection_delay() -> bargauge.Panel:
    """Median and 90th percentile of the detection delay per scenario over the range."""
    bucket = "tocsin_detection_delay_seconds_bucket[$__range]"
    panel = setup(
        bargauge.Panel(), "Detection delay by scenario (selected range)",
        "Event time from an incident's first evidence to its first warning, per scenario: "
        "median and 90th percentile over the warnings opened in the selected time range "
        "(bucket resolution: 5 min to 48 h). \"no warning\": none opened in the range.",
        [query(f"histogram_quantile({q}, sum by (le, scenario) (increase({bucket})))",
               f"{{{{scenario}}}} {name}", instant=True)
         for q, name in ((0.5, "median"), (0.9, "p90"))],
        unit="s", w=12, h=8)
    return (panel.display_mode(common.BarGaugeDisplayMode.BASIC)
            .orientation(common.VizOrientation.HORIZONTAL)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .min(0)
            .thresholds(thresholds("green", (4 * 3600, "orange"), (12 * 3600, "red")))
            .mappings([dm.SpecialValueMap(options=dm.DashboardSpecialValueMapOptions(
                match=dm.SpecialValueMatch.NULL_AND_NAN,
                result=dm.ValueMappingResult(text="no warning", color="text")))]))

