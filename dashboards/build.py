"""All Tocsin dashboards as JSON models, their files, and helpers to read their queries.

``python -m dashboards`` writes ``dashboards/json/<uid>.json``; ``--check`` compares."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard

from . import health, overview, region
from .common import DATASOURCE_UID, to_json, walk_panels

__all__ = ["BUILTIN_VARIABLES", "DATASOURCE_UID", "JSON_DIR", "PROVISIONED_PATH",
           "all_dashboards", "check", "expand", "panel_queries", "render", "write"]

#: where the generated JSON is committed
JSON_DIR = Path(__file__).resolve().parent / "json"
#: where the compose file mounts ``dashboards/json`` in the Grafana container (the file
#: provider in deploy/grafana/provisioning/dashboards/tocsin.yaml reads it)
PROVISIONED_PATH = "/var/lib/grafana/dashboards/tocsin"

BUILDERS: tuple[Callable[[], dashboard.Dashboard], ...] = (
    overview.build, region.build, health.build)

#: Grafana's built-in interval variables, as a test without Grafana substitutes them
BUILTIN_VARIABLES = {
    "__rate_interval": "1m", "__interval": "30s", "__range": "1h",
    "__rate_interval_ms": "60000", "__interval_ms": "30000",
    "__range_s": "3600", "__range_ms": "3600000",
}

# Grafana's template syntaxes: $var, ${var} / ${var:format}, [[var]] / [[var:format]]
_VARIABLE = re.compile(
    r"\$\{(?P<braced>\w+)(?::[^}]*)?\}|\[\[(?P<bracket>\w+)(?::[^\]]*)?\]\]|\$(?P<plain>\w+)")


def all_dashboards() -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON model (plain dicts, as written to ``dashboards/json``)."""
    models = [to_json(build()) for build in BUILDERS]
    return {m["uid"]: m for m in models}


def render(model: dict[str, Any]) -> str:
    """The file content of one dashboard: sorted keys, 2-space indent, final newline."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def filename(uid: str) -> str:
    return f"{uid}.json"


def write(out_dir: Path = JSON_DIR) -> list[Path]:
    """Write every dashboard; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, model in all_dashboards().items():
        path = out_dir / filename(uid)
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


def check(out_dir: Path = JSON_DIR) -> list[str]:
    """Names of the files that differ from a fresh build (missing, changed or unexpected)."""
    expected = {filename(uid): render(m) for uid, m in all_dashboards().items()}
    stale = []
    for name, text in sorted(expected.items()):
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    if out_dir.is_dir():
        stale += sorted(p.name for p in out_dir.glob("*.json") if p.name not in expected)
    return stale


def panel_queries(model: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expr) of every target of every panel, rows' panels included."""
    return [(panel.get("title", ""), target["expr"])
            for panel in walk_panels(model.get("panels", []))
            for target in panel.get("targets") or []
            if target.get("expr")]


def expand(expr: str, variables: dict[str, str]) -> str:
    """``expr`` with template variables substituted as Grafana would for one value each.

    ``variables`` maps names (without ``$``) to values; Grafana's interval variables
    (``$__rate_interval`` 1m, ``$__interval`` 30s, ``$__range`` 1h, ...) have defaults
    that ``variables`` overrides. Unknown names are left as they are, as Grafana does.

    >>> expand('rate(x{region="$region"}[$__rate_interval])', {"region": "r1"})
    'rate(x{region="r1"}[1m])'
    >>> expand("[[a]] ${a} ${a:raw} $a $b", {"a": "1"})
    '1 1 1 1 $b'
    """
    values = {**BUILTIN_VARIABLES, **variables}

    def substitute(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bracket") or m.group("plain")
        return values.get(name, m.group(0))

    return _VARIABLE.sub(substitute, expr)
