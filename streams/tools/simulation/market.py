"""Market regulation's events: price reports, inspections, recalls and licence violations
of the vendors in each region, with the price and food-safety incidents' effects."""

from __future__ import annotations

import math
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


def market_events(ctx: SimContext) -> None:
    """Every market event of the run, hour by hour."""
    cfg, rng = ctx.cfg, ctx.rng
    records = _MarketRecords(ctx)
    price_factor = {(r, c): rng.uniform(0.9, 1.15) for r in ctx.regions for c in COMMODITIES}
    t = cfg.start
    while t < ctx.end:
        for r in ctx.regions:
            effects = ctx.effects(r, t)
            _price_reports(ctx, records, r, t, effects, price_factor)
            _inspections(ctx, records, r, t, effects)
            _recalls_and_licences(ctx, records, r, t, effects)
        t += timedelta(hours=1)


def _price_reports(ctx: SimContext, records: _MarketRecords, region: str, t: datetime,
                   effects: Effects, price_factor: dict[tuple[str, str], float]) -> None:
    """Prices reported in the hour from ``t``, partly per 500 g instead of per kg."""
    cfg, rng = ctx.cfg, ctx.rng
    for c, (base, unit) in COMMODITIES.items():
        lam = 0.6 if _open(t) else 0.05
        for _ in range(poisson(rng, lam)):
            ts = t + timedelta(seconds=rng.uniform(0, 3600))
            days = (ts - cfg.start).total_seconds() / 86400
            price = base * price_factor[(region, c)] * (1 + 0.01 * math.sin(days))
            price *= math.exp(rng.gauss(0, 0.04))
            for inc, a in effects:
                if c in inc.detail.get("commodities", ()):
                    price *= 1 + a * (ctx.scale(1.45) - 1)
            out_unit = unit
            if unit == "CNY/kg" and rng.random() < 0.2:
                price, out_unit = price / 2, "CNY/500g"
            records.emit("price_report", ts, region, commodity=c, price=round(price, 2),
                         unit=out_unit, entity_id=None)


def _inspections(ctx: SimContext, records: _MarketRecords, region: str, t: datetime,
                 effects: Effects) -> None:
    """Inspections in opening hours; a food-safety incident brings more, and more fail."""
    rng = ctx.rng
    lam_i = 0.7 if _open(t) else 0.0
    fail = 0.06
    for inc, a in effects:
        if inc.scenario == "food_safety":
            lam_i *= 1 + a * ctx.cfg.effect_scale
            fail = fail + a * ctx.cfg.effect_scale * 0.35
    for _ in range(poisson(rng, lam_i)):
        ts = t + timedelta(seconds=rng.uniform(0, 3600))
        ok = rng.random() >= fail
        records.emit("inspection", ts, region, passed=ok,
                     violation=None if ok else rng.choice(["hygiene", "expired_goods",
                                                          "cold_chain"]))


def _recalls_and_licences(ctx: SimContext, records: _MarketRecords, region: str, t: datetime,
                          effects: Effects) -> None:
    """Rare recalls (frequent in a food-safety incident) and licence violations."""
    rng = ctx.rng
    lam_r = 0.0008
    for inc, a in effects:
        if inc.scenario == "food_safety":
            lam_r += a * 0.25 * ctx.cfg.effect_scale
    for _ in range(poisson(rng, lam_r)):
        records.emit("recall", t + timedelta(seconds=rng.uniform(0, 3600)), region,
                     commodity=rng.choice(["pork", "eggs", "rice"]), violation="contamination")
    hour = t.hour + 0.5
    for _ in range(poisson(rng, 0.02 * diurnal_activity(hour))):
        records.emit("license_violation", t + timedelta(seconds=rng.uniform(0, 3600)), region,
                     violation=rng.choice(["expired_licence", "unlicensed_trading"]))


def _open(t: datetime) -> bool:
    """Market opening hours, 7 to 20 h."""
    return 7 <= t.hour < 20
