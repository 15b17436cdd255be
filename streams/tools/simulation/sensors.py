"""The ecology bureau's sensor readings: air and water stations per region, with diurnal
cycles, slow drift, outages, missing readings, mixed units and incident effects."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from streams.tools.simulation.context import SimContext
from streams.tools.simulation.model import ENV_DEPT, METRICS, Incident, diurnal_activity, iso

Outages = dict[tuple[str, str], tuple[datetime, datetime]]


def sensor_readings(ctx: SimContext) -> None:
    """Every station's readings, one per metric and ``sensor_period_s``."""
    cfg, rng = ctx.cfg, ctx.rng
    step = timedelta(seconds=cfg.sensor_period_s)
    region_factor = {r: rng.uniform(0.7, 1.4) for r in ctx.regions}
    drift = {(r, m): 0.0 for r in ctx.regions for m in METRICS}
    outages = _outages(ctx)
    ppb_region = ctx.regions[0]
    cm_region = ctx.regions[-1]
    n = 0
    t = cfg.start
    rho = math.exp(-cfg.sensor_period_s / (12 * 3600))
    while t < ctx.end:
        hour = t.hour + t.minute / 60.0
        for r in ctx.regions:
            effects = ctx.effects(r, t)
            for metric, (kind, _base, _noise, _amp, unit) in METRICS.items():
                d = drift[(r, metric)] = rho * drift[(r, metric)] + math.sqrt(
                    1 - rho * rho) * rng.gauss(0, 0.15)
                if _in_outage(outages, r, kind, t) or rng.random() < cfg.missing_rate:
                    continue
                value = _normal_value(rng, metric, t, hour, d, region_factor[r])
                for inc, a in effects:
                    value = _sensor_effect(ctx, inc, metric, value, a)
                out_unit = unit
                if metric == "no2" and r == ppb_region:
                    value, out_unit = value / 1.88, "ppb"
                if metric == "water_level_m" and r == cm_region:
                    value, out_unit = value * 100.0, "cm"
                n += 1
                ctx.emit("env", t, {
                    "reading_id": f"rd-{cfg.seed}-{n:08d}",
                    "sensor_id": f"{kind}-{r}",
                    "metric": metric, "value": round(value, 4), "unit": out_unit,
                    "region": r, "lat": ctx.registry.get(r).lat,
                    "lon": ctx.registry.get(r).lon,
                    "observed_at": iso(t), "department": ENV_DEPT,
                })
        t += step


def _outages(ctx: SimContext) -> Outages:
    """About half the regions lose one station kind (AQ or WQ) for 3-8 hours."""
    cfg, rng = ctx.cfg, ctx.rng
    outages: Outages = {}
    for r in ctx.regions:
        if rng.random() < 0.5:
            kind = rng.choice(["AQ", "WQ"])
            s = cfg.start + timedelta(hours=rng.uniform(0, cfg.days * 24 - 8))
            outages[(r, kind)] = (s, s + timedelta(hours=rng.uniform(3, 8)))
    return outages


def _in_outage(outages: Outages, region: str, kind: str, t: datetime) -> bool:
    if (region, kind) not in outages:
        return False
    o0, o1 = outages[(region, kind)]
    return o0 <= t < o1


def _normal_value(rng: random.Random, metric: str, t: datetime, hour: float, drift: float,
                  region_factor: float) -> float:
    """A reading without incidents: tide for the water level, the day's activity for noise,
    rush hours, drift and the region's level for the rest."""
    _kind, base, noise, amp, _unit = METRICS[metric]
    if metric == "water_level_m":
        value = base + 0.15 * math.sin(2 * math.pi * t.timestamp() / 44712.0)
        return value + (0.05 * drift + rng.gauss(0, base * noise))
    if metric == "noise_db":
        value = base * (1 + amp * (diurnal_activity(hour) - 1) / 1.35)
        return value + rng.gauss(0, base * noise)
    rush = math.exp(-((hour - 8) / 1.5) ** 2) + math.exp(-((hour - 19) / 2) ** 2)
    value = base * region_factor * math.exp(drift) * (1 + amp * (rush - 0.3))
    return value * math.exp(rng.gauss(0, noise))


def _sensor_effect(ctx: SimContext, inc: Incident, metric: str, value: float,
                   a: float) -> float:
    s = ctx.scale
    if inc.scenario == "chemical_leak":
        f = {"water_cod": 3.0, "water_nh3n": 4.0, "pm25": 1.6, "no2": 1.3}.get(metric)
        if f:
            return value * (1 + a * (s(f) - 1))
    elif inc.scenario == "waterlogging" and metric == "water_level_m":
        return value + a * 0.9 * ctx.cfg.effect_scale
    elif inc.scenario == "waterlogging" and metric == "water_cod":
        return value * (1 + a * (s(1.8) - 1))
    elif inc.scenario == "sensor_fault" and metric == inc.detail.get("metric"):
        return value * 5.0
    return value
