"""The ecology bureau's sensor readings: air and water stations per region, with diurnal
cycles, slow drift, outages, missing readings, mixed units and incident effects."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from streams.tools.simulation.context import SimContext
from streams.tools.simulation.model import ENV_DEPT, METRICS, Incident, diurnal_activity, iso

Outages = dict[tuple[str, str], tuple[datetime, datetime]]


@dataclass
class SensorState:
    """What the sensor generator carries from reading to reading: each region's level, each
    series' slow drift, the regions that report in other units and the readings numbered so
    far (a live tail, :mod:`.live`, continues it)."""

    region_factor: dict[str, float]
    drift: dict[tuple[str, str], float]
    ppb_region: str
    cm_region: str
    n: int = 0

    def step_drift(self, rng: random.Random, region: str, metric: str, rho: float) -> float:
        """Advance the drift of ``(region, metric)`` by one step of autocorrelation ``rho``."""
        d = self.drift[(region, metric)] = rho * self.drift[(region, metric)] + math.sqrt(
            1 - rho * rho) * rng.gauss(0, 0.15)
        return d


def sensor_readings(ctx: SimContext) -> SensorState:
    """Every station's readings, one per metric and ``sensor_period_s``; the generator's
    state at the end."""
    cfg, rng = ctx.cfg, ctx.rng
    step = timedelta(seconds=cfg.sensor_period_s)
    st = SensorState({r: rng.uniform(0.7, 1.4) for r in ctx.regions},
                     {(r, m): 0.0 for r in ctx.regions for m in METRICS},
                     ctx.regions[0], ctx.regions[-1])
    outages = _outages(ctx)
    t = cfg.start
    rho = math.exp(-cfg.sensor_period_s / (12 * 3600))
    while t < ctx.end:
        hour = t.hour + t.minute / 60.0
        for r in ctx.regions:
            effects = ctx.effects(r, t)
            for metric, (kind, _base, _noise, _amp, _unit) in METRICS.items():
                d = st.step_drift(rng, r, metric, rho)
                if _in_outage(outages, r, kind, t) or rng.random() < cfg.missing_rate:
                    continue
                emit_reading(ctx, st, r, metric, t, hour, d, effects)
        t += step
    return st


def emit_reading(ctx: SimContext, st: SensorState, region: str, metric: str, t: datetime,
                 hour: float, drift: float, effects: list[tuple[Incident, float]]) -> None:
    """One reading of ``metric`` in ``region`` at ``t``: its normal value, the effects of
    the incidents active there, the region's unit."""
    kind, _base, _noise, _amp, unit = METRICS[metric]
    value = normal_value(ctx.rng, metric, t, hour, drift, st.region_factor[region])
    for inc, a in effects:
        value = _sensor_effect(ctx, inc, metric, value, a)
    out_unit = unit
    if metric == "no2" and region == st.ppb_region:
        value, out_unit = value / 1.88, "ppb"
    if metric == "water_level_m" and region == st.cm_region:
        value, out_unit = value * 100.0, "cm"
    st.n += 1
    ctx.emit("env", t, {
        "reading_id": f"rd-{ctx.cfg.seed}-{st.n:08d}",
        "sensor_id": f"{kind}-{region}",
        "metric": metric, "value": round(value, 4), "unit": out_unit,
        "region": region, "lat": ctx.registry.get(region).lat,
        "lon": ctx.registry.get(region).lon,
        "observed_at": iso(t), "department": ENV_DEPT,
    })


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


def normal_value(rng: random.Random, metric: str, t: datetime, hour: float, drift: float,
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
