"""``tocsin signals``: the signal catalogue in force (``TOCSIN_SIGNALS``), checked as a
worker checks it at start."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def signals(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the signal catalogue in force: each metric's canonical and accepted units, bad
    direction, regulatory limits with their source, and the scenario templates it feeds."""
    from detectors.fusion.templates import DEFAULT_FILE, load_templates
    from streams.core.regions import RegionRegistry
    from streams.core.settings import load_settings
    from streams.core.signals import catalogue_json, signals_for, with_signals

    s = load_settings()
    cat = signals_for(s, RegionRegistry.from_csv(s.region_registry).ids())
    doc = catalogue_json(cat, with_signals(load_templates(s.scenarios or DEFAULT_FILE), cat))
    if as_json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"Signal catalogue: {escape(doc['file'])}", title_justify="left")
    for col in ("metric", "category", "unit", "accepted (x factor)", "bad", "limits",
                "templates"):
        table.add_column(col, overflow="fold")
    for metric, d in doc["metrics"].items():
        accepted = ", ".join(f"{u} x{f:g}" for u, f in d["accepted"].items())
        table.add_row(metric, d["category"], d["unit"], escape(accepted), d["bad"],
                      escape(_limits(d["limits"], d["unit"])), ", ".join(d["templates"]))
    Console().print(table)


def _limits(limits: list[dict[str, Any]], unit: str) -> str:
    out = []
    for lim in limits:
        sign = ">" if lim["direction"] == "above" else "<"
        line = f"{sign} {lim['value']:g} {unit} ({lim['source']})"
        for scope in ("regions", "stations"):
            for name, o in lim[scope].items():
                line += f"; {name}: {sign} {o['value']:g} ({o['source']})"
        out.append(line)
    return "\n".join(out) or "-"


__all__ = ["signals"]
