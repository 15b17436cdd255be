"""Sensor readings of a drawn world: diurnal shapes, AR(1) drift, noise, outages, incident
effects, city-wide smog and rain, and single-station faults."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from streams.evaluation.world.catalog import METRICS
from streams.evaluation.world.model import Channel, Episode, Station, World, local_hour
from streams.evaluation.world.wire import Wire

#: an additive metric's natural scale (a fault of strength 1 moves it about this much)
_ADD_SCALE = {"water_ph": 1.0, "noise_db": 8.0, "water_level_m": 0.6}
_TIDE_S = 44712.0  # a semi-diurnal tide, seconds
#: city-wide episodes (decoys) and the metrics they move
_COMMON = {("smog", "pm25"), ("smog", "pm10"), ("rain", "water_level_m")}


@dataclass
class _Effects:
    """The episodes acting on one channel, with their multiplier."""

    incidents: list[tuple[Episode, float]] = field(default_factory=list)
    common: list[Episode] = field(default_factory=list)
    faults: list[Episode] = field(default_factory=list)


def sensor_records(world: World, rng: random.Random, wire: Wire) -> None:
    dept = world.departments["env"]
    for st in world.stations:
        for ch in st.channels:
            _stream(world, rng, wire, st, ch, _effects_on(world, st, ch), dept)


def _effects_on(world: World, st: Station, ch: Channel) -> _Effects:
    fx = _Effects()
    for e in world.episodes:
        if e.cross_department:
            amp = e.detail.get("metrics", {}).get(ch.metric)
            if amp is not None and st.region in e.regions:
                near = 1.0 if st.region == e.region else 0.5
                fx.incidents.append((e, amp * e.strength * e.detail["sides"].get("env", 1.0)
                                     * near))
        elif (e.scenario, ch.metric) in _COMMON:
            fx.common.append(e)
        elif (e.scenario.startswith("sensor_") and e.detail["sensor_id"] == st.sensor_id
              and e.detail["metric"] == ch.metric):
            fx.faults.append(e)
    return fx


def _stream(world: World, rng: random.Random, wire: Wire, st: Station, ch: Channel,
            fx: _Effects, dept: str) -> None:
    spec = METRICS[ch.metric]
    rho = math.exp(-st.cadence_s / ch.tau_s)
    shock = math.sqrt(1.0 - rho * rho) * ch.drift_sd
    drift = rng.gauss(0.0, ch.drift_sd)
    stuck: dict[str, float] = {}
    t = world.start + rng.uniform(0.0, st.cadence_s)
    while t < world.end:
        drift = rho * drift + rng.gauss(0.0, shock)
        v = _normal(ch, spec.additive, spec.diurnal, t, drift, rng)
        for e, amp in fx.incidents:
            a = e.level(t, "env")
            if a:
                v = v + amp * a if spec.additive else v * (1.0 + amp * a)
        for e in fx.common:
            a = e.level(t)
            if a and e.scenario == "smog":
                v *= 1.0 + e.detail["pm_factor"] * e.strength * a
            elif a:
                v += e.detail["rise_m"] * e.strength * a
        for e in fx.faults:
            v = _fault(e, ch, spec.additive, t, v, stuck, rng)
        v = min(max(v, 0.0), 14.0) if ch.metric == "water_ph" else max(v, 0.0)
        _send(wire, rng, st, ch, t, v, dept)
        t += st.cadence_s


def _normal(ch: Channel, additive: bool, shape: str, t: float, drift: float,
            rng: random.Random) -> float:
    h = local_hour(t)
    if additive:
        if ch.metric == "water_level_m":
            cyc = ch.amp * math.sin(2.0 * math.pi * t / _TIDE_S)
        elif shape == "night_low":
            cyc = -ch.amp * math.exp(-(((h - 3.0) / 3.5) ** 2))
        else:
            cyc = 0.0
        return ch.base + cyc + drift + rng.gauss(0.0, ch.noise)
    if shape == "rush":
        cyc = 1.0 + ch.amp * (math.exp(-(((h - 8.0) / 1.5) ** 2))
                              + math.exp(-(((h - 18.5) / 2.0) ** 2)) - 0.35)
    elif shape == "afternoon":
        cyc = max(0.2, 1.0 + ch.amp * (1.6 * math.exp(-(((h - 15.0) / 3.0) ** 2)) - 0.5))
    else:
        cyc = 1.0 + ch.amp * math.sin(2.0 * math.pi * h / 24.0)
    return ch.base * cyc * math.exp(drift + rng.gauss(0.0, ch.noise))


def _fault(e: Episode, ch: Channel, additive: bool, t: float, v: float,
           stuck: dict[str, float], rng: random.Random) -> float:
    """Apply a single-station fault (shape in ``e.detail``) to one reading."""
    if not e.start <= t < e.end:
        return v
    s, shape = e.strength, e.detail["shape"]
    sign: float = e.detail["sign"]
    scale = _ADD_SCALE.get(ch.metric, 1.0)
    if shape == "stuck":
        return stuck.setdefault(e.id, v)
    if shape == "zeros":
        return 0.0
    if shape == "spikes":
        if rng.random() >= 0.4:
            return v
        return v + 3.0 * scale * s if additive else v * (3.0 + 12.0 * s)
    frac = {"drift": (t - e.start) / max(e.end - e.start, 1.0), "step": 1.0,
            "recalibration": 0.3}[shape]
    size = 1.5 if shape == "step" else 1.0
    if additive:
        return v + sign * size * scale * s * frac
    return v * (1.0 + size * s * frac) if sign > 0 else v / (1.0 + size * s * frac)


def _send(wire: Wire, rng: random.Random, st: Station, ch: Channel, t: float, v: float,
          dept: str) -> None:
    arrival = None
    for o0, o1, backfill in st.outages:
        if o0 <= t < o1:
            if not backfill:
                return
            arrival = o1 + rng.uniform(300.0, 1800.0)
    if rng.random() < st.missing:
        return
    wire.emit("env", t + st.clock_offset_s, {
        "sensor_id": st.sensor_id, "metric": ch.metric, "value": float(f"{v / ch.factor:.5g}"),
        "unit": ch.unit, "region": st.region, "lat": st.lat, "lon": st.lon,
        "department": dept,
    }, style=st.time_style, arrival=arrival)
