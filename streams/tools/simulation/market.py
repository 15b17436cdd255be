"""Market regulation's events: price reports, inspections, recalls and licence violations
of the vendors in each region, with the price and food-safety incidents' effects."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from streams.tools.simulation.context import SimContext
from streams.tools.simulation.model import (
    COMMODITIES,
    MARKET_DEPT,
    Incident,
    diurnal_activity,
    iso,
    make_uscc,
    poisson,
)

Effects = list[tuple[Incident, float]]


class _MarketRecords:
    """Numbers the market events and names the vendor behind each."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.entities = {r: [(make_uscc(ctx.rng), f"{r.title()} Vendor {i}") for i in range(12)]
                         for r in ctx.regions}
        self.n = 0

    def emit(self, kind: str, ts: datetime, region: str, **kw: Any) -> None:
        """One event of ``kind`` by a random vendor of ``region``; ``kw`` sets its fields."""
        self.n += 1
        ent_id, ent_name = self.ctx.rng.choice(self.entities[region])
        rec: dict[str, Any] = {
            "event_id": f"mk-{self.ctx.cfg.seed}-{self.n:07d}", "kind": kind,
            "entity_id": ent_id, "entity_name": ent_name, "commodity": None,
            "price": None, "unit": None, "passed": None, "violation": None,
            "region": region, "occurred_at": iso(ts), "department": MARKET_DEPT,
        }
        rec.update(kw)
        self.ctx.emit("market", ts, rec)


@dataclass
class MarketState:
    """What the market generator keeps: the vendors (and the events numbered so far) and
    each region's price level per commodity (a live tail, :mod:`.live`, continues it)."""

    records: _MarketRecords
    price_factor: dict[tuple[str, str], float]


def market_events(ctx: SimContext) -> MarketState:
    """Every market event of the run, hour by hour; the generator's state at the end."""
    cfg, rng = ctx.cfg, ctx.rng
    st = MarketState(_MarketRecords(ctx),
                     {(r, c): rng.uniform(0.9, 1.15) for r in ctx.regions for c in COMMODITIES})
    t = cfg.start
    while t < ctx.end:
        market_span(ctx, st, t)
        t += timedelta(hours=1)
    return st


def market_span(ctx: SimContext, st: MarketState, t: datetime, span_s: float = 3600.0,
                boost: float = 1.0) -> None:
    """Every region's market events in the ``span_s`` seconds from ``t``; what incidents
    add comes ``boost`` times faster (a live tail's shortened incidents)."""
    h = span_s / 3600.0
    for r in ctx.regions:
        effects = ctx.effects(r, t)
        _price_reports(ctx, st, r, t, effects, h, boost)
        _inspections(ctx, st.records, r, t, effects, h, boost)
        _recalls_and_licences(ctx, st.records, r, t, effects, h, boost)


def _price_reports(ctx: SimContext, st: MarketState, region: str, t: datetime,
                   effects: Effects, h: float, boost: float) -> None:
    """Prices reported in ``h`` hours from ``t``, partly per 500 g instead of per kg; the
    goods of an incident reported ``boost`` times more often."""
    cfg, rng = ctx.cfg, ctx.rng
    for c, (base, unit) in COMMODITIES.items():
        lam = 0.6 if _open(t) else 0.05
        if any(c in inc.detail.get("commodities", ()) for inc, _a in effects):
            lam *= boost
        for _ in range(poisson(rng, lam * h)):
            ts = t + timedelta(seconds=rng.uniform(0, 3600 * h))
            days = (ts - cfg.start).total_seconds() / 86400
            price = base * st.price_factor[(region, c)] * (1 + 0.01 * math.sin(days))
            price *= math.exp(rng.gauss(0, 0.04))
            for inc, a in effects:
                if c in inc.detail.get("commodities", ()):
                    price *= 1 + a * (ctx.scale(1.45) - 1)
            out_unit = unit
            if unit == "CNY/kg" and rng.random() < 0.2:
                price, out_unit = price / 2, "CNY/500g"
            st.records.emit("price_report", ts, region, commodity=c, price=round(price, 2),
                            unit=out_unit, entity_id=None)


def _inspections(ctx: SimContext, records: _MarketRecords, region: str, t: datetime,
                 effects: Effects, h: float, boost: float) -> None:
    """Inspections in opening hours; a food-safety incident brings more (``boost`` times
    faster), and more fail."""
    rng = ctx.rng
    lam_i = 0.7 if _open(t) else 0.0
    fail = 0.06
    for inc, a in effects:
        if inc.scenario == "food_safety":
            lam_i *= 1 + a * ctx.cfg.effect_scale * boost
            fail = fail + a * ctx.cfg.effect_scale * 0.35
    for _ in range(poisson(rng, lam_i * h)):
        ts = t + timedelta(seconds=rng.uniform(0, 3600 * h))
        ok = rng.random() >= fail
        records.emit("inspection", ts, region, passed=ok,
                     violation=None if ok else rng.choice(["hygiene", "expired_goods",
                                                          "cold_chain"]))


def _recalls_and_licences(ctx: SimContext, records: _MarketRecords, region: str, t: datetime,
                          effects: Effects, h: float, boost: float) -> None:
    """Rare recalls (frequent in a food-safety incident, ``boost`` times more) and licence
    violations."""
    rng = ctx.rng
    lam_r = 0.0008
    for inc, a in effects:
        if inc.scenario == "food_safety":
            lam_r += a * 0.25 * ctx.cfg.effect_scale * boost
    for _ in range(poisson(rng, lam_r * h)):
        records.emit("recall", t + timedelta(seconds=rng.uniform(0, 3600 * h)), region,
                     commodity=rng.choice(["pork", "eggs", "rice"]), violation="contamination")
    hour = t.hour + 0.5
    for _ in range(poisson(rng, 0.02 * diurnal_activity(hour) * h)):
        records.emit("license_violation", t + timedelta(seconds=rng.uniform(0, 3600 * h)),
                     region, violation=rng.choice(["expired_licence", "unlicensed_trading"]))


def _open(t: datetime) -> bool:
    """Market opening hours, 7 to 20 h."""
    return 7 <= t.hour < 20
