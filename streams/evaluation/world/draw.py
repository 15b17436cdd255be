"""Draw a world's structure from a seed: calendar window, city, sensor network, shops,
complaint habits, then its incidents and decoys (``plan.py``). ``random.Random(seed)`` only."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import timedelta

from streams.core.regions import Region
from streams.evaluation.world.catalog import (
    CADENCES,
    CATEGORIES,
    CHANNELS,
    COMMODITIES,
    DEPARTMENTS,
    FIRST_DAY,
    HOLIDAY_STARTS,
    LAST_DAY,
    METRICS,
    SHOP_GOODS,
    STATION_TYPES,
    price_factor,
    sensor_units,
)
from streams.evaluation.world.city import draw_city
from streams.evaluation.world.model import (
    DAY,
    HOUR,
    Channel,
    Good,
    RegionSpec,
    Shop,
    Station,
    World,
    local_midnight,
)
from streams.evaluation.world.plan import plan_episodes
from streams.tools.simulate import make_uscc

#: sensor readings per simulated day the network is thinned to (keeps a replay fast)
READINGS_PER_DAY = 2500
MIN_DAYS, MAX_DAYS = 2.0, 60.0
MAX_EFFECT_SCALE = 10.0

# station type -> (probability per region, cadence choices, cadence weights)
_NETWORK: dict[str, tuple[float, tuple[int, ...], tuple[int, ...]]] = {
    "air": (0.55, (600, 900, 1800, 3600), (1, 2, 2, 6)),
    "pm_micro": (0.2, (60, 120, 300, 600), (1, 2, 3, 2)),
    "water": (0.4, (900, 1800, 3600), (1, 2, 5)),
    "noise": (0.45, (300, 600, 900, 1800, 3600), (1, 1, 2, 2, 4)),
    "gauge": (0.4, (300, 600, 900, 3600), (1, 2, 2, 4)),
}
#: a network is drawn for this many regions; a larger city gets fewer stations per region
_NETWORK_REGIONS = 12


def check_params(days: float, effect_scale: float) -> None:
    """``ValueError`` with a one-line reason if a world cannot be drawn with these."""
    if not (math.isfinite(days) and MIN_DAYS <= days <= MAX_DAYS):
        raise ValueError(f"--days must be between {MIN_DAYS:g} and {MAX_DAYS:g}, got {days:g}")
    if not (math.isfinite(effect_scale) and 0 < effect_scale <= MAX_EFFECT_SCALE):
        raise ValueError(f"--effect-scale must be > 0 and <= {MAX_EFFECT_SCALE:g}, "
                         f"got {effect_scale:g}")


def draw_world(seed: int, days: float = 14.0, effect_scale: float = 1.0) -> World:
    check_params(days, effect_scale)
    rng = random.Random(seed)
    start = _draw_start(rng, days)
    regions = draw_city(rng)
    stations = _draw_stations(rng, regions, start, days)
    shops = _draw_shops(rng, regions)
    specs = _draw_people(rng, regions, shops)
    style = rng.randrange(3)
    prefixes = [("rd-", "cp-", "mk-"), ("R", "C", "M"), ("env_", "cmp_", "mkt_")][style]
    world = World(
        seed=seed, days=days, effect_scale=effect_scale, start=start,
        end=start + days * DAY, regions=specs, stations=stations, shops=shops, episodes=[],
        departments={src: rng.choice(opts) for src, opts in DEPARTMENTS.items()},
        id_prefix=dict(zip(("env", "complaint", "market"),
                           (f"{p}{seed}-" for p in prefixes), strict=True)),
        index={c: rng.uniform(*spec.price) for c, spec in COMMODITIES.items()},
        dispersion=rng.uniform(4.0, 12.0), weekend=rng.uniform(0.8, 1.25),
        params={"city_dispersion": rng.uniform(12.0, 30.0),
                "recalls_per_day": rng.uniform(0.002, 0.01),
                "violations_per_day": rng.uniform(0.01, 0.04),
                "late_rate": 0.03, "duplicate_rate": 0.002, "malformed_rate": 0.001},
    )
    world.episodes = plan_episodes(rng, world)
    world.stream_seed = rng.getrandbits(63)
    return world


def _draw_start(rng: random.Random, days: float) -> float:
    """Local midnight of the first day: half the worlds hold a public holiday."""
    if rng.random() < 0.5:
        hol = rng.choice(HOLIDAY_STARTS)
        lead = rng.randint(max(1, int(days * 0.3)), max(1, int(days * 0.8)))
        first = hol - timedelta(days=lead)
    else:
        first = FIRST_DAY + timedelta(days=rng.randrange((LAST_DAY - FIRST_DAY).days))
    return local_midnight(first)


def _pick(rng: random.Random, options: tuple[int, ...], weights: tuple[int, ...]) -> int:
    return rng.choices(options, weights=weights)[0]


def _draw_stations(rng: random.Random, regions: list[Region], start: float, days: float
                   ) -> list[Station]:
    style = rng.randrange(3)
    sparse = min(1.0, _NETWORK_REGIONS / len(regions))
    out: list[Station] = []
    for reg in regions:
        for kind, (p, cadences, weights) in _NETWORK.items():
            if rng.random() >= p * sparse:
                continue
            for k in range(1 if kind == "pm_micro" else rng.choice((1, 1, 1, 2, 2, 3))):
                sid = (f"{kind.upper()}-{reg.region}-{k + 1}" if style == 0 else
                       f"ST{len(out) + 1:04d}" if style == 1 else f"{reg.region}.{kind}{k + 1}")
                out.append(_station(rng, sid, kind, reg, _pick(rng, cadences, weights),
                                    (start, start + days * DAY)))
    if not out:  # every world has at least one station
        reg = rng.choice(regions)
        out.append(_station(rng, f"AIR-{reg.region}-1", "air", reg, 3600,
                            (start, start + days * DAY)))
    return _thin(out)


def _station(rng: random.Random, sid: str, kind: str, reg: Region, cadence: int,
             span: tuple[float, float]) -> Station:
    metrics = STATION_TYPES[kind]
    keep = 0.3 if kind == "pm_micro" else 0.5
    chosen = [m for i, m in enumerate(metrics) if i == 0 or rng.random() < keep]
    channels = tuple(_channel(rng, m) for m in chosen)
    outages = []
    for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
        backfill = rng.random() < 0.4
        hours = rng.uniform(0.5, 2.5) if backfill else rng.uniform(1.0, 12.0)
        t0 = rng.uniform(span[0], span[1] - hours * HOUR)
        outages.append((t0, t0 + hours * HOUR, backfill))
    return Station(
        sensor_id=sid, kind=kind, region=reg.region, cadence_s=cadence,
        lat=round(reg.lat + rng.uniform(-0.01, 0.01), 5),
        lon=round(reg.lon + rng.uniform(-0.01, 0.01), 5),
        time_style=rng.randrange(3),
        clock_offset_s=0.0 if rng.random() < 0.7 else rng.uniform(-120, 120),
        missing=rng.uniform(0.0, 0.03), channels=channels,
        outages=tuple(outages),
    )


def _channel(rng: random.Random, metric: str) -> Channel:
    spec = METRICS[metric]
    units = sensor_units(metric)
    canonical = next(u for u, f in units.items() if f == 1.0)
    unit = canonical if rng.random() < 0.7 else rng.choice(sorted(units))
    amp = {"rush": rng.uniform(0.2, 0.5), "afternoon": rng.uniform(0.4, 0.8),
           "night_low": rng.uniform(4.0, 10.0), "flat": rng.uniform(0.0, 0.05)}[spec.diurnal]
    if metric == "water_level_m":
        amp = rng.uniform(0.0, 0.3)  # tidal amplitude, metres
    return Channel(metric=metric, unit=unit, factor=units[unit], base=rng.uniform(*spec.base),
                   noise=rng.uniform(*spec.noise), drift_sd=spec.drift * rng.uniform(0.5, 1.5),
                   tau_s=rng.uniform(3.0, 24.0) * HOUR, amp=amp)


def _thin(stations: list[Station]) -> list[Station]:
    """Slow stations down until the network fits ``READINGS_PER_DAY``: the slower ones
    first, so a few fast micro-sensors survive beside hourly stations."""
    def per_day(s: Station) -> float:
        return len(s.channels) * DAY / s.cadence_s

    while sum(per_day(s) for s in stations) > READINGS_PER_DAY:
        candidates = [k for k, s in enumerate(stations) if s.cadence_s < CADENCES[-1]]
        if not candidates:
            break
        i = max(candidates, key=lambda k: (stations[k].cadence_s, -k))
        s = stations[i]
        slower = next(c for c in CADENCES if c > s.cadence_s)
        stations[i] = replace(s, cadence_s=slower)
    return stations


def _draw_shops(rng: random.Random, regions: list[Region]) -> list[Shop]:
    kinds = tuple(SHOP_GOODS)
    out: list[Shop] = []
    for reg in regions:
        for i in range(rng.choice((1, 2, 2, 3, 3, 4, 4, 5, 6, 7))):
            kind = rng.choices(kinds, weights=(3, 3, 2.5, 1.5))[0]
            pool = SHOP_GOODS[kind]
            goods = []
            for c in rng.sample(pool, min(len(pool), rng.randint(2, 5))):
                units, weights = zip(*COMMODITIES[c].units, strict=True)
                unit = rng.choices(units, weights=weights)[0]
                goods.append(Good(c, unit, price_factor(unit), rng.uniform(0.9, 1.15)))
            name = f"{reg.name} {kind.replace('_', ' ').title()} {i + 1}"
            out.append(Shop(make_uscc(rng), name, kind, reg.region, tuple(goods),
                            reports_per_day=1 if rng.random() < 0.7 else 2,
                            working_days_only=rng.random() < 0.3))
    return out


def _draw_people(rng: random.Random, regions: list[Region], shops: list[Shop]
                 ) -> list[RegionSpec]:
    """Complaint rates 10-20x apart between regions, category mixes, channels, vendors."""
    n = len(regions)
    low, ratio = rng.uniform(0.8, 3.0), rng.uniform(10.0, 20.0)
    shares = [0.0, 1.0] + [rng.random() for _ in range(n - 2)]
    rng.shuffle(shares)
    fail = rng.uniform(0.04, 0.10)
    out = []
    for reg, share in zip(regions, shares, strict=True):
        cats = {}
        for c, (w, night) in CATEGORIES.items():
            g = rng.gammavariate(5.0, 0.2)
            cats[c] = (w * g, (w * 0.4 + night) * g)
        chan = (rng.uniform(0.35, 0.6), rng.uniform(0.1, 0.3), rng.uniform(0.05, 0.2),
                rng.uniform(0.1, 0.3))
        assert len(chan) == len(CHANNELS)
        vendors = tuple((s.entity_id, s.name) for s in shops if s.region == reg.region)
        vendors += tuple((make_uscc(rng), f"{reg.name} Eatery {k + 1}")
                         for k in range(rng.randint(3, 10)))
        out.append(RegionSpec(reg, low * ratio ** share, cats, chan, vendors,
                              inspections_per_day=rng.uniform(0.3, 2.5),
                              fail_rate=fail * rng.uniform(0.7, 1.3)))
    return out
