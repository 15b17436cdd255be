"""Plan a world's episodes: cross-department incidents (mapped onto the scenario templates,
plus night noise) and decoys (station faults, city-wide common-mode episodes, local
single-department nuisances). Ranges: ``docs/detectors.md``, "World zoo"."""

from __future__ import annotations

import random
from typing import Any

from streams.evaluation.world.catalog import HOLIDAY_STARTS
from streams.evaluation.world.incidents import (
    FOOD,
    incident_detail,
    incident_sources,
    incident_timing,
)
from streams.evaluation.world.model import (
    CROSS_SCENARIOS,
    DAY,
    HOUR,
    ONSETS,
    Episode,
    World,
    is_night,
    local_date,
    local_midnight,
    next_morning,
)

NO_INCIDENT_P = 0.15
#: in rotation, one department sees an incident this much weaker than the other
WEAK_SIDE = 0.6
MIN_SPAN_S, MAX_SPAN_S = 2 * HOUR, 3 * DAY
FAULT_HOURS = {"stuck": (3, 48), "drift": (12, 72), "step": (6, 48), "spikes": (1, 3),
               "zeros": (1, 12), "recalibration": (0, 0)}


def plan_episodes(rng: random.Random, world: World) -> list[Episode]:
    eps = _incidents(rng, world)
    decoys = _faults(rng, world) + _common_mode(rng, world) + _local_decoys(rng, world)
    for k, d in enumerate(decoys):
        d.id = f"w{world.seed}-d{k + 1:02d}"
    return eps + decoys


def burn_in(days: float) -> float:
    """Incidents start after this many seconds (detectors need some history)."""
    return min(3.0, days / 4.0) * DAY


def _neighbours(world: World) -> dict[str, set[str]]:
    return {s.region.region: {s.region.region, *s.region.neighbours} for s in world.regions}


def _incidents(rng: random.Random, world: World) -> list[Episode]:
    if rng.random() < NO_INCIDENT_P:
        return []
    n = max(1, round(rng.uniform(2.0, 6.0) * world.days / 14.0))
    near = _neighbours(world)
    mode0 = rng.randrange(3)
    out: list[Episode] = []
    for k in range(n):
        for _ in range(60):
            ep = _incident(rng, world, rng.choice(CROSS_SCENARIOS), (mode0 + k) % 3)
            if ep is not None and not any(_clash(ep, o, near) for o in out):
                ep.id = f"w{world.seed}-i{len(out) + 1:02d}"
                out.append(ep)
                break
    return out


def _clash(a: Episode, b: Episode, near: dict[str, set[str]]) -> bool:
    """Within one hop of each other and less than a day apart."""
    ra = set().union(*(near[r] for r in a.regions))
    if not ra.intersection(b.regions):
        return False
    return a.start < b.end + DAY and b.start < a.end + DAY


def _incident(rng: random.Random, world: World, scenario: str, mode: int) -> Episode | None:
    detail = incident_detail(rng, world, scenario)
    if detail is None:
        return None
    region = detail.pop("region")
    regions = [region, *detail.pop("straddle", [])]
    lags, dur = incident_timing(rng, scenario)
    span = dur + max(lags.values()) + 11 * HOUR
    lo, hi = world.start + burn_in(world.days), world.end - span
    if hi <= lo:
        return None
    start = float(int(rng.uniform(lo, hi) // 60 * 60))
    if scenario == "noise":  # starts on a night between 22:00 and midnight, local time
        start = local_midnight(local_date(start)) + rng.uniform(22.0, 24.0) * HOUR
        start = float(int(start // 60 * 60)) + (DAY if start < lo else 0.0)
    onset = rng.choice(ONSETS)
    ramp = {"step": 0.0, "ramp": rng.uniform(0.5, 6.0) * HOUR, "exp": rng.uniform(1.0, 6.0) * HOUR,
            "two_stage": rng.uniform(0.2, 0.5) * dur}[onset]
    raw = rng.uniform(0.3, 1.0)
    sides = ({}, {"complaint": WEAK_SIDE}, {"env": WEAK_SIDE, "market": WEAK_SIDE})[mode]
    detail["sides"] = sides
    phys_end = start + dur
    end = _truth_end(start, phys_end, lags)
    while end - start > MAX_SPAN_S:
        phys_end -= HOUR
        end = _truth_end(start, phys_end, lags)
    if end > world.end or phys_end - start < MIN_SPAN_S:
        return None
    return Episode(
        id="", scenario=scenario, region=region, regions=regions, start=start, end=end,
        phys_end=phys_end, cross_department=True, sources=incident_sources(scenario),
        onset=onset, ramp_s=min(ramp, 0.6 * (phys_end - start)),
        strength=raw * world.effect_scale, lags=lags, detail=detail,
    )


def _truth_end(start: float, phys_end: float, lags: dict[str, float]) -> float:
    """The disturbance's end in every department; night complaints arrive next morning."""
    end = phys_end + max(lags.values())
    c_end = phys_end + lags.get("complaint", 0.0)
    if is_night(c_end):
        end = max(end, next_morning(c_end) + 3 * HOUR)
    return end


def _decoy(world: World, scenario: str, region: str, start: float, end: float,
           sources: list[str], strength: float, detail: dict[str, Any], onset: str = "step",
           ramp_s: float = 0.0, regions: list[str] | None = None) -> Episode:
    end = min(end, world.end)
    return Episode(id="", scenario=scenario, region=region, regions=regions or [region],
                   start=start, end=end, phys_end=end, cross_department=False,
                   sources=sources, onset=onset, ramp_s=ramp_s, strength=strength,
                   detail=detail)


def _decoy_start(rng: random.Random, world: World, dur: float) -> float:
    lo = world.start + min(2.0, world.days / 5.0) * DAY
    return float(int(rng.uniform(lo, max(lo, world.end - dur)) // 60 * 60))


def _faults(rng: random.Random, world: World) -> list[Episode]:
    """Single-station faults: stuck, drift, step, spike burst, zeros, recalibration."""
    if not world.stations:
        return []
    out = []
    for _ in range(max(1, round(rng.uniform(1.0, 4.0) * world.days / 14.0))):
        st = rng.choice(world.stations)
        ch = rng.choice(st.channels)
        shape = rng.choice(sorted(FAULT_HOURS))
        lo_h, hi_h = FAULT_HOURS[shape]
        dur = rng.uniform(lo_h, hi_h) * HOUR
        start = _decoy_start(rng, world, dur if dur else 6 * HOUR)
        end = world.end if shape == "recalibration" else start + dur
        out.append(_decoy(world, f"sensor_{shape}", st.region, start, end, ["env"],
                          rng.uniform(0.3, 1.0),
                          {"sensor_id": st.sensor_id, "metric": ch.metric, "shape": shape,
                           "sign": rng.choice((-1.0, 1.0))}))
    return out


def _hub(world: World) -> str:
    return max(world.regions, key=lambda s: len(s.region.neighbours)).region.region


def _common_mode(rng: random.Random, world: World) -> list[Episode]:
    """City-wide episodes that are not incidents: smog, rain, holiday prices, hotline backlog."""
    hub, every = _hub(world), world.region_ids()
    kinds = {ch.metric for st in world.stations for ch in st.channels}
    out = []
    if kinds & {"pm25", "pm10"} and rng.random() < 0.35:
        dur = rng.uniform(24.0, 72.0) * HOUR
        start = _decoy_start(rng, world, dur)
        out.append(_decoy(world, "smog", hub, start, start + dur, ["env"], rng.uniform(0.3, 1),
                          {"pm_factor": rng.uniform(0.8, 2.0)}, "ramp",
                          rng.uniform(6.0, 18.0) * HOUR, every))
    if "water_level_m" in kinds and rng.random() < 0.3:
        dur = rng.uniform(6.0, 36.0) * HOUR
        start = _decoy_start(rng, world, dur)
        out.append(_decoy(world, "rain", hub, start, start + dur, ["env"], rng.uniform(0.3, 1),
                          {"rise_m": rng.uniform(0.2, 0.8)}, "ramp",
                          rng.uniform(2.0, 8.0) * HOUR, every))
    holidays = [h for h in (local_midnight(d) for d in HOLIDAY_STARTS)
                if world.start + 3 * DAY <= h < world.end]
    if holidays and rng.random() < 0.8:
        h = holidays[0]
        start = h - rng.uniform(2.0, 3.0) * DAY
        out.append(_decoy(world, "holiday_price_rise", hub, start,
                          h + rng.uniform(1.0, 3.0) * DAY, ["market"], rng.uniform(0.3, 1.0),
                          {"commodities": rng.sample(FOOD, rng.randint(1, 3)),
                           "rise": rng.uniform(0.08, 0.25)}, "ramp", h - start, every))
    if rng.random() < 0.3:
        day = local_midnight(local_date(_decoy_start(rng, world, 2 * DAY)))
        start = day + rng.uniform(8.0, 16.0) * HOUR
        outage, burst = rng.uniform(2.0, 8.0) * HOUR, rng.uniform(1.0, 3.0) * HOUR
        out.append(_decoy(world, "hotline_backlog", hub, start, start + outage + burst,
                          ["complaint"], rng.uniform(0.3, 1.0),
                          {"outage_end": start + outage, "burst_s": burst}, regions=every))
    return out


def _local_decoys(rng: random.Random, world: World) -> list[Episode]:
    """One region's complaint cluster; one shop's mispricing."""
    out = []
    if rng.random() < 0.5:
        region = rng.choice(world.region_ids())
        dur = rng.uniform(2.0, 6.0) * HOUR
        start = _decoy_start(rng, world, dur)
        cat = rng.choice(("sanitation", "noise", "water_quality", "other", "odor", "traffic"))
        out.append(_decoy(world, "complaint_cluster", region, start, start + dur,
                          ["complaint"], rng.uniform(0.3, 1.0),
                          {"category": cat, "complaints": rng.uniform(5.0, 15.0)}))
    shops = [s for s in world.shops if s.goods]
    if shops and rng.random() < 0.4:
        shop = rng.choice(shops)
        dur = rng.uniform(1.0, 3.0) * DAY
        start = _decoy_start(rng, world, dur)
        out.append(_decoy(world, "shop_misprice", shop.region, start, start + dur, ["market"],
                          rng.uniform(0.3, 1.0),
                          {"entity_id": shop.entity_id,
                           "commodity": rng.choice(shop.goods).commodity,
                           "factor": rng.choice((10.0, 0.1, 2.0, 0.5))}))
    return out
