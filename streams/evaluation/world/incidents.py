"""What each cross-department incident scenario does, where it can happen, and its timing.

The scenarios map onto ``detectors/data/scenarios.yaml``'s templates (pollution, food_safety,
price_gouging, flood, product_quality) plus ``noise`` (night-time dB excess and noise
complaints), which no template covers."""

from __future__ import annotations

import math
import random
from typing import Any

from streams.evaluation.world.model import DAY, HOUR, World

FOOD = ("pork", "beef", "eggs", "rice", "cabbage", "apples", "cooking_oil", "milk")

#: scenario -> departments (sources) that see it
SOURCES = {
    "pollution": ["complaint", "env"], "flood": ["complaint", "env"],
    "noise": ["complaint", "env"], "price_gouging": ["complaint", "market"],
    "food_safety": ["complaint", "market"], "product_quality": ["complaint", "market"],
}

#: scenario -> (lead source, lagging source, lag range in hours); sensors lead complaints
_LAGS = {
    "pollution": ("env", "complaint", (0.5, 4.0)), "flood": ("env", "complaint", (0.3, 2.0)),
    "noise": ("env", "complaint", (0.0, 1.0)),
    "price_gouging": ("market", "complaint", (1.0, 6.0)),
    "food_safety": ("complaint", "market", (2.0, 12.0)),
    "product_quality": ("market", "complaint", (1.0, 8.0)),
}

#: scenario -> physical duration range in hours (log-uniform)
_HOURS = {"pollution": (2.0, 48.0), "flood": (2.0, 24.0), "price_gouging": (12.0, 72.0),
          "food_safety": (6.0, 72.0), "product_quality": (12.0, 72.0)}


def incident_sources(scenario: str) -> list[str]:
    return list(SOURCES[scenario])


def incident_timing(rng: random.Random, scenario: str) -> tuple[dict[str, float], float]:
    """Per-source lags (seconds; the lead source 0) and the physical duration (seconds)."""
    lead, lag_src, (lo, hi) = _LAGS[scenario]
    if scenario == "product_quality" and rng.random() < 0.5:
        lead, lag_src = lag_src, lead  # either side first
    lags = {lead: 0.0, lag_src: rng.uniform(lo, hi) * HOUR}
    if scenario == "noise":  # one to three nights of 3-6 h
        return lags, (rng.randint(1, 3) - 1) * DAY + rng.uniform(3.0, 6.0) * HOUR
    a, b = _HOURS[scenario]
    return lags, math.exp(rng.uniform(math.log(a), math.log(b))) * HOUR


def _stations_in(world: World, region: str, kinds: tuple[str, ...]) -> set[str]:
    return {st.kind for st in world.stations if st.region == region and st.kind in kinds}


def _straddle(rng: random.Random, world: World, region: str, p: float) -> list[str]:
    if rng.random() >= p:
        return []
    spec = next(s for s in world.regions if s.region.region == region)
    return [rng.choice(sorted(spec.region.neighbours))] if spec.region.neighbours else []


#: scenario -> station kinds a region needs for it (one of them)
_NEEDS = {"pollution": ("water", "air", "pm_micro"), "flood": ("gauge",), "noise": ("noise",)}


def _sellers(world: World, region: str) -> dict[str, list[str]]:
    """Commodity -> the region's shops that sell it."""
    out: dict[str, list[str]] = {}
    for shop in world.shops:
        if shop.region == region:
            for g in shop.goods:
                out.setdefault(g.commodity, []).append(shop.entity_id)
    return out


def _feasible(world: World, scenario: str) -> list[str]:
    """The regions that can show ``scenario`` in every department it touches."""
    ids = world.region_ids()
    if scenario in _NEEDS:
        return [r for r in ids if _stations_in(world, r, _NEEDS[scenario])]
    if scenario == "price_gouging":
        return [r for r in ids if any(len(v) >= 2 for v in _sellers(world, r).values())]
    return ids


def incident_detail(rng: random.Random, world: World, scenario: str) -> dict[str, Any] | None:
    """Region and effects of one incident, or ``None`` when no region can show it."""
    regions = _feasible(world, scenario)
    if not regions:
        return None
    region = rng.choice(regions)
    d: dict[str, Any] = {"region": region, "complaint_n": rng.uniform(6.0, 18.0)}
    if scenario == "pollution":
        have = _stations_in(world, region, _NEEDS[scenario])
        if "water" in have and (have == {"water"} or rng.random() < 0.5):
            d["metrics"] = {"water_cod": rng.uniform(1.5, 3.5), "water_nh3n": rng.uniform(2, 5),
                            "water_ph": -rng.uniform(0.4, 1.0)}
            d["categories"] = {"odor": 0.35, "water_quality": 0.45, "illness": 0.2}
        else:
            d["metrics"] = {"pm25": rng.uniform(1.0, 2.5), "pm10": rng.uniform(0.8, 2.0),
                            "so2": rng.uniform(2.0, 5.0), "no2": rng.uniform(0.4, 1.2)}
            d["categories"] = {"odor": 0.45, "air_quality": 0.35, "illness": 0.2}
        d["straddle"] = _straddle(rng, world, region, 0.25)
    elif scenario == "flood":
        d["metrics"] = {"water_level_m": rng.uniform(0.4, 1.5)}
        d["categories"] = {"flooding": 0.85, "water_quality": 0.15}
        d["straddle"] = _straddle(rng, world, region, 0.2)
    elif scenario == "noise":
        d["metrics"] = {"noise_db": rng.uniform(6.0, 15.0)}
        d["categories"] = {"noise": 1.0}
        d["night_only"] = True
    elif scenario == "price_gouging":
        return _gouging(rng, world, d)
    elif scenario == "food_safety":
        d["categories"] = {"illness": 0.45, "food_safety": 0.55}
        d["market"] = {"inspections": rng.uniform(2.0, 6.0), "fail": rng.uniform(0.5, 0.9),
                       "recalls": rng.uniform(0.0, 1.5)}
    else:  # product_quality
        d["categories"] = {"product_quality": 1.0}
        d["market"] = {"recalls": rng.uniform(1.0, 3.0), "violations": rng.uniform(0.5, 2.0),
                       "failed_inspections": rng.uniform(0.5, 2.0)}
    return d


def _gouging(rng: random.Random, world: World, d: dict[str, Any]) -> dict[str, Any]:
    """2-4 shops of the region raise one commodity; price complaints follow."""
    sellers = _sellers(world, d["region"])
    c = rng.choice(sorted(c for c, ids in sellers.items() if len(ids) >= 2))
    d["commodity"] = c
    d["shops"] = rng.sample(sellers[c], min(len(sellers[c]), rng.randint(2, 4)))
    d["rise"] = rng.uniform(0.25, 0.6)
    d["categories"] = {"price": 1.0}
    return d
