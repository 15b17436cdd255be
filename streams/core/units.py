"""Canonical units per sensor metric and price unit, with conversion factors."""

from __future__ import annotations

from streams.core.errors import ValidationFailure

#: metric -> (canonical unit, {accepted unit: factor to canonical})
SENSOR_UNITS: dict[str, tuple[str, dict[str, float]]] = {
    "pm25": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "μg/m³": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0}),
    "pm10": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "μg/m³": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0}),
    "no2": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0, "ppb": 1.88}),
    "so2": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0, "ppb": 2.62}),
    "o3": ("ug/m3", {"ug/m3": 1.0, "µg/m3": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0, "ppb": 1.96}),
    "water_cod": ("mg/L", {"mg/L": 1.0, "mg/l": 1.0, "g/L": 1000.0, "g/l": 1000.0}),
    "water_nh3n": ("mg/L", {"mg/L": 1.0, "mg/l": 1.0, "ug/L": 0.001, "µg/L": 0.001}),
    "water_ph": ("pH", {"pH": 1.0, "ph": 1.0}),
    "noise_db": ("dB", {"dB": 1.0, "db": 1.0, "dBA": 1.0, "dB(A)": 1.0}),
    "water_level_m": ("m", {"m": 1.0, "cm": 0.01, "mm": 0.001}),
}

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


def normalise_sensor(metric: str, value: float, unit: str) -> tuple[float, str]:
    """Convert ``value`` in ``unit`` to the metric's canonical unit."""
    spec = SENSOR_UNITS.get(metric)
    if spec is None:
        raise ValidationFailure(
            f"unknown metric {metric!r}; known: {', '.join(sorted(SENSOR_UNITS))}", "unknown_metric"
        )
    canonical, table = spec
    factor = table.get(unit.strip())
    if factor is None:
        raise ValidationFailure(
            f"unit {unit!r} not accepted for {metric}; use one of {', '.join(table)}", "bad_unit"
        )
    return value * factor, canonical


def normalise_price(price: float, unit: str) -> tuple[float, str]:
    spec = PRICE_UNITS.get(unit.strip())
    if spec is None:
        raise ValidationFailure(
            f"price unit {unit!r} not accepted; use one of {', '.join(PRICE_UNITS)}", "bad_unit"
        )
    canonical, factor = spec
    return price * factor, canonical
