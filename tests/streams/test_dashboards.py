"""The Grafana dashboards (dashboards/): committed JSON is what the code generates, every
panel queries the provisioned Prometheus with metric names the worker exports, the PromQL
parses (promtool), template variables expand, and the provisioning files agree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from dashboards.__main__ import main as dashboards_main
from dashboards.build import (
    BUILTIN_VARIABLES,
    JSON_DIR,
    PROVISIONED_PATH,
    all_dashboards,
    check,
    expand,
    panel_queries,
    render,
)
from dashboards.common import walk_panels
from streams.runtime.metrics import TocsinMetrics
from tests.services import ensure_binary

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
UIDS = ("tocsin-overview", "tocsin-region", "tocsin-health")
DATASOURCE_UID = "prometheus"

DASHBOARDS = all_dashboards()


def variables_of(model: dict[str, Any]) -> dict[str, str]:
    """A value for each template variable of the dashboard."""
    return {v["name"]: f"{v['name']}-1" for v in model.get("templating", {}).get("list", [])}


def all_queries() -> list[tuple[str, str, str]]:
    return [(uid, title, expr) for uid, model in DASHBOARDS.items()
            for title, expr in panel_queries(model)]


def data_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in walk_panels(model["panels"]) if p["type"] != "row"]


# -- generated == committed -------------------------------------------------------------
def test_the_three_dashboards() -> None:
    assert set(DASHBOARDS) == set(UIDS)


@pytest.mark.parametrize("uid", UIDS)
def test_committed_json_is_generated(uid: str) -> None:
    path = JSON_DIR / f"{uid}.json"
    assert path.is_file(), f"{path} missing: run `python -m dashboards`"
    assert path.read_text(encoding="utf-8") == render(DASHBOARDS[uid]), (
        f"{path} differs from the code: run `python -m dashboards` and commit the JSON")


def test_check_finds_nothing_stale() -> None:
    assert check() == [], "run `python -m dashboards` and commit dashboards/json"


def test_generation_is_deterministic() -> None:
    again = all_dashboards()
    assert [render(m) for m in again.values()] == [render(m) for m in DASHBOARDS.values()]
    text = render(DASHBOARDS["tocsin-overview"])
    assert text.endswith("}\n") and '\n  "annotations"' in text  # indent 2, sorted keys


def test_cli_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dashboards_main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert all(f"{uid}.json" in err for uid in UIDS) and "python -m dashboards" in err
    assert dashboards_main(["--out", str(tmp_path)]) == 0
    assert dashboards_main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "tocsin-region.json").write_text("{}\n")
    (tmp_path / "old.json").write_text("{}\n")
    assert dashboards_main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "tocsin-region.json" in err and "old.json" in err and "overview" not in err


@pytest.mark.parametrize("uid", UIDS)
def test_json_model_basics(uid: str) -> None:
    model = DASHBOARDS[uid]
    assert model["uid"] == uid
    assert model["title"].startswith("Tocsin")
    assert isinstance(model["schemaVersion"], int) and model["schemaVersion"] > 30
    assert "tocsin" in model["tags"]
    ids = [p["id"] for p in walk_panels(model["panels"])]
    assert len(ids) == len(set(ids))


# -- panels and queries -----------------------------------------------------------------
@pytest.mark.parametrize("uid", UIDS)
def test_every_panel_queries_the_prometheus_datasource(uid: str) -> None:
    panels = data_panels(DASHBOARDS[uid])
    assert panels
    for panel in panels:
        title = panel["title"]
        assert title and panel.get("description"), f"{uid}: panel without title/description"
        assert panel["datasource"]["uid"] == DATASOURCE_UID, title
        targets = panel.get("targets") or []
        assert any(t.get("expr", "").strip() for t in targets), f"{title}: no query"
        for t in targets:
            assert t["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, title
            assert t["refId"] and t["expr"].strip(), title
        assert len({t["refId"] for t in targets}) == len(targets), title


def test_panel_queries_include_collapsed_rows() -> None:
    health = DASHBOARDS["tocsin-health"]
    collapsed = [p for p in health["panels"] if p["type"] == "row" and p.get("collapsed")]
    assert collapsed and collapsed[0]["panels"]
    nested = {p["title"] for p in collapsed[0]["panels"]}
    assert nested <= {title for title, _ in panel_queries(health)}
    n_targets = sum(len(p.get("targets", [])) for p in data_panels(health))
    assert len(panel_queries(health)) == n_targets


def exported_metrics() -> tuple[set[str], set[str]]:
    """(sample names, label names) a worker exports, from streams.runtime.metrics itself."""
    registry = CollectorRegistry()
    metrics = TocsinMetrics(registry, regions=["a"], scenarios=["pollution"])
    metrics.add_signal_reader(lambda: [("a", "env", "env:pm25", 1.0, 1.0)])
    metrics.add_entity_reader(lambda: [("911100000000007773", 7.0)])
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created"), "info": ("_info",)}
    names = {"up"}
    for family in registry.collect():
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        names |= {s.name for s in family.samples}
    labels = {"le", "job", "instance", "__name__", "region", "department", "signal", "entity"}
    parts = list(vars(metrics).values())
    parts += [m for p in parts if hasattr(p, "__dict__") and not isinstance(
        p, MetricWrapperBase) for m in vars(p).values()]  # groups such as .stations
    for metric in parts:
        if isinstance(metric, MetricWrapperBase):
            labels |= set(metric._labelnames)
    return names, labels


NAMES, LABELS = exported_metrics()
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
             "or", "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (not functions, keywords or label names)."""
    s = _STRING.sub('""', expr)
    s = _MATCHERS.sub(" ", s)
    s = _GROUPING.sub(" ", s)
    s = _RANGE.sub(" ", s)
    return {m.group(1) for m in _IDENT.finditer(s)
            if not m.group(2) and m.group(1).lower() not in _KEYWORDS}


def label_names(expr: str) -> set[str]:
    s = _STRING.sub('""', expr)
    out = set()
    for m in _MATCHERS.finditer(s):
        out |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(1)))
    for m in _GROUPING.finditer(s):
        out |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    return out


def test_metric_name_parser() -> None:
    expr = ('histogram_quantile(0.9, sum by (le, x) (rate(tocsin_a_bucket{region="$r"}[5m])))'
            ' / clamp_min(sum without (y) (b_total), 1e-9) or on () vector(0)'
            ' + label_replace(c, "s", "T", "", "") * on (region) group_left () time()')
    assert metric_names(expr) == {"tocsin_a_bucket", "b_total", "c"}
    assert label_names(expr) == {"le", "x", "region", "y"}


@pytest.mark.parametrize(("uid", "title", "expr"), all_queries())
def test_queries_use_exported_metrics_and_labels(uid: str, title: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{uid} / {title}: no metric in {expr!r}"
    assert names <= NAMES, f"{uid} / {title}: unknown metric(s) {names - NAMES}"
    assert label_names(expr) <= LABELS, f"{uid} / {title}: unknown label(s)"


def test_expanded_queries_parse_with_promtool(tmp_path: Path) -> None:
    promtool = ensure_binary("promtool")
    rules = [{"record": f"tocsin_check:rule{i}",
              "expr": expand(expr, variables_of(DASHBOARDS[uid]))}
             for i, (uid, _, expr) in enumerate(all_queries())]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


# -- dashboards' specifics --------------------------------------------------------------
def test_region_dashboard_is_templated_by_region() -> None:
    model = DASHBOARDS["tocsin-region"]
    (var,) = model["templating"]["list"]
    assert var["name"] == "region" and var["type"] == "query"
    assert var["query"] == "label_values(tocsin_region_info, region)"
    assert var["datasource"]["uid"] == DATASOURCE_UID
    for title, expr in panel_queries(model):
        assert 'region="$region"' in expr, title
    depts = {d for _, e in panel_queries(model)
             for d in re.findall(r'tocsin_signal_observed\{[^}]*department="(\w+)"', e)}
    assert depts == {"env", "complaint", "market"}
    tags = [a["target"]["tags"] for a in model["annotations"]["list"] if "target" in a]
    assert ["tocsin", "region:$region"] in tags


def test_overview_shows_warning_annotations() -> None:
    annotations = DASHBOARDS["tocsin-overview"]["annotations"]["list"]
    tagged = [a for a in annotations if a.get("target", {}).get("type") == "tags"]
    assert any(a["target"]["tags"] == ["tocsin"] and a["enable"] for a in tagged)
    assert all(a["datasource"]["type"] == "grafana" for a in tagged)
    assert all("placement" not in a for a in annotations)


def test_overview_geomap_uses_registry_coordinates() -> None:
    (geo,) = [p for p in DASHBOARDS["tocsin-overview"]["panels"] if p["type"] == "geomap"]
    (layer,) = geo["options"]["layers"]
    assert layer["location"] == {"mode": "coords", "latitude": "latitude",
                                 "longitude": "longitude"}
    (target,) = geo["targets"]
    assert target["format"] == "table" and target["instant"]
    assert "tocsin_region_info" in target["expr"] and "group_left" in target["expr"]


def test_queries_that_may_have_no_series_fall_back_to_zero() -> None:
    for uid, title, expr in all_queries():
        if "tocsin_notifications_total" in expr:
            assert "vector(0)" in expr, f"{uid} / {title}"


# -- expand -----------------------------------------------------------------------------
def test_expand_examples() -> None:
    assert expand('x{region="$region"}[$__rate_interval]', {"region": "r1"}) == \
        'x{region="r1"}[1m]'
    assert expand("[[a]]+${a}+${a:raw}+$a+$__interval+${__range}", {"a": "v"}) == \
        "v+v+v+v+30s+1h"
    assert expand("$__rate_interval $__range", {"__rate_interval": "5m",
                                                "__range": "2h"}) == "5m 2h"
    assert expand('label_replace(x, "a", "$1", "b", "(.*)") $unknown', {}) == \
        'label_replace(x, "a", "$1", "b", "(.*)") $unknown'


@pytest.mark.parametrize("uid", UIDS)
def test_expanded_queries_have_no_variables_left(uid: str) -> None:
    for title, expr in panel_queries(DASHBOARDS[uid]):
        out = expand(expr, variables_of(DASHBOARDS[uid]))
        assert "$" not in out and "[[" not in out, f"{title}: {out}"


_names = st.one_of(st.sampled_from(sorted(BUILTIN_VARIABLES)),
                   st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))
# no "$" and no "]" in the literal text, so it holds no variable reference of its own
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="$]"), max_size=12)
_value = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="$"), max_size=8)


@given(parts=st.lists(st.tuples(_text, _names, st.sampled_from(["plain", "braced", "fmt",
                                                                   "bracket"])),
                      max_size=8),
       values=st.dictionaries(_names, _value))
def test_expand_substitutes_every_form(parts: list[tuple[str, str, str]],
                                       values: dict[str, str]) -> None:
    defined = {**BUILTIN_VARIABLES, **values}
    for _, name, _ in parts:
        defined.setdefault(name, "v")
    template, expected = "", ""
    for i, (text, name, form) in enumerate(parts):
        nxt = parts[i + 1][0] if i + 1 < len(parts) else ""
        if form == "plain" and re.match(r"\w", nxt):
            form = "braced"  # "$ab" + "c" would be the variable "abc", in Grafana too
        ref = {"plain": f"${name}", "braced": f"${{{name}}}", "fmt": f"${{{name}:raw}}",
               "bracket": f"[[{name}]]"}[form]
        template += text + ref
        expected += text + defined[name]
    out = expand(template, defined)
    assert "$" not in out
    assert out == expected


# -- provisioning -----------------------------------------------------------------------
def test_datasource_provisioning() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (ds,) = doc["datasources"]
    assert ds["uid"] == DATASOURCE_UID and ds["type"] == "prometheus"
    assert ds["url"] == "http://prometheus:9090" and ds["isDefault"] is True


def test_dashboard_provisioning() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "tocsin.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == PROVISIONED_PATH
    compose = ROOT / "deploy" / "compose.yaml"
    if compose.is_file():  # the compose file mounts dashboards/json there
        assert f"../dashboards/json:{PROVISIONED_PATH}" in compose.read_text()
