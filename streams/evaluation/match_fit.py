"""Does a warning counted as an incident's detection fit that incident? ``tocsin eval
replay`` flags the matches that do not (a sensor fault plus a neighbour's complaints that
happen to fall near an incident); the scores never depend on it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from detectors.fusion.templates import Template, TemplateSet
from streams.core.schemas import Warning

if TYPE_CHECKING:
    from streams.evaluation.replay_score import TruthIncident

#: words too general to tie an incident's scenario name to a template ("counterfeit_wave"
#: is not a "Price-gouging wave")
GENERIC_WORDS = frozenset({"incident", "outbreak", "wave", "crisis", "nuisance", "event",
                           "quality", "fail", "level", "anomaly", "warning"})

#: evidence this long before the incident's start or after its end is not the incident's
#: (clock offsets of stations, late complaints)
EVIDENCE_SLACK = timedelta(hours=1)


def words(text: str) -> set[str]:
    """The lower-case words (3 letters or more, not generic) of a name or title."""
    return {w for w in re.split(r"[^a-z0-9]+", text.lower())
            if len(w) >= 3 and w not in GENERIC_WORDS}


def template_words(t: Template) -> set[str]:
    """A template's words: its name, its event title and its signal kinds (without the
    source prefix: ``complaint:air_quality`` gives ``air``)."""
    kinds = " ".join(k.split(":", 1)[-1] for k in t.kinds)
    return words(f"{t.name} {t.event} {kinds}")


def scenario_family(scenario: str, templates: TemplateSet) -> set[str]:
    """The templates an incident scenario name belongs to: those sharing a word with it
    (``river_pollution`` -> pollution; ``waterlogging`` -> flood, by its title). Empty when
    the name shares no word with any template: the scenario is then not judged."""
    mine = words(scenario)
    return {t.name for t in templates.scenarios if mine & template_words(t)}


def misfits(incident: TruthIncident, warning: Warning, templates: TemplateSet) -> list[str]:
    """Why ``warning`` does not fit ``incident``; empty when it fits.

    A warning fits the incident it matched when
    - its scenario is one of the templates the incident's scenario name belongs to
      (:func:`scenario_family`; not judged when the name fits no template, nor for a
      warning whose scenario is no template: a baseline's, the generic one's);
    - every department of its evidence sees the incident (the truth's ``sources`` or
      ``departments``; not judged when the truth lists neither);
    - every piece of evidence was observed in one of the incident's ``regions`` (judged
      only when the truth lists them: a truth without them does not say where the
      incident spilled over);
    - every piece of evidence falls between the incident's start and end, give or take
      :data:`EVIDENCE_SLACK`.
    """
    out: list[str] = []
    family = scenario_family(incident.scenario, templates)
    known = {t.name for t in templates.scenarios}
    if family and warning.scenario in known and warning.scenario not in family:
        out.append(f"scenario {warning.scenario} vs incident {incident.scenario}")
    seen_by = {*incident.sources, *incident.departments}
    if seen_by:
        alien = {e.department for e in warning.evidence
                 if e.source not in seen_by and e.department not in seen_by}
        if alien:
            out.append(f"evidence from {_names(alien)}, which the incident does not reach")
    if incident.regions:
        outside = {e.region for e in warning.evidence if e.region not in incident.regions}
        if outside:
            out.append(f"evidence in {_names(outside)}, outside the incident's regions")
    lo, hi = incident.start - EVIDENCE_SLACK, incident.end + EVIDENCE_SLACK
    stray = {e.signal for e in warning.evidence if not lo <= e.event_time <= hi}
    if stray:
        out.append(f"evidence outside the incident's time: {_names(stray)}")
    return out


def _names(xs: Iterable[str]) -> str:
    return ", ".join(sorted(xs))
