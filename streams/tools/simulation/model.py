"""The simulator's constants, configuration and records, and the helpers its parts share."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.core.uscc import ALPHABET, check_char

ENV_DEPT = "ecology_bureau"
HOTLINE_DEPT = "citizen_hotline"
MARKET_DEPT = "market_regulation"

CROSS_SCENARIOS = ("chemical_leak", "food_safety", "price_gouging", "waterlogging")
NOISE_SCENARIOS = ("sensor_fault", "noise_event", "market_blip")

#: scenario -> (shortest, longest) duration in hours
SCENARIO_HOURS: dict[str, tuple[float, float]] = {
    "chemical_leak": (6, 10), "food_safety": (12, 24), "price_gouging": (18, 30),
    "waterlogging": (6, 10), "sensor_fault": (2, 4), "noise_event": (3, 5),
    "market_blip": (10, 16),
}

#: scenario -> the departments whose streams it touches
SCENARIO_DEPARTMENTS: dict[str, list[str]] = {
    "chemical_leak": [ENV_DEPT, HOTLINE_DEPT],
    "food_safety": [MARKET_DEPT, HOTLINE_DEPT],
    "price_gouging": [MARKET_DEPT, HOTLINE_DEPT],
    "waterlogging": [ENV_DEPT, HOTLINE_DEPT],
    "sensor_fault": [ENV_DEPT], "noise_event": [HOTLINE_DEPT],
    "market_blip": [MARKET_DEPT],
}

# metric -> (station kind, base level, relative noise, diurnal amplitude, unit)
METRICS: dict[str, tuple[str, float, float, float, str]] = {
    "pm25": ("AQ", 35.0, 0.12, 0.25, "ug/m3"),
    "no2": ("AQ", 40.0, 0.10, 0.35, "ug/m3"),
    "noise_db": ("AQ", 52.0, 0.03, 0.12, "dB"),
    "water_cod": ("WQ", 18.0, 0.08, 0.05, "mg/L"),
    "water_nh3n": ("WQ", 0.6, 0.10, 0.05, "mg/L"),
    "water_level_m": ("WQ", 2.0, 0.01, 0.0, "m"),
}

# complaint category -> base rate per region-hour at the daily mean
COMPLAINT_RATES = {
    "odor": 0.06, "water_quality": 0.04, "noise": 0.12, "food_safety": 0.04,
    "illness": 0.03, "price": 0.05, "product_quality": 0.04, "flooding": 0.01,
}

COMMODITIES = {  # commodity -> (base price, canonical unit)
    "pork": (26.0, "CNY/kg"), "eggs": (11.0, "CNY/kg"), "rice": (6.0, "CNY/kg"),
    "cabbage": (4.0, "CNY/kg"), "cooking_oil": (15.0, "CNY/L"), "bottled_water": (2.0, "CNY/item"),
}

TEXTS = {
    "odor": ["Strong chemical smell near {place}, eyes watering.",
             "刺鼻气味 near {place} since this morning, call me at {phone}.",
             "Smells like solvent by the canal at {place}."],
    "water_quality": ["Tap water is cloudy and smells at {place}.",
                      "River water turned a strange colour near {place}."],
    "noise": ["Loud construction at night near {place}.",
              "Music from a venue at {place} until 2am."],
    "food_safety": ["Bought spoiled meat at the market on {place}.",
                    "Restaurant at {place} kitchen is filthy, contact {email}."],
    "illness": ["Several family members vomiting after dinner, we live at {place}.",
                "Kids have rashes and coughs since yesterday, {place}. ID {idno}."],
    "price": ["Price of {goods} doubled overnight at {place}!",
              "Shop at {place} overcharging for {goods}."],
    "product_quality": ["Charger bought at {place} melted.",
                        "Toy from {place} has sharp broken parts."],
    "flooding": ["Street flooded at {place}, cars stuck.", "Water entering basements at {place}."],
}
PLACES = ["Main St", "the wet market", "Canal Rd", "Block 7", "the school gate", "Harbour Rd",
          "Station Sq", "Lotus Lane"]


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    start: datetime = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
    days: float = 7.0
    warmup_days: float = 2.0
    cross_per_week: int = 4
    noise_per_week: int = 3
    effect_scale: float = 1.0
    late_rate: float = 0.03
    missing_rate: float = 0.02
    duplicate_rate: float = 0.003
    malformed_rate: float = 0.001
    sensor_period_s: int = 900


@dataclass
class Incident:
    id: str
    scenario: str
    region: str
    start: datetime
    end: datetime
    cross_department: bool
    departments: list[str]
    detail: dict[str, Any] = field(default_factory=dict)

    def truth(self) -> dict[str, Any]:
        return {
            "id": self.id, "scenario": self.scenario, "region": self.region,
            "start": iso(self.start), "end": iso(self.end.replace(microsecond=0)),
            "cross_department": self.cross_department, "departments": self.departments,
        }

    def active(self, t: datetime) -> float:
        """0 outside, ramping to 1 over the first hour inside."""
        if t < self.start or t >= self.end:
            return 0.0
        return min(1.0, (t - self.start).total_seconds() / 3600.0 + 0.25)


@dataclass(order=True)
class SimEvent:
    arrival: float
    seq: int
    source: str = field(compare=False)
    payload: dict[str, Any] = field(compare=False)
    malformed: bool = field(default=False, compare=False)
    duplicate: bool = field(default=False, compare=False)


@dataclass
class Simulation:
    config: SimConfig
    events: list[SimEvent]
    incidents: list[Incident]

    def truth(self) -> list[dict[str, Any]]:
        return [i.truth() for i in self.incidents]

    @property
    def n_malformed(self) -> int:
        return sum(e.malformed for e in self.events)

    @property
    def n_duplicates(self) -> int:
        return sum(e.duplicate for e in self.events)

    def lines(self) -> Iterator[str]:
        for e in self.events:
            yield json.dumps({"source": e.source, **e.payload}, ensure_ascii=False)

    def write(self, events_path: Path, truth_path: Path | None) -> None:
        with events_path.open("w", encoding="utf-8") as f:
            for line in self.lines():
                f.write(line + "\n")
        if truth_path is not None:
            truth_path.write_text(json.dumps(self.truth(), indent=2) + "\n", encoding="utf-8")


def iso(t: datetime) -> str:
    """A time in UTC as ISO 8601 with ``Z``."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_uscc(rng: random.Random) -> str:
    body = "91" + "".join(rng.choice("0123456789") for _ in range(6)) + "".join(
        rng.choice(ALPHABET) for _ in range(9)
    )
    return body + check_char(body)


def diurnal_activity(hour: float) -> float:
    """Human activity over the day, mean about 1: low at night, high 9-21h."""
    return 0.25 + 1.35 * math.exp(-((hour - 14.0) / 5.0) ** 2)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's method, for the small rates used here)."""
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
