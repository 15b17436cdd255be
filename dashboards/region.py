"""Region drill-down (uid ``tocsin-region``): one region's signals against what the
detectors expected, its open warnings and the warnings published for it."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from .common import (
    DATASOURCE,
    SEVERITY_COLORS,
    TAG,
    builtin_annotations,
    dashed,
    fixed_color,
    new_dashboard,
    query,
    severity_panel,
    stat_panel,
    thresholds,
    timeseries_panel,
    warning_annotations,
)

UID = "tocsin-region"
VARIABLE = "region"
REGION = f'region="${VARIABLE}"'


def region_variable() -> dashboard.QueryVariable:
    return (dashboard.QueryVariable(VARIABLE).label("Region")
            .description("Region id from the region registry (tocsin_region_info).")
            .datasource(DATASOURCE)
            .query(f"label_values(tocsin_region_info, {VARIABLE})")
            .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(dm.VariableSort.NATURAL_ASC)
            .multi(False).include_all(False).allow_custom_value(False))


def signals_panel(title: str, department: str, description: str,
                  *, w: int = 12) -> timeseries.Panel:
    """Observed (solid) against expected (dashed) per signal of one department."""
    sel = f'{{{REGION}, department="{department}"}}'
    return (timeseries_panel(
        title, description,
        [query(f"max by (signal) (tocsin_signal_observed{sel})", "{{signal}} observed"),
         query(f"max by (signal) (tocsin_signal_expected{sel})", "{{signal}} expected")],
        w=w, h=9)
        .override_by_regexp(".* expected$", dashed()))


def build() -> dashboard.Dashboard:
    d = (dashboard_base()
         .with_variable(region_variable())
         .annotation(builtin_annotations())
         .annotation(warning_annotations("Warnings in $region", [TAG, f"region:${VARIABLE}"],
                                         "red")))
    d = d.with_panel(stat_panel(
        "Region", "Name of the selected region in the registry.",
        [query(f"max by (name) (tocsin_region_info{{{REGION}}})", "{{name}}", instant=True)],
        w=6, text_mode=common.BigValueTextMode.NAME, steps=thresholds("blue")))
    d = d.with_panel(severity_panel(
        "Open warnings in the region by severity", "Warnings currently open for this "
        "region per CAP severity, most severe first.", REGION, w=18))
    d = d.with_panel(signals_panel(
        "Environmental sensors: observed vs expected", "env",
        "Each sensor signal of the region (median of the last three readings, in the "
        "sensor's own unit) as a solid line, the value its detector expected as a dashed "
        "line. A sustained gap is what the detector scores as an anomaly.", w=24))
    d = d.with_panel(signals_panel(
        "Complaints: count vs baseline", "complaint",
        "Citizen complaints per time bucket and category in the region (solid) against the "
        "baseline count the detector expected for that time of day and week (dashed)."))
    d = d.with_panel(signals_panel(
        "Market signals: observed vs expected", "market",
        "Market inspection signals of the region, e.g. failed inspections per time bucket "
        "(solid), against the expected rate (dashed)."))
    active = timeseries_panel(
        "Open warnings in the region over time", "Open warnings of this region per severity "
        "(stacked). The red markers are the warnings Tocsin published for the region; hover "
        "one for its headline.",
        [query(f"sum by (severity) (tocsin_warnings_active{{{REGION}}})", "{{severity}}")],
        w=24, h=7, stacked=True, axis_label="open warnings")
    for sev, color in SEVERITY_COLORS.items():
        active = active.override_by_name(sev, fixed_color(color))
    return d.with_panel(active)


def dashboard_base() -> dashboard.Dashboard:
    return new_dashboard(
        UID, "Tocsin — region drill-down",
        "One region: each signal against what its detector expected, the open warnings and "
        "the warnings Tocsin published for the region (red markers). Pick the region at "
        "the top.", time_from="now-24h")
