"""Unit normalisation: sensor readings to their metric's canonical unit (the units and
factors are the signal catalogue's, :mod:`streams.core.signals`), prices to a canonical
price unit."""

from __future__ import annotations

from detectors.signals.catalogue import Catalogue
from streams.core.errors import ValidationFailure

#: price unit -> (canonical unit, factor)
PRICE_UNITS: dict[str, tuple[str, float]] = {
    "CNY/kg": ("CNY/kg", 1.0),
    "CNY/500g": ("CNY/kg", 2.0),
    "CNY/jin": ("CNY/kg", 2.0),
    "CNY/g": ("CNY/kg", 1000.0),
    "CNY/t": ("CNY/kg", 0.001),
    "CNY/L": ("CNY/L", 1.0),
    "CNY/mL": ("CNY/L", 1000.0),
    "CNY/item": ("CNY/item", 1.0),
    "CNY/dozen": ("CNY/item", 1.0 / 12.0),
}


def normalise_sensor(metric: str, value: float, unit: str, catalogue: Catalogue
                     ) -> tuple[float, str]:
    """Convert ``value`` in ``unit`` to the metric's canonical unit per ``catalogue``."""
    spec = catalogue.get(metric)
    if spec is None:
        raise ValidationFailure(
            f"unknown metric {metric!r}: not in the signal catalogue {catalogue.path} "
            f"(TOCSIN_SIGNALS); add it there. Known: {', '.join(sorted(catalogue.metrics))}",
            "unknown_metric")
    factor = spec.factor(unit)
    if factor is None:
        raise ValidationFailure(
            f"unit {unit!r} not accepted for {metric}; use one of {', '.join(spec.accepted)} "
            f"(signal catalogue {catalogue.path})", "bad_unit")
    return value * factor, spec.unit


def normalise_price(price: float, unit: str) -> tuple[float, str]:
    spec = PRICE_UNITS.get(unit.strip())
    if spec is None:
        raise ValidationFailure(
            f"price unit {unit!r} not accepted; use one of {', '.join(PRICE_UNITS)}", "bad_unit"
        )
    canonical, factor = spec
    return price * factor, canonical
