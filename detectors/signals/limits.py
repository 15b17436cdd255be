"""Regulatory limits: :class:`Limit` (metric -> limit, unit, direction, regulation) and the
loader of the limits config, :func:`load_limits` (both exported by
:mod:`detectors.signals.forecast`, whose :class:`~detectors.signals.forecast.LimitForecast`
warns before a limit is crossed)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import yaml

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


_FIELDS = ("limit", "unit", "direction", "source")


def _limit_from(metric: str, spec: object, where: str) -> Limit:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: {metric}: expected a mapping with limit, unit and source, "
                         f"got {type(spec).__name__}")
    unknown = sorted(str(k) for k in spec if k not in _FIELDS)
    if unknown:
        raise ValueError(f"{where}: {metric}: unknown key(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(_FIELDS)}")
    if "limit" not in spec:
        raise ValueError(f"{where}: {metric}: missing 'limit'")
    value = spec["limit"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {metric}: limit must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: {metric}: limit must be finite, got {value!r}")
    texts: dict[str, str] = {}
    for key in ("unit", "source"):
        text = spec.get(key)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: {metric}: '{key}' must be a non-empty string, "
                             f"got {text!r}")
        texts[key] = text.strip()
    direction = spec.get("direction", "above")
    if direction not in DIRECTIONS:
        raise ValueError(f"{where}: {metric}: unknown direction {direction!r}; "
                         f"use 'above' or 'below'")
    return Limit(metric, float(value), texts["unit"], cast(Direction, direction),
                 texts["source"])


def load_limits(path: str | Path) -> dict[str, Limit]:
    """Read a YAML mapping ``metric -> {limit, unit, direction (above|below, default
    above), source}``. Raises ``ValueError`` naming the file and metric on a bad file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{p}: expected a non-empty mapping of metric name to limit")
    return {str(m): _limit_from(str(m), spec, str(p)) for m, spec in data.items()}


__all__ = ["DIRECTIONS", "Direction", "Limit", "load_limits"]
