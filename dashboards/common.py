"""Pieces shared by the Tocsin dashboards: the Prometheus datasource, query and panel
helpers, the warning annotations and the conversion of a built dashboard to plain JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, Self, TypeVar, cast

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

#: uid of the provisioned Prometheus datasource (deploy/grafana/provisioning/datasources)
DATASOURCE_UID = "prometheus"
DATASOURCE = common.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
#: Grafana's own annotation store (the worker pushes one annotation per warning version)
GRAFANA_DATASOURCE = common.DataSourceRef(type_val="grafana", uid="-- Grafana --")
#: tag on every Tocsin dashboard and on every warning annotation the worker pushes
TAG = "tocsin"
#: CAP severities, most severe first, and the colour each is shown in
SEVERITY_COLORS = {"Extreme": "dark-red", "Severe": "red", "Moderate": "orange",
                   "Minor": "yellow", "Unknown": "blue"}


class PanelBuilder(Protocol):
    """What every panel builder of the SDK offers (timeseries.Panel, stat.Panel, ...)."""

    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: common.DataSourceRef) -> Self: ...
    def with_target(self, target: cogbuilder.Builder[cogvariants.Dataquery]) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def build(self) -> dm.Panel: ...


P = TypeVar("P", bound=PanelBuilder)


def query(expr: str, legend: str = "", *, instant: bool = False,
          table_format: bool = False) -> prometheus.Dataquery:
    """A PromQL target on the Tocsin datasource (range query unless ``instant``)."""
    q = (prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
         .editor_mode(pm.QueryEditorMode.CODE))
    if legend:
        q = q.legend_format(legend)
    if table_format:
        q = q.format(pm.PromQueryFormat.TABLE)
    return q.instant() if instant else q.range()


def setup(panel: P, title: str, description: str, targets: Sequence[prometheus.Dataquery],
          *, unit: str = "short", w: int = 12, h: int = 8) -> P:
    """Title, description, datasource, size, unit and targets (refIds A, B, ...)."""
    panel = (panel.title(title).description(description).datasource(DATASOURCE)
             .span(w).height(h).unit(unit))
    for i, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + i)))
    return panel


def thresholds(base: str, *steps: tuple[float, str]) -> dashboard.ThresholdsConfig:
    """Absolute thresholds: ``base`` colour below the first step."""
    return (dashboard.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=None, color=base)]
                   + [dm.Threshold(value=v, color=c) for v, c in steps]))


def fixed_color(color: str) -> list[dm.DynamicConfigValue]:
    """Override properties: one fixed colour."""
    return [dm.DynamicConfigValue(id_val="color",
                                  value={"mode": "fixed", "fixedColor": color})]


def dashed() -> list[dm.DynamicConfigValue]:
    """Override properties: a dashed line (expected values beside observed ones)."""
    return [dm.DynamicConfigValue(id_val="custom.lineStyle",
                                  value={"fill": "dash", "dash": [10, 10]})]


def threshold_line(*steps: tuple[float, str]) -> list[dm.DynamicConfigValue]:
    """Override properties: draw the thresholds as dashed lines on a time series."""
    return [
        dm.DynamicConfigValue(id_val="thresholds", value={
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}]
            + [{"color": c, "value": v} for v, c in steps]}),
        dm.DynamicConfigValue(id_val="custom.thresholdsStyle", value={"mode": "dashed"}),
    ]


def transformation(kind: str, options: dict[str, Any]) -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val=kind, options=options)


def link(title: str, url: str) -> list[dm.DynamicConfigValue]:
    """Override properties: a data link on a field."""
    return [dm.DynamicConfigValue(id_val="links", value=[{"title": title, "url": url}])]


# -- panel kinds ------------------------------------------------------------------------
def timeseries_panel(title: str, description: str, targets: Sequence[prometheus.Dataquery],
                     *, unit: str = "short", w: int = 12, h: int = 8, stacked: bool = False,
                     axis_label: str = "") -> timeseries.Panel:
    """Lines over time, legend as a table with the last and maximum value."""
    panel = setup(timeseries.Panel(), title, description, targets, unit=unit, w=w, h=h)
    panel = (panel.line_width(1).fill_opacity(25 if stacked else 8).span_nulls(False)
             .legend(cb.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True)
                     .calcs(["lastNotNull", "max"]))
             .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    if stacked:
        panel = panel.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL))
    if axis_label:
        panel = panel.axis_label(axis_label)
    return panel


def stat_panel(title: str, description: str, targets: Sequence[prometheus.Dataquery],
               *, unit: str = "short", w: int = 4, h: int = 4,
               steps: dashboard.ThresholdsConfig | None = None,
               text_mode: common.BigValueTextMode = common.BigValueTextMode.AUTO,
               ) -> stat.Panel:
    """Big number(s): the last value of each series, coloured by thresholds."""
    panel = setup(stat.Panel(), title, description, targets, unit=unit, w=w, h=h)
    return (panel.color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE)
            .text_mode(text_mode)
            .justify_mode(common.BigValueJustifyMode.CENTER)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .thresholds(steps or thresholds("green"))
            .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS)))


def severity_panel(title: str, description: str, selector: str, *, w: int) -> stat.Panel:
    """Open warnings per CAP severity (``selector``: extra label matchers, or ""), each
    coloured by its severity once above zero, most severe first."""
    sep = ", " if selector else ""
    panel = stat_panel(
        title, description,
        [query(f'sum(tocsin_warnings_active{{{selector}{sep}severity="{sev}"}})', sev,
               instant=True) for sev in SEVERITY_COLORS],
        w=w, text_mode=common.BigValueTextMode.VALUE_AND_NAME,
        steps=thresholds("green", (1, "red")))
    for sev, color in SEVERITY_COLORS.items():
        panel = panel.override_by_name(sev, [dm.DynamicConfigValue(
            id_val="thresholds", value={"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": color, "value": 1}]})])
    return panel


def table_panel(title: str, description: str, targets: Sequence[prometheus.Dataquery],
                *, unit: str = "short", w: int = 12, h: int = 8) -> table.Panel:
    """A table of instant values (targets must be table-format instant queries)."""
    panel = setup(table.Panel(), title, description, targets, unit=unit, w=w, h=h)
    return panel.cell_height(common.TableCellHeight.SM).show_header(True)


# -- annotations and links --------------------------------------------------------------
def builtin_annotations() -> dashboard.AnnotationQuery:
    """Grafana's own "Annotations & Alerts" (added by Grafana anyway; explicit here)."""
    return (dashboard.AnnotationQuery().name("Annotations & Alerts")
            .datasource(GRAFANA_DATASOURCE).enable(True).hide(True)
            .icon_color("rgba(0, 211, 255, 1)").type("dashboard").built_in(1))


def warning_annotations(name: str, tags: list[str], color: str) -> dashboard.AnnotationQuery:
    """Annotations from Grafana's store carrying every one of ``tags`` (template variables
    such as ``region:$region`` are interpolated by Grafana)."""
    target = (dashboard.AnnotationTarget().type("tags").tags(tags).match_any(False)
              .limit(500))
    # the SDK types AnnotationQuery.target as a data query; Grafana's own datasource takes
    # this AnnotationTarget (serialised as {type, tags, matchAny, limit})
    return (dashboard.AnnotationQuery().name(name).datasource(GRAFANA_DATASOURCE)
            .enable(True).hide(False).icon_color(color)
            .target(cast("cogbuilder.Builder[cogvariants.Dataquery]", target)))


def dashboard_links() -> dashboard.DashboardLink:
    """A drop-down of the other Tocsin dashboards, keeping the time range."""
    return (dashboard.DashboardLink("Tocsin dashboards").type(dm.DashboardLinkType.DASHBOARDS)
            .tags([TAG]).as_dropdown(True).keep_time(True).include_vars(False)
            .target_blank(False).icon("external link"))


def new_dashboard(uid: str, title: str, description: str, *, time_from: str,
                  refresh: str = "30s") -> dashboard.Dashboard:
    return (dashboard.Dashboard(title).uid(uid).description(description).tags([TAG])
            .editable().tooltip(dm.DashboardCursorSync.CROSSHAIR).timezone("browser")
            .time(time_from, "now").refresh(refresh).link(dashboard_links()))


# -- JSON -------------------------------------------------------------------------------
def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels nested in (collapsed) rows."""
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels") or [])


def to_json(built: dashboard.Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON values, with deterministic panel ids.

    The SDK gives each annotation query and dashboard link ``placement: inControlsMenu``
    (Grafana 12 then tucks them into the controls menu); it is dropped so the annotation
    toggles and the links stay visible on the dashboard."""
    model: dict[str, Any] = json.loads(json.dumps(built.build(), cls=JSONEncoder))
    for i, panel in enumerate(walk_panels(model.get("panels", [])), start=1):
        panel["id"] = i
    for item in [*model.get("annotations", {}).get("list", []), *model.get("links", [])]:
        item.pop("placement", None)
    return model
