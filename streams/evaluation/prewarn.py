"""``tocsin eval prewarn``: how early and how reliably the limit pre-warnings
(:mod:`streams.pipeline.prewarnings`) warn before a sensor series crosses its regulatory
limit, on simulated station-months.

Each world has ``stations`` stations per limited metric the simulator knows (pm25, no2,
noise_db, water_cod, water_nh3n, water_level_m), each in its own region, read every
15 minutes for ``days`` days. Their normal values are the simulator's
(:func:`streams.tools.simulation.sensors.normal_value`: rush hours, tides, day activity,
slow drift, the region's level); on top, per station-month, ``rises`` slow rises past the
limit (to 1.1-1.5 times it over 3-10 h, held 1-4 h, then back) and as many near misses
(rising the same way to 0.75-0.95 of it). Every reading goes through the detect stage's
sensor path (:class:`~streams.pipeline.detection.Detection`, fault screen included), with
the default limits.

A *crossing* is the first of ``SUSTAINED`` readings in a row past the limit (an hour: the
limits are hourly or daily means) after at least ``REARM_S`` of readings on the safe side;
brief excursions of one or a few noisy readings are not counted. It is *pre-warned* when a
pre-warning of its station opened before it, no more than the horizon plus ``GRACE_S``
earlier, and was not withdrawn before it; its *lead* is the time between. A pre-warning is
*false* when no crossing of its station follows within the horizon plus ``GRACE_S`` of its
opening.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime

from streams.core.schemas import SensorReading, Warning
from streams.pipeline.detection import Detection, DetectParams
from streams.pipeline.prewarnings import HORIZON_S, default_limits
from streams.tools.simulation.model import METRICS
from streams.tools.simulation.sensors import normal_value

PERIOD_S = 900.0
#: a crossing counts once the series has been on the safe side this long
REARM_S = 6 * 3600.0
#: readings in a row past the limit that make a crossing (an hour: the limits are hourly
#: or daily means; a single noisy reading past one is not an exceedance)
SUSTAINED = 4
#: how long after its horizon a pre-warning's crossing may still come
GRACE_S = 3600.0
START = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class _Rise:
    start: float
    ramp_s: float
    hold_s: float
    peak: float  # times the limit

    def effect(self, t: float) -> float:
        """0 to 1: how far toward its peak the rise is at ``t``."""
        u = t - self.start
        if u < 0:
            return 0.0
        if u < self.ramp_s:
            return u / self.ramp_s
        u -= self.ramp_s
        if u < self.hold_s:
            return 1.0
        u -= self.hold_s
        return max(0.0, 1.0 - u / (self.ramp_s / 2))


def _rises(rng: random.Random, days: float, n: int) -> list[_Rise]:
    """``n`` rises past the limit and ``n`` near misses, spread over ``days``."""
    out: list[_Rise] = []
    slots = sorted(rng.sample(range(int(days)), min(2 * n, int(days))))
    for i, day in enumerate(slots):
        start = START + day * 86400.0 + rng.uniform(0, 10 * 3600.0)
        peak = rng.uniform(1.1, 1.5) if i % 2 == 0 else rng.uniform(0.75, 0.95)
        out.append(_Rise(start, rng.uniform(3, 10) * 3600.0, rng.uniform(1, 4) * 3600.0,
                         peak))
    return out


def _world(seed: int, days: float, stations: int, rises: int
           ) -> list[tuple[str, str, list[_Rise], float]]:
    """(station, metric, its rises, region factor) of one world."""
    rng = random.Random(seed)
    limits = default_limits()
    out = []
    for metric in METRICS:
        if metric not in limits:
            continue
        for i in range(stations):
            n = max(1, round(rises * days / 30.0))
            out.append((f"{metric}-{i}", metric, _rises(rng, days, n), rng.uniform(0.7, 1.4)))
    return out


def _usual(metric: str, factor: float) -> float:
    """A station's usual level of ``metric`` (the region's factor scales the pollutants)."""
    base = METRICS[metric][1]
    return base if metric in ("water_level_m", "noise_db") else base * factor


def _track(out: list[float], runs: dict[str, list[float]], station: str, t: float,
           past: bool) -> None:
    """Record the start of a sustained crossing of ``station`` in ``out``. ``runs``
    holds per station [safe since, start of the current run past the limit, its length]."""
    run = runs[station]
    if not past:
        if run[2] >= SUSTAINED:
            run[0] = t
        run[1], run[2] = math.nan, 0.0
        return
    if not run[2]:
        run[1] = t
    run[2] += 1
    if run[2] == SUSTAINED and run[1] - run[0] >= REARM_S:
        out.append(run[1])


def run_world(seed: int, days: float = 30.0, stations: int = 3, rises: int = 2
              ) -> tuple[dict[str, list[float]], list[Warning]]:
    """Feed one world to a detection stage: each station's crossing times and every
    pre-warning version."""
    limits = default_limits()
    det = Detection(DetectParams(limits=limits))
    rng = random.Random(seed + 7919)
    series = _world(seed, days, stations, rises)
    drift = dict.fromkeys((s for s, *_ in series), 0.0)
    rho = math.exp(-PERIOD_S / (12 * 3600))
    crossings: dict[str, list[float]] = {s: [] for s, *_ in series}
    runs: dict[str, list[float]] = {s: [START - REARM_S, math.nan, 0.0] for s in crossings}
    warnings: list[Warning] = []
    n = 0
    for k in range(int(days * 86400 / PERIOD_S)):
        t = START + k * PERIOD_S
        when = datetime.fromtimestamp(t, UTC)
        hour = when.hour + when.minute / 60.0
        for station, metric, its_rises, factor in series:
            lim = limits[metric]
            d = drift[station] = rho * drift[station] + math.sqrt(1 - rho * rho) * rng.gauss(
                0, 0.15)
            base = normal_value(rng, metric, when, hour, d, factor)
            # a rise moves the station from its usual level toward peak x the limit
            value = base + max((r.effect(t) * (r.peak * lim.limit - _usual(metric, factor))
                                for r in its_rises), default=0.0)
            n += 1
            _track(crossings[station], runs, station, t, value > lim.limit)
            det.process("env", SensorReading(
                reading_id=f"r{n}", sensor_id=station, metric=metric, value=round(value, 4),
                unit=lim.unit, region=f"R-{station}", observed_at=when, department="ecology"))
            warnings.extend(det.prewarnings.take())
    return crossings, warnings


def _episodes(warnings: list[Warning]) -> list[tuple[str, float, float]]:
    """(station, opened, closed or inf) of each pre-warning."""
    opened: dict[str, tuple[str, float]] = {}
    closed: dict[str, float] = {}
    for w in warnings:
        station = w.evidence[0].signal.rsplit(":", 1)[1]
        if w.status == "new":
            opened[w.warning_id] = (station, w.first_seen.timestamp())
        elif w.status == "cancelled":
            closed[w.warning_id] = w.last_seen.timestamp()
    return [(s, t0, closed.get(wid, math.inf)) for wid, (s, t0) in opened.items()]


def _tally(crossings: dict[str, list[float]], warnings: list[Warning]
           ) -> tuple[int, list[float], int, int]:
    """(crossings, leads of those pre-warned, pre-warnings, false pre-warnings)."""
    eps = _episodes(warnings)
    window = HORIZON_S + GRACE_S
    leads: list[float] = []
    n_cross = 0
    for station, times in crossings.items():
        for c in times:
            n_cross += 1
            ok = [c - t0 for s, t0, t1 in eps if s == station and t0 < c <= t0 + window
                  and t1 >= c]
            if ok:
                leads.append(max(ok))
    false = sum(1 for s, t0, _ in eps
                if not any(t0 < c <= t0 + window for c in crossings.get(s, ())))
    return n_cross, leads, len(eps), false


def _figures(n_cross: int, leads: list[float], n_eps: int, false: int,
             station_months: float) -> dict[str, float]:
    return {
        "crossings": n_cross, "prewarned": len(leads),
        "share_prewarned": round(len(leads) / n_cross, 3) if n_cross else math.nan,
        "median_lead_min": round(statistics.median(leads) / 60.0, 1) if leads else math.nan,
        "prewarnings": n_eps, "false_prewarnings": false,
        "false_per_station_month": round(false / station_months, 3),
        "station_months": round(station_months, 2),
    }


def measure(crossings: dict[str, list[float]], warnings: list[Warning], days: float
            ) -> dict[str, float]:
    """Crossings, the share pre-warned, their median lead and false pre-warnings per
    station-month."""
    return _figures(*_tally(crossings, warnings), len(crossings) * days / 30.0)


def evaluate(seeds: list[int], days: float = 30.0, stations: int = 3, rises: int = 2
             ) -> dict[str, object]:
    """``tocsin eval prewarn``: the figures per seed and over all of them."""
    per: dict[str, dict[str, float]] = {}
    n_cross, n_eps, false, months = 0, 0, 0, 0.0
    leads: list[float] = []
    for seed in seeds:
        crossings, warnings = run_world(seed, days, stations, rises)
        c, ls, e, f = _tally(crossings, warnings)
        m = len(crossings) * days / 30.0
        per[str(seed)] = _figures(c, ls, e, f, m)
        n_cross, n_eps, false, months = n_cross + c, n_eps + e, false + f, months + m
        leads.extend(ls)
    return {"seeds": per, "total": _figures(n_cross, leads, n_eps, false, months)}


__all__ = ["GRACE_S", "REARM_S", "evaluate", "measure", "run_world"]
