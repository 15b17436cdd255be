"""A live world: days of history ending at a given moment, then a real-time *tail* whose
incidents run on a shortened time scale, so that a few minutes of wall clock carry
several incident onsets and the evidence to detect them.

The history is the simulator's normal world (``streams.tools.simulate``'s department
generators, with their delivery faults) without incidents; its event times end at the
requested moment. The tail continues the same generators' state (each region's level,
each series' drift, the vendors and their prices) from a later moment, for ``live_s``
seconds, record by record with event time = the moment it is due to be produced
(no late, malformed or re-delivered records in the tail: each is produced when it happens).

**The shortened time scale** (``time_scale`` k, 60 by default): an incident of the tail
lasts ``SCENARIO_HOURS`` / k (a 6-10 h chemical leak: 6-10 minutes), ramps up over
3600 / k seconds instead of an hour, and what it adds to the departments' streams comes k
times faster, so the tail carries the evidence of its whole course: extra complaints
(k times the extra rate per hour), the extra inspections and recalls of a food-safety
incident, and the price reports of the goods a price-gouging wave touches (k times as
many). Sensor readings keep their period (``sensor_period_s``, 180 s by default here,
in history and tail alike; the tail staggers the stations over the period); a reading
shows the incident's effect at its activity at that moment. Everything else - the
baseline rates, diurnal cycles, the detectors and their event-time windows - keeps its
real time scale.

Incidents of one world are few and of different kinds on purpose: Tocsin sets aside, as
a city-wide condition, a signal kind anomalous in four or more regions within six hours
(``detectors/fusion/citywide.py``), so one city cannot hold twenty local incidents in a
few minutes. A bench wanting more runs several worlds (cities) side by side
(``streams.bench.live``). Deterministic for a seed, the moment the history ends and the
moment the tail starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from streams.core.regions import RegionRegistry
from streams.evaluation.replay_score import ReplayLine, replay_line
from streams.tools.simulation.complaints import ComplaintIds, complaint_span, complaints
from streams.tools.simulation.context import SimContext
from streams.tools.simulation.delivery import TIME_FIELDS, Delivery
from streams.tools.simulation.market import MarketState, market_events, market_span
from streams.tools.simulation.model import (
    COMMODITIES,
    METRICS,
    SCENARIO_DEPARTMENTS,
    SCENARIO_HOURS,
    Incident,
    SimConfig,
    SimEvent,
)
from streams.tools.simulation.sensors import SensorState, emit_reading, sensor_readings

#: the incidents of one world's tail: four cross-department scenarios, one region each,
#: few enough that no signal kind reaches four regions (a city-wide condition)
LIVE_SCENARIOS = ("chemical_leak", "waterlogging", "food_safety", "price_gouging",
                  "price_gouging")


@dataclass(frozen=True)
class LiveConfig:
    seed: int = 1
    history_days: float = 3.0
    sensor_period_s: int = 180
    live_s: float = 300.0
    #: incident onsets are drawn uniformly in this part of the tail (seconds from its start)
    onsets_s: tuple[float, float] = (10.0, 120.0)
    time_scale: float = 60.0
    #: the tail's complaints and market events are drawn per step of this many seconds
    step_s: float = 2.0
    scenarios: tuple[str, ...] = LIVE_SCENARIOS
    effect_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.history_days <= 1.5:
            raise ValueError("history_days: more than 1.5 days of history")
        if not 0 <= self.onsets_s[0] <= self.onsets_s[1] <= self.live_s:
            raise ValueError("onsets_s must lie within the tail (0 <= lo <= hi <= live_s)")
        if self.time_scale < 1 or self.step_s <= 0 or self.sensor_period_s <= 0:
            raise ValueError("time_scale >= 1, step_s > 0 and sensor_period_s > 0")


@dataclass
class LiveIncident(Incident):
    """An incident on a shortened time scale: it ramps up over ``ramp_s`` seconds."""

    ramp_s: float = 3600.0

    def active(self, t: datetime) -> float:
        """0 outside, ramping from 0.25 to 1 over ``ramp_s`` inside."""
        if t < self.start or t >= self.end:
            return 0.0
        return min(1.0, (t - self.start).total_seconds() / self.ramp_s + 0.25)


@dataclass(frozen=True)
class LiveRecord:
    """One record of a live world: its event time (epoch seconds) and its replay line."""

    t: float
    line: ReplayLine


@dataclass
class LiveTail:
    start: datetime
    records: list[LiveRecord]
    incidents: list[Incident] = field(default_factory=list)


class LiveWorld:
    """One city's history and tail (call :meth:`history` first, then :meth:`tail`)."""

    def __init__(self, cfg: LiveConfig, registry: RegionRegistry) -> None:
        if len(cfg.scenarios) > len(registry):
            raise ValueError(f"{len(cfg.scenarios)} incidents need as many regions, the "
                             f"registry has {len(registry)}")
        self.cfg = cfg
        self.registry = registry
        self._ctx: SimContext | None = None
        self._sensors: SensorState | None = None
        self._market: MarketState | None = None
        self._lines = 0

    def history(self, end: datetime) -> list[LiveRecord]:
        """``history_days`` of the normal world (no incidents) up to ``end``, in arrival
        order; every event time is before ``end``."""
        cfg = self.cfg
        sim = SimConfig(seed=cfg.seed, start=end - timedelta(days=cfg.history_days),
                        days=cfg.history_days, warmup_days=0.0,
                        sensor_period_s=cfg.sensor_period_s, effect_scale=cfg.effect_scale)
        ctx = SimContext(sim, self.registry)
        ctx.incidents = []
        self._sensors = sensor_readings(ctx)
        self._complaint_ids = ComplaintIds(f"cp-{cfg.seed}")
        complaints(ctx, self._complaint_ids)
        self._market = market_events(ctx)
        self._ctx = ctx
        cut = end.timestamp()
        return self._records(e for e in sorted(ctx.delivery.events)
                             if _event_time(e) < cut)

    def tail(self, start: datetime) -> LiveTail:
        """``live_s`` seconds from ``start`` (after the history's end) with this world's
        incidents on the shortened time scale, by event time."""
        ctx, sensors, market = self._ctx, self._sensors, self._market
        if ctx is None or sensors is None or market is None:
            raise RuntimeError("LiveWorld.tail needs the history first")
        cfg = self.cfg
        ctx.delivery = Delivery(replace(ctx.cfg, late_rate=0.0, malformed_rate=0.0,
                                        duplicate_rate=0.0), ctx.rng)
        ctx.incidents = self._plan(ctx, start)
        end = start + timedelta(seconds=cfg.live_s)
        self._tail_sensors(ctx, sensors, start, end)
        self._complaint_ids.prefix = f"cl-{cfg.seed}"
        t = start
        step = timedelta(seconds=cfg.step_s)
        while t < end:
            span = min(cfg.step_s, (end - t).total_seconds())
            complaint_span(ctx, t, span, self._complaint_ids, cfg.time_scale)
            market_span(ctx, market, t, span, cfg.time_scale)
            t += step
        records = self._records(sorted(ctx.delivery.events))
        return LiveTail(start, records, list(ctx.incidents))

    def _plan(self, ctx: SimContext, start: datetime) -> list[Incident]:
        """The tail's incidents: each scenario in its own region, onsets drawn in
        ``onsets_s``, durations ``SCENARIO_HOURS`` / ``time_scale``."""
        cfg, rng = self.cfg, ctx.rng
        regions = rng.sample(ctx.regions, len(cfg.scenarios))
        out: list[Incident] = []
        for i, (scenario, region) in enumerate(zip(cfg.scenarios, regions, strict=True)):
            onset = start + timedelta(seconds=rng.uniform(*cfg.onsets_s))
            hours = rng.uniform(*SCENARIO_HOURS[scenario]) / cfg.time_scale
            detail: dict[str, Any] = {}
            if scenario == "price_gouging":
                detail["commodities"] = rng.sample(sorted(COMMODITIES), 2)
            out.append(LiveIncident(
                f"live-{cfg.seed}-{i:02d}", scenario, region, onset,
                onset + timedelta(hours=hours), True, list(SCENARIO_DEPARTMENTS[scenario]),
                detail, ramp_s=3600.0 / cfg.time_scale))
        out.sort(key=lambda inc: inc.start)
        return out

    def _tail_sensors(self, ctx: SimContext, st: SensorState, start: datetime,
                      end: datetime) -> None:
        """Every station's readings in the tail, the stations staggered over the period."""
        cfg, rng = self.cfg, ctx.rng
        period = cfg.sensor_period_s
        rho = math.exp(-period / (12 * 3600))
        kinds: dict[str, list[str]] = {}
        for metric, spec in METRICS.items():
            kinds.setdefault(spec[0], []).append(metric)
        for r in ctx.regions:
            for metrics in kinds.values():
                t = start + timedelta(seconds=rng.uniform(0, period))
                while t < end:
                    hour = t.hour + t.minute / 60.0
                    effects = ctx.effects(r, t)
                    for metric in metrics:
                        d = st.step_drift(rng, r, metric, rho)
                        if rng.random() >= ctx.cfg.missing_rate:
                            emit_reading(ctx, st, r, metric, t, hour, d, effects)
                    t += timedelta(seconds=period)

    def _records(self, events: Any) -> list[LiveRecord]:
        out = []
        for e in events:
            self._lines += 1
            out.append(LiveRecord(e.arrival, replay_line(
                self._lines, {"source": e.source, **e.payload})))
        return out


def _event_time(e: SimEvent) -> float:
    """A simulated record's event time (its arrival, if the time field is malformed)."""
    value = e.payload.get(TIME_FIELDS[e.source])
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return e.arrival
