"""Regulatory limits: :class:`Limit` (metric -> limit, unit, direction, regulation) and
:func:`load_limits`, the metric-wide limits of a signal catalogue (both exported by
:mod:`detectors.signals.forecast`, whose :class:`~detectors.signals.forecast.LimitForecast`
warns before a limit is crossed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from detectors.signals.catalogue import Catalogue

Direction = Literal["above", "below"]
DIRECTIONS: tuple[Direction, ...] = ("above", "below")


@dataclass(frozen=True, slots=True)
class Limit:
    """A regulatory limit for one metric: exceeded when the value goes ``direction`` it."""

    metric: str
    limit: float
    unit: str
    direction: Direction
    source: str


def load_limits(path: str | Path) -> dict[str, Limit]:
    """The metric-wide limits of the signal catalogue at ``path``
    (:mod:`detectors.signals.catalogue`), for the metrics that have exactly one (two-sided
    metrics such as water_ph, and the per-region and per-station overrides:
    :meth:`~detectors.signals.catalogue.Catalogue.limits_for`). Raises ``ValueError``
    (:class:`~detectors.signals.catalogue.CatalogueError`) naming the file and the entry on
    a bad file."""
    from detectors.signals.catalogue import load_catalogue

    return catalogue_limits(load_catalogue(path))


def catalogue_limits(cat: Catalogue) -> dict[str, Limit]:
    """The metric-wide limits of catalogue ``cat``, for the metrics that have exactly one
    (see :func:`load_limits`)."""
    out: dict[str, Limit] = {}
    for metric in cat.metrics:
        limits = cat.limits_for(metric)
        if len(limits) == 1:
            out[metric] = limits[0]
    return out


__all__ = ["DIRECTIONS", "Direction", "Limit", "catalogue_limits", "load_limits"]
