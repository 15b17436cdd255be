"""A drawn world's structure: regions, stations, shops, calendar and episodes (incidents and
decoys). Times are seconds since the epoch (UTC); the city lives at ``UTC_OFFSET_H``."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from streams.core.regions import Region, RegionRegistry
from streams.evaluation.world.catalog import HOLIDAYS, UTC_OFFSET_H

HOUR = 3600.0
DAY = 86400.0
_OFFSET_S = UTC_OFFSET_H * HOUR

ONSETS = ("step", "ramp", "exp", "two_stage")
CROSS_SCENARIOS = ("pollution", "food_safety", "price_gouging", "flood", "product_quality",
                   "noise")


def local_hour(t: float) -> float:
    return ((t + _OFFSET_S) % DAY) / HOUR


def local_day(t: float) -> int:
    """Days since the epoch in local time."""
    return int((t + _OFFSET_S) // DAY)


def day_start(day: int) -> float:
    """The UTC epoch time of local midnight starting local day ``day``."""
    return day * DAY - _OFFSET_S


def local_date(t: float) -> date:
    return datetime.fromtimestamp(t + _OFFSET_S, UTC).date()


def local_midnight(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() - _OFFSET_S


def is_holiday(t: float) -> bool:
    return local_date(t) in HOLIDAYS


def is_working_day(t: float) -> bool:
    d = local_date(t)
    return d.weekday() < 5 and d not in HOLIDAYS


def is_night(t: float) -> bool:
    h = local_hour(t)
    return h >= 23.0 or h < 7.0


def next_morning(t: float) -> float:
    """07:00 local on the morning that ends the night containing ``t``."""
    base = local_midnight(local_date(t))
    seven = base + 7 * HOUR
    return seven if t < seven else seven + DAY


@dataclass(frozen=True)
class Channel:
    """One metric of one station: its normal behaviour and wire unit."""

    metric: str
    unit: str
    factor: float  # wire unit -> canonical
    base: float
    noise: float
    drift_sd: float
    tau_s: float
    amp: float  # diurnal amplitude


@dataclass(frozen=True)
class Station:
    sensor_id: str
    kind: str
    region: str
    cadence_s: int
    lat: float
    lon: float
    time_style: int
    clock_offset_s: float
    missing: float
    channels: tuple[Channel, ...]
    outages: tuple[tuple[float, float, bool], ...] = ()  # (from, to, backfilled later)


@dataclass(frozen=True)
class Good:
    commodity: str
    unit: str
    factor: float  # wire unit -> canonical
    level: float  # this shop's price relative to the city index


@dataclass(frozen=True)
class Shop:
    entity_id: str
    name: str
    kind: str
    region: str
    goods: tuple[Good, ...]
    reports_per_day: int
    working_days_only: bool


@dataclass(frozen=True)
class RegionSpec:
    region: Region
    complaints_per_day: float
    categories: dict[str, tuple[float, float]]  # category -> (day weight, night weight)
    channels: tuple[float, ...]  # weights of CHANNELS
    vendors: tuple[tuple[str, str], ...]  # (credit code, name) that inspectors visit
    inspections_per_day: float
    fail_rate: float


@dataclass
class Episode:
    """An incident (``cross_department``) or a decoy. ``start``/``end`` are the truth window;
    ``phys_end`` ends the physical disturbance; ``lags`` delay each source's response."""

    id: str
    scenario: str
    region: str
    regions: list[str]
    start: float
    end: float
    phys_end: float
    cross_department: bool
    sources: list[str]
    onset: str = "step"
    ramp_s: float = 0.0
    strength: float = 1.0
    lags: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def level(self, t: float, source: str = "env") -> float:
        """0 outside the disturbance; its onset profile (up to 1) inside."""
        x = t - self.start - self.lags.get(source, 0.0)
        if x < 0 or x >= self.phys_end - self.start:
            return 0.0
        if self.detail.get("night_only") and 5.0 <= local_hour(t) < 22.0:
            return 0.0
        return onset_level(self.onset, self.ramp_s, x)

    def truth(self) -> dict[str, Any]:
        return {
            "id": self.id, "scenario": self.scenario, "region": self.region,
            "start": iso_z(self.start), "end": iso_z(self.end),
            "cross_department": self.cross_department, "regions": list(self.regions),
            "sources": list(self.sources), "onset": self.onset,
            "strength": round(self.strength, 4),
        }


def onset_level(shape: str, ramp_s: float, x: float) -> float:
    """The onset profile ``x`` seconds after the start."""
    if shape == "step" or ramp_s <= 0:
        return 1.0
    u = min(1.0, x / ramp_s)
    if shape == "ramp":
        return max(u, 0.02)
    if shape == "exp":
        return max((math.exp(3.0 * u) - 1.0) / (math.exp(3.0) - 1.0), 0.02)
    return 0.3 if x < ramp_s else 1.0  # two_stage: weak first stage, then the main one


def iso_z(t: float) -> str:
    return datetime.fromtimestamp(round(t), UTC).isoformat().replace("+00:00", "Z")


@dataclass
class World:
    seed: int
    days: float
    effect_scale: float
    start: float
    end: float
    regions: list[RegionSpec]
    stations: list[Station]
    shops: list[Shop]
    episodes: list[Episode]
    departments: dict[str, str]
    id_prefix: dict[str, str]
    index: dict[str, float]  # commodity -> city reference price (canonical unit)
    dispersion: float  # gamma shape of the region-day complaint factor
    weekend: float  # complaint factor on weekends
    params: dict[str, float] = field(default_factory=dict)
    stream_seed: int = 0  # seeds the streams' generators (drawn with the structure)

    def registry(self) -> RegionRegistry:
        return RegionRegistry([r.region for r in self.regions])

    def region_ids(self) -> list[str]:
        return [r.region.region for r in self.regions]

    def incidents(self) -> list[Episode]:
        return [e for e in self.episodes if e.cross_department]

    def decoys(self) -> list[Episode]:
        return [e for e in self.episodes if not e.cross_department]

    def truth(self) -> list[dict[str, Any]]:
        return [e.truth() for e in sorted(self.episodes, key=lambda e: (e.start, e.id))]

    def regions_csv(self) -> str:
        lines = ["region,name,lat,lon,parent,neighbours"]
        for spec in self.regions:
            r = spec.region
            lines.append(f"{r.region},{r.name},{r.lat:.5f},{r.lon:.5f},{r.parent or ''},"
                         + ";".join(sorted(r.neighbours)))
        return "\n".join(lines) + "\n"


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth below 30, a rounded normal above)."""
    if lam <= 0:
        return 0
    if lam >= 30.0:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        p *= rng.random()
        k += 1
    return k
