"""The incident plan: which scenarios happen, where and when, a day apart per neighbourhood."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from streams.core.errors import ConfigError
from streams.core.regions import RegionRegistry
from streams.tools.simulation.model import (
    COMMODITIES,
    CROSS_SCENARIOS,
    METRICS,
    NOISE_SCENARIOS,
    SCENARIO_DEPARTMENTS,
    SCENARIO_HOURS,
    Incident,
    SimConfig,
)

Busy = dict[str, list[tuple[datetime, datetime]]]


def plan_incidents(cfg: SimConfig, rng: random.Random, registry: RegionRegistry,
                   regions: list[str], end: datetime) -> list[Incident]:
    """The incidents of a run, by start time: cross-department ones and single-department
    noise, in random order, between the warm-up and 36 h before ``end``."""
    weeks = cfg.days / 7.0
    n_cross = max(1, round(cfg.cross_per_week * weeks))
    n_noise = round(cfg.noise_per_week * weeks)
    t_lo = cfg.start + timedelta(days=cfg.warmup_days)
    t_hi = end - timedelta(hours=36)
    if t_hi <= t_lo:
        shortest = cfg.warmup_days + 1.5
        raise ConfigError(
            f"--days {cfg.days:g} is too short: the simulation needs more than {shortest:g} "
            f"days (a {cfg.warmup_days:g}-day warm-up for the baselines, then 36 h for an "
            f"incident to play out); pass --days {int(shortest) + 1} or more")
    span = (t_hi - t_lo).total_seconds()
    kinds = [(CROSS_SCENARIOS[i % len(CROSS_SCENARIOS)], True) for i in range(n_cross)]
    kinds += [(NOISE_SCENARIOS[i % len(NOISE_SCENARIOS)], False) for i in range(n_noise)]
    rng.shuffle(kinds)
    out: list[Incident] = []
    busy: Busy = {r: [] for r in regions}
    for idx, (scenario, cross) in enumerate(kinds):
        dur = timedelta(hours=rng.uniform(*SCENARIO_HOURS[scenario]))
        region, start = _free_slot(rng, registry, regions, busy, t_lo, span, dur)
        busy[region].append((start, start + dur))
        detail: dict[str, Any] = {}
        if scenario in ("price_gouging", "market_blip"):
            detail["commodities"] = rng.sample(sorted(COMMODITIES), 2 if cross else 1)
        if scenario == "sensor_fault":
            detail["metric"] = rng.choice(sorted(METRICS))
        out.append(Incident(f"inc-{cfg.seed}-{idx:02d}", scenario, region, start, start + dur,
                            cross, list(SCENARIO_DEPARTMENTS[scenario]), detail))
    out.sort(key=lambda i: i.start)
    return out


def _free_slot(rng: random.Random, registry: RegionRegistry, regions: list[str], busy: Busy,
               t_lo: datetime, span: float, dur: timedelta) -> tuple[str, datetime]:
    """A region and start time at least a day away from the incidents in it and its
    neighbours (after 200 tries, the last one drawn)."""
    for _ in range(200):
        region = rng.choice(regions)
        start = t_lo + timedelta(seconds=rng.uniform(0, span))
        start = start.replace(second=0, microsecond=0)
        end = start + dur
        near = {region, *registry.neighbours(region)}
        if all(
            end + timedelta(hours=24) < s or start > e + timedelta(hours=24)
            for r in near for s, e in busy[r]
        ):
            break
    return region, start
