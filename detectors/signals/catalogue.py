"""The signal catalogue: every sensor metric Tocsin accepts, read from a YAML file the user
edits (default ``streams/data/signals.yaml``, setting ``TOCSIN_SIGNALS``; see that file for
the format). Per metric: its canonical unit and the accepted units with their factors to
it, the direction that is bad (``up``, ``down``, ``both``), its category, the scenario
templates it feeds and its regulatory limits (metric-wide, overridden per region or per
station, each with its legal source). Pure data, no Kafka; the checks that need the region
registry and the templates in force are :func:`streams.core.signals.load_signals`'.

>>> cat = parse_catalogue({"metrics": {"do": {
...     "unit": "mg/L", "accepted": {"mg/L": 1, "ug/L": 0.001}, "bad": "down",
...     "limits": [{"value": 5, "source": "GB 3838-2002 class III",
...                 "regions": {"R01": {"value": 6, "source": "local rule"}}}]}}}, "x.yaml")
>>> cat.metrics["do"].factor("ug/L"), cat.directions()
(0.001, {'do': 'down'})
>>> [(lim.limit, lim.direction) for lim in cat.limits_for("do", region="R01")]
[(6.0, 'below')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from detectors.signals.limits import Direction, Limit

Bad = Literal["up", "down", "both"]
#: libyaml's safe loader when built (ten times faster), else PyYAML's
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: the limit direction a metric's bad direction implies (``both``: each limit says)
_LIMIT_DIRECTION: dict[str, Direction] = {"up": "above", "down": "below"}


class CatalogueError(ValueError):
    """The signal catalogue is wrong; the message names the file and the entry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LimitOverride(_Strict):
    """A region's or a station's own value of a limit, with its legal source."""

    value: float = Field(strict=True, allow_inf_nan=False,
                         description="The limit, in the canonical unit.")
    source: str = Field(min_length=1, description="The regulation it comes from.")


class LimitSpec(_Strict):
    """A regulatory limit of a metric; overridden per region or per station."""

    value: float = Field(strict=True, allow_inf_nan=False,
                         description="The limit, in the canonical unit.")
    direction: Direction | None = Field(
        None, description="above: exceeded when the value goes above it; below: under it "
        "(default: from the metric's bad direction; required when that is both).")
    source: str = Field(min_length=1, description="The regulation it comes from.")
    regions: dict[str, LimitOverride] = Field(default_factory=dict)
    stations: dict[str, LimitOverride] = Field(default_factory=dict)


class MetricSpec(_Strict):
    """One sensor metric."""

    label: str = Field("", description="How warning explanations name it, e.g. COD "
                       "(default: the metric name).")
    unit: str = Field(min_length=1, description="The canonical unit readings are stored in.")
    accepted: dict[str, Annotated[float, Field(strict=True)]] = Field(
        description="Accepted unit -> factor to the canonical unit (value x factor).")
    bad: Bad = Field("up", description="Which way is bad: up, down or both.")
    category: str = Field("other", min_length=1, description="What is measured: air, water...")
    templates: tuple[str, ...] = Field((), description="Scenario templates it feeds.")
    limits: tuple[LimitSpec, ...] = ()

    @field_validator("accepted")
    @classmethod
    def _factors(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("list at least one accepted unit")
        for unit, factor in v.items():
            if not unit.strip():
                raise ValueError("an accepted unit is empty")
            if not (math.isfinite(factor) and factor > 0):
                raise ValueError(f"the factor of {unit!r} must be a positive number, "
                                 f"got {factor!r}")
        return {unit.strip(): float(f) for unit, f in v.items()}

    def factor(self, unit: str) -> float | None:
        """The factor of ``unit`` to the canonical unit; None if it is not accepted."""
        return self.accepted.get(unit.strip())

    def limit_direction(self, spec: LimitSpec) -> Direction:
        return spec.direction or _LIMIT_DIRECTION[self.bad]


class _CatalogueFile(_Strict):
    metrics: dict[str, MetricSpec] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The metrics of one catalogue file (``path`` names it in every message)."""

    path: str
    metrics: dict[str, MetricSpec]
    #: limits_for's answers: asked for every sensor reading, they change only with the file
    _limits: dict[tuple[str, str | None, str | None], tuple[Limit, ...]] = field(
        default_factory=dict, compare=False, repr=False)

    def get(self, metric: str) -> MetricSpec | None:
        return self.metrics.get(metric)

    def words(self) -> dict[str, tuple[str, str, str]]:
        """metric -> (label, canonical unit, category): how explanations name it."""
        return {m: (spec.label or m.replace("_", " "), spec.unit, spec.category)
                for m, spec in self.metrics.items()}

    def directions(self) -> dict[str, str]:
        """metric -> bad direction (up, down, both)."""
        return {m: spec.bad for m, spec in self.metrics.items()}

    def limits_for(self, metric: str, region: str | None = None,
                   station: str | None = None) -> tuple[Limit, ...]:
        """The limits in force for ``metric`` at ``station`` in ``region``: a station's
        override before its region's before the metric-wide value."""
        key = (metric, region, station)
        found = self._limits.get(key)
        if found is None:
            found = self._limits[key] = self._limits_of(metric, region, station)
        return found

    def _limits_of(self, metric: str, region: str | None, station: str | None
                   ) -> tuple[Limit, ...]:
        spec = self.metrics.get(metric)
        if spec is None:
            return ()
        out = []
        for lim in spec.limits:
            over = ((lim.stations.get(station) if station is not None else None)
                    or (lim.regions.get(region) if region is not None else None))
            value, source = (over.value, over.source) if over else (lim.value, lim.source)
            out.append(Limit(metric, value, spec.unit, spec.limit_direction(lim), source))
        return tuple(out)

    def as_json(self) -> dict[str, Any]:
        """The catalogue as a JSON-able mapping (``tocsin signals --json``, schemas)."""
        metrics = {}
        for m, spec in self.metrics.items():
            d = spec.model_dump(mode="json")
            d["limits"] = [{**lim.model_dump(mode="json"), "direction": spec.limit_direction(lim)}
                           for lim in spec.limits]
            metrics[m] = d
        return {"file": self.path, "metrics": metrics}


def _entry(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(x) for x in loc) or "catalogue"


def parse_catalogue(data: object, where: str) -> Catalogue:
    """A :class:`Catalogue` from a decoded YAML document; :class:`CatalogueError` names
    ``where`` and the first entry that is wrong."""
    if not isinstance(data, dict):
        raise CatalogueError(f"{where}: expected a mapping with a non-empty 'metrics' mapping")
    try:
        parsed = _CatalogueFile.model_validate(data)
    except ValidationError as e:
        # a misspelt key first: it explains the "Field required" beside it
        errors = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
        first = errors[0]
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise CatalogueError(f"{where}: {_entry(first['loc'])}: {msg}") from None
    for m, spec in parsed.metrics.items():
        if spec.unit not in spec.accepted:
            raise CatalogueError(f"{where}: metrics.{m}.accepted: list the canonical unit "
                                 f"{spec.unit!r} (factor 1)")
        for i, lim in enumerate(spec.limits):
            if lim.direction is None and spec.bad == "both":
                raise CatalogueError(f"{where}: metrics.{m}.limits.{i}.direction: a metric "
                                     "bad both ways needs each limit's direction (above|below)")
    return Catalogue(where, dict(parsed.metrics))


def load_catalogue(path: str | Path) -> Catalogue:
    """Read a signal catalogue YAML file; :class:`CatalogueError` names what is wrong."""
    p = Path(path)
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except OSError as exc:
        raise CatalogueError(f"cannot read the signal catalogue {p}: {exc.strerror or exc}"
                             ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CatalogueError(f"{p}: not valid YAML{at}: {what}") from exc
    return parse_catalogue(data, str(p))


__all__ = ["Bad", "Catalogue", "CatalogueError", "LimitOverride", "LimitSpec", "MetricSpec",
           "load_catalogue", "parse_catalogue"]
