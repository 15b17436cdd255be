"""The signal catalogue in force (``TOCSIN_SIGNALS``, default ``streams/data/signals.yaml``):
read once per process by the source stage, checked against the region registry and the
scenario templates in force, and the kinds it adds to those templates. The file format and
the parser are :mod:`detectors.signals.catalogue`'s."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.fusion.templates import DEFAULT_FILE as DEFAULT_TEMPLATES
from detectors.fusion.templates import Template, TemplateSet, load_templates
from detectors.signals.catalogue import Catalogue, CatalogueError, load_catalogue
from streams.core.errors import ConfigError

if TYPE_CHECKING:
    from streams.core.settings import TocsinSettings

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "data" / "signals.yaml"


def load_signals(path: Path | None, regions: Iterable[str] | None = None,
                 templates: Iterable[str] | None = None) -> Catalogue:
    """The catalogue at ``path`` (None: the packaged one), its region overrides checked
    against ``regions`` and its template names against ``templates`` (None: not checked).
    :class:`ConfigError` (exit 2) names the file and the entry that is wrong."""
    try:
        cat = load_catalogue(path or DEFAULT_FILE)
    except CatalogueError as e:
        raise ConfigError(f"TOCSIN_SIGNALS: {e}") from None
    known_regions = None if regions is None else set(regions)
    known_templates = None if templates is None else set(templates)
    for m, spec in cat.metrics.items():
        if known_templates is not None:
            for name in spec.templates:
                if name not in known_templates:
                    raise ConfigError(
                        f"TOCSIN_SIGNALS: {cat.path}: metrics.{m}.templates: no scenario "
                        f"template {name!r}; known: {', '.join(sorted(known_templates))}")
        if known_regions is None:
            continue
        for i, lim in enumerate(spec.limits):
            for region in lim.regions:
                if region not in known_regions:
                    raise ConfigError(
                        f"TOCSIN_SIGNALS: {cat.path}: metrics.{m}.limits.{i}.regions.{region}:"
                        " not a region of the region registry")
    return cat


@cache
def packaged() -> Catalogue:
    """The packaged catalogue (read once, on first use): what an ``Ingestor`` or
    ``DetectParams`` built without a catalogue uses."""
    return load_signals(None)


def signals_for(settings: TocsinSettings, regions: Iterable[str]) -> Catalogue:
    """The catalogue of ``settings`` (``TOCSIN_SIGNALS``), checked against ``regions`` and
    the scenario templates of ``settings`` (``TOCSIN_SCENARIOS``)."""
    templates = load_templates(settings.scenarios or DEFAULT_TEMPLATES)
    return load_signals(settings.signals, regions, [t.name for t in templates.scenarios])


def with_signals(templates: TemplateSet, cat: Catalogue) -> TemplateSet:
    """``templates`` with each catalogue metric's kind (``env:<metric>``) in the templates it
    feeds. A template with groups takes the kind into the groups that hold a metric of the
    same category (none: into its kinds only, so it corroborates but does not open)."""
    category = {f"env:{m}": spec.category for m, spec in cat.metrics.items()}
    feeds: dict[str, list[str]] = {}
    for m, spec in cat.metrics.items():
        for name in spec.templates:
            feeds.setdefault(name, []).append(f"env:{m}")
    scenarios = []
    for t in templates.scenarios:
        new = [k for k in feeds.get(t.name, ()) if not t.matches(k)]
        scenarios.append(_with_kinds(t, new, category) if new else t)
    return TemplateSet(tuple(scenarios), templates.generic)


def _with_kinds(t: Template, kinds: list[str], category: dict[str, str]) -> Template:
    groups = tuple(
        g | {k for k in kinds if any(category.get(old) == category[k] for old in g)}
        for g in t.groups)
    return dataclasses.replace(t, kinds=t.kinds | set(kinds), groups=groups)


def fed_templates(templates: TemplateSet, metric: str) -> list[str]:
    """The templates in force that ``metric``'s anomalies feed."""
    return [t.name for t in templates.scenarios if t.matches(f"env:{metric}")]


def catalogue_json(cat: Catalogue, templates: TemplateSet | None = None) -> dict[str, Any]:
    """The catalogue as a JSON-able mapping: metrics, units, categories, directions,
    limits; with ``templates``, each metric's templates are those in force."""
    out = cat.as_json()
    if templates is not None:
        for m, d in out["metrics"].items():
            d["templates"] = fed_templates(templates, m)
    return out


__all__ = ["DEFAULT_FILE", "catalogue_json", "fed_templates", "load_signals", "packaged",
           "signals_for", "with_signals"]
