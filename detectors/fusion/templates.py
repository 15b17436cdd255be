"""Scenario templates: which signal kinds make an incident, and what its warning says.

Loaded from a YAML file the user edits (default ``detectors/data/scenarios.yaml``); see that
file for the format. Pure data, no Kafka.

>>> t = Template("pollution", frozenset({"env:water_cod", "complaint:odor"}),
...              severity=(SeverityRule("Severe", departments=3),
...                        SeverityRule("Moderate", score=8)))
>>> t.matches("env:water_cod"), t.matches("market:price:pork")
(True, False)
>>> t.severity_for(score=9.0, departments=2)
'Moderate'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CAP_CATEGORIES = frozenset({"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health",
                            "Env", "Transport", "Infra", "CBRNE", "Other"})
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor")
GENERIC = "cross_department"


class TemplateError(ValueError):
    """The scenario templates file is wrong; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class SeverityRule:
    """``level`` applies when every given condition holds (``None`` = no condition)."""

    level: str
    departments: int | None = None
    score: float | None = None

    def holds(self, score: float, departments: int) -> bool:
        return ((self.departments is None or departments >= self.departments)
                and (self.score is None or score >= self.score))


@dataclass(frozen=True, slots=True)
class Template:
    """A named scenario: the signal kinds (prefixes) that make it up and its warning text."""

    name: str
    kinds: frozenset[str]
    event: str = ""
    cap_category: str = "Other"
    instruction: str = ""
    severity: tuple[SeverityRule, ...] = ()
    certainty: tuple[SeverityRule, ...] = (SeverityRule("Likely", departments=3),
                                           SeverityRule("Likely", score=12.0))
    min_departments: int = 2
    #: the generic template only: False turns cross-department incidents that fit no
    #: scenario off (unrelated blips of three departments are mostly coincidence)
    enabled: bool = True
    #: sets of kinds that corroborate each other (a PM plume is not corroborated by a
    #: tap-water complaint): an incident opens on the evidence of one group; none: all
    #: the template's kinds are one group
    groups: tuple[frozenset[str], ...] = ()

    def matches(self, kind: str) -> bool:
        return kind_in(kind, self.kinds)

    @property
    def opening_groups(self) -> tuple[frozenset[str], ...]:
        """The kind sets an incident of this scenario may open on."""
        return self.groups or (self.kinds,)

    def severity_for(self, score: float, departments: int) -> str:
        for rule in self.severity:
            if rule.holds(score, departments):
                return rule.level
        return "Minor"

    def certainty_for(self, score: float, departments: int) -> str:
        return ("Likely" if any(r.holds(score, departments) for r in self.certainty)
                else "Possible")

    @property
    def title(self) -> str:
        return self.event or self.name.replace("_", " ").capitalize()


def kind_in(kind: str, kinds: frozenset[str]) -> bool:
    """Does ``kind`` match one of ``kinds`` (itself, or anything below it)?"""
    return any(kind == k or kind.startswith(k + ":") for k in kinds)


@dataclass(frozen=True, slots=True)
class TemplateSet:
    scenarios: tuple[Template, ...]
    generic: Template

    def get(self, name: str) -> Template:
        for t in self.scenarios:
            if t.name == name:
                return t
        return self.generic


def _rule(where: str, item: Any, level_key: str = "level") -> SeverityRule:
    if not isinstance(item, dict):
        raise TemplateError(f"{where}: expected a mapping like {{level: Severe, score: 20}}, "
                            f"got {item!r}")
    unknown = set(item) - {level_key, "departments", "score"}
    if unknown:
        raise TemplateError(f"{where}: unknown key(s) {sorted(unknown)}; use level, "
                            "departments, score")
    level = str(item.get(level_key, "Likely"))
    if level_key == "level" and level not in SEVERITIES:
        raise TemplateError(f"{where}: level {level!r} is not one of {', '.join(SEVERITIES)}")
    deps, score = item.get("departments"), item.get("score")
    if deps is not None and (isinstance(deps, bool) or not isinstance(deps, int) or deps < 1):
        raise TemplateError(f"{where}: departments must be a whole number >= 1, got {deps!r}")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)
                              or not math.isfinite(score)):
        raise TemplateError(f"{where}: score must be a number, got {score!r}")
    return SeverityRule(level, deps, None if score is None else float(score))


def _template(where: str, name: str, spec: Any, generic: bool = False) -> Template:
    if not isinstance(spec, dict):
        raise TemplateError(f"{where}: expected a mapping, got {type(spec).__name__}")
    allowed = {"event", "cap_category", "kinds", "severity", "certainty", "instruction",
               "min_departments"} | ({"enabled"} if generic else {"groups"})
    unknown = set(spec) - allowed
    if unknown:
        raise TemplateError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: "
                            f"{', '.join(sorted(allowed))}")
    kinds = spec.get("kinds", [])
    if not generic and (not isinstance(kinds, list) or not kinds
                        or not all(isinstance(k, str) and ":" in k for k in kinds)):
        raise TemplateError(f"{where}: kinds must be a non-empty list of signal kinds like "
                            f"'env:water_cod' or 'complaint:odor', got {kinds!r}")
    category = spec.get("cap_category", "Other")
    if category not in CAP_CATEGORIES:
        raise TemplateError(f"{where}: cap_category {category!r} is not a CAP 1.2 category "
                            f"({', '.join(sorted(CAP_CATEGORIES))})")
    rules = spec.get("severity", [])
    if not isinstance(rules, list):
        raise TemplateError(f"{where}: severity must be a list of rules")
    min_dep = spec.get("min_departments", 3 if generic else 2)
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise TemplateError(f"{where}: enabled must be true or false, got {enabled!r}")
    if isinstance(min_dep, bool) or not isinstance(min_dep, int) or min_dep < 2:
        raise TemplateError(f"{where}: min_departments must be a whole number >= 2, "
                            f"got {min_dep!r}")
    cert = spec.get("certainty", [{"departments": 3}, {"score": 12}])
    if not isinstance(cert, list):
        raise TemplateError(f"{where}: certainty must be a list of conditions, any of which "
                            "makes the warning Likely, e.g. [{departments: 3}, {score: 12}]")
    groups = spec.get("groups", {})
    if not isinstance(groups, dict) or not all(isinstance(g, list) and g
                                               for g in groups.values()):
        raise TemplateError(f"{where}: groups must map a name to a non-empty list of kinds, "
                            "e.g. {air: [env:pm25, complaint:odor]}")
    for gname, g in groups.items():
        stray = [k for k in g if not isinstance(k, str) or k not in kinds]
        if stray:
            raise TemplateError(f"{where}: groups.{gname}: {stray[0]!r} is not one of this "
                                "template's kinds; add it to kinds or drop it from the group")
    return Template(
        groups=tuple(frozenset(g) for g in groups.values()),
        name=name, kinds=frozenset(str(k) for k in (kinds or [])),
        event=str(spec.get("event", "")), cap_category=str(category),
        instruction=" ".join(str(spec.get("instruction", "")).split()),
        severity=tuple(_rule(f"{where}: severity #{i + 1}", r) for i, r in enumerate(rules)),
        certainty=tuple(_rule(f"{where}: certainty #{i + 1}", c, level_key="_")
                        for i, c in enumerate(cert)),
        min_departments=min_dep, enabled=enabled,
    )


def parse_templates(data: Any, where: str = "<templates>") -> TemplateSet:
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), dict) \
            or not data["scenarios"]:
        raise TemplateError(f"{where}: expected a mapping with a non-empty 'scenarios' "
                            "mapping (name -> template)")
    scenarios = tuple(_template(f"{where}: scenarios.{n}", str(n), s)
                      for n, s in data["scenarios"].items())
    if GENERIC in {t.name for t in scenarios}:
        raise TemplateError(f"{where}: {GENERIC!r} is reserved for the generic template")
    generic = _template(f"{where}: generic", GENERIC, data.get("generic", {}), generic=True)
    return TemplateSet(scenarios, generic)


def load_templates(path: str | Path) -> TemplateSet:
    """Read a scenario templates YAML file; :class:`TemplateError` names what is wrong."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"cannot read scenario templates {p}: {exc.strerror or exc}"
                            ) from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{p}: not valid YAML: {exc}") from exc
    return parse_templates(data, str(p))


DEFAULT_FILE = Path(__file__).resolve().parents[1] / "data" / "scenarios.yaml"

__all__ = ["CAP_CATEGORIES", "DEFAULT_FILE", "GENERIC", "SeverityRule", "Template",
           "TemplateError", "TemplateSet", "kind_in", "load_templates", "parse_templates"]
