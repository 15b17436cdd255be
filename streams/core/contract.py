"""The published contract (``tocsin schema``): each topic's JSON Schema, typed, with the
regions of the region registry in force, the metrics and units of the signal catalogue in
force (``TOCSIN_SIGNALS``) and the price units as enums; the replay file's line format
(``replay``); the signal catalogue's metrics, categories and units (``signals``)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from detectors.signals.catalogue import Catalogue
from streams.core.schemas import SOURCE_MODELS, SOURCES, json_schemas
from streams.core.topics import SOURCE_TOPICS
from streams.core.units import PRICE_UNITS

if TYPE_CHECKING:
    from streams.core.settings import TocsinSettings

#: the keys of the two schemas that are not topics
REPLAY = "replay"
SIGNALS = "signals"


def _tidy(node: Any) -> None:
    """Descriptions on one line (field docstrings span several)."""
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            node["description"] = " ".join(node["description"].split()).replace("``", "`")
        for v in node.values():
            _tidy(v)
    elif isinstance(node, list):
        for v in node:
            _tidy(v)


def _enum(prop: dict[str, Any], values: Iterable[str], note: str = "") -> None:
    """Restrict ``prop`` (a string, or a string or null) to ``values``."""
    values = sorted(values)
    if "anyOf" in prop:
        for alt in prop["anyOf"]:
            if alt.get("type") == "string":
                alt["enum"] = values
    else:
        prop["enum"] = values
    prop["description"] = f"{prop.get('description', '')} {note}".strip()


def _units_by_metric(cat: Catalogue) -> list[dict[str, Any]]:
    return [{"if": {"properties": {"metric": {"const": m}}, "required": ["metric"]},
             "then": {"properties": {"unit": {"enum": sorted(spec.accepted)}}}}
            for m, spec in sorted(cat.metrics.items())]


def topic_schemas(regions: Iterable[str], cat: Catalogue) -> dict[str, dict[str, Any]]:
    """Each topic's schema; the source topics' with the enums of the files in force."""
    out = json_schemas()
    regions = sorted(regions)
    for src, topic in SOURCE_TOPICS.items():
        assert out[topic]["title"] == SOURCE_MODELS[src].__name__
        _enum(out[topic]["properties"]["region"], regions)
    env = out[SOURCE_TOPICS["env"]]
    _enum(env["properties"]["metric"], cat.metrics, f"Catalogue in force: {cat.path}.")
    _enum(env["properties"]["unit"], {u for s in cat.metrics.values() for u in s.accepted},
          "Each metric accepts only its own units (allOf).")
    env["allOf"] = _units_by_metric(cat)
    _enum(out[SOURCE_TOPICS["market"]]["properties"]["unit"], PRICE_UNITS,
          "Converted to CNY/kg, CNY/L or CNY/item.")
    _tidy(out)
    return out


def replay_schema(topics: dict[str, dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    """One line of a replay file (``tocsin replay``, ``eval replay``, ``validate``): a
    source record with a ``source`` field naming its topic."""
    maps = {src: f"{prefix}{SOURCE_TOPICS[src]} ({SOURCE_MODELS[src].__name__})"
            for src in SOURCES}
    variants = []
    for src in SOURCES:
        s = copy.deepcopy(topics[SOURCE_TOPICS[src]])
        s["title"] = f"Replay line: {src}"
        s["properties"] = {"source": {"const": src, "type": "string"}, **s["properties"]}
        s["required"] = ["source", *s.get("required", [])]
        s["examples"] = [{"source": src, **e} for e in s.get("examples", [])]
        variants.append(s)
    return {
        "title": "Replay line",
        "description": "A replay file is UTF-8 JSONL: one JSON object per line, a source "
        "record plus a 'source' field naming its topic: "
        + "; ".join(f"{k} -> {v}" for k, v in maps.items())
        + ". The 'source' is taken out before the record is produced, keyed by its region. "
        "Blank lines are skipped; any other line that is not such an object is "
        "dead-lettered (error type replay_line). Check a file with tocsin validate FILE.",
        "type": "object",
        "properties": {"source": {"type": "string", "enum": list(SOURCES),
                                  "description": "; ".join(f"{k}: {v}"
                                                           for k, v in maps.items())}},
        "required": ["source"],
        "oneOf": variants,
        "examples": [e for v in variants for e in v["examples"]],
    }


def signals_schema(cat: Catalogue) -> dict[str, Any]:
    """A metric of the signal catalogue in force: its category, canonical and accepted
    units (one example per metric: the whole catalogue)."""
    entries = [{"metric": m, "category": s.category, "unit": s.unit,
                "accepted": dict(s.accepted), "bad": s.bad}
               for m, s in sorted(cat.metrics.items())]
    return {
        "title": "Signal catalogue metric",
        "description": f"The signal catalogue in force: {cat.path} (TOCSIN_SIGNALS). An "
        "env reading's metric must be one of these, in one of its accepted units (value x "
        "factor = the canonical unit). tocsin signals lists the limits and templates too.",
        "type": "object",
        "properties": {
            "metric": {"type": "string", "enum": [e["metric"] for e in entries]},
            "category": {"type": "string",
                         "enum": sorted({e["category"] for e in entries})},
            "unit": {"type": "string", "description": "The canonical unit.",
                     "enum": sorted({e["unit"] for e in entries})},
            "accepted": {"type": "object", "description": "Accepted unit -> factor.",
                         "propertyNames": {"enum": sorted({u for e in entries
                                                           for u in e["accepted"]})},
                         "additionalProperties": {"type": "number", "exclusiveMinimum": 0}},
            "bad": {"type": "string", "enum": ["up", "down", "both"],
                    "description": "Which way is bad."},
        },
        "required": ["metric", "category", "unit", "accepted", "bad"],
        "examples": entries,
    }


def contract(settings: TocsinSettings) -> dict[str, dict[str, Any]]:
    """Everything ``tocsin schema`` prints, for the files ``settings`` name."""
    from streams.core.regions import RegionRegistry
    from streams.core.signals import signals_for

    regions = RegionRegistry.from_csv(settings.region_registry).ids()
    cat = signals_for(settings, regions)
    out = topic_schemas(regions, cat)
    out[REPLAY] = replay_schema(out, settings.topic_prefix)
    out[SIGNALS] = signals_schema(cat)
    return out


__all__ = ["REPLAY", "SIGNALS", "contract", "replay_schema", "signals_schema",
           "topic_schemas"]
