"""Market-regulation events of a drawn world: shops' price reports (office hours, some on
working days only, each in its own unit), routine inspections, rare recalls and licence
violations, and what incidents and decoys do to them."""

from __future__ import annotations

import math
import random
from typing import Any

from streams.evaluation.world.catalog import COMMODITIES
from streams.evaluation.world.incidents import FOOD
from streams.evaluation.world.model import (
    DAY,
    HOUR,
    Episode,
    RegionSpec,
    Shop,
    World,
    day_start,
    is_working_day,
    local_date,
    local_day,
    local_hour,
    local_midnight,
    poisson,
)
from streams.evaluation.world.wire import Wire

_FAILS = ("hygiene", "expired_goods", "cold_chain", "pest_control")
_RECALLS = ("contamination", "mislabelling", "undeclared_allergen")
_PRODUCTS = ("phone_charger", "toys", "electric_heater", "helmets")
_LICENCE = ("expired_licence", "unlicensed_trading", "false_advertising")


def _office(rng: random.Random, t: float) -> float:
    """``t`` if in office hours (08-18 local), else the next morning's first hours."""
    h = local_hour(t)
    if 8.0 <= h < 18.0:
        return t
    day = local_midnight(local_date(t)) + (DAY if h >= 18.0 else 0.0)
    return day + rng.uniform(8.0, 10.0) * HOUR


class _Market:
    def __init__(self, world: World, rng: random.Random, wire: Wire) -> None:
        self.world, self.rng, self.wire = world, rng, wire
        self.dept = world.departments["market"]
        self.days = range(local_day(world.start), local_day(world.end - 1.0) + 1)
        self.index = self._index()
        self.price_eps = [e for e in world.episodes
                          if e.scenario in ("price_gouging", "holiday_price_rise",
                                            "shop_misprice")]

    def _index(self) -> dict[tuple[str, int], float]:
        """City reference price per commodity and local day: a random walk."""
        out = {}
        for c, spec in COMMODITIES.items():
            x = 0.0
            for d in self.days:
                x += self.rng.gauss(0.0, spec.volatility)
                out[c, d] = self.world.index[c] * math.exp(x)
        return out

    def emit(self, t: float, region: str, kind: str, **fields: Any) -> None:
        rec = {"kind": kind, **{k: v for k, v in fields.items() if v is not None},
               "region": region, "department": self.dept}
        arrival = None
        if kind == "inspection" and self.rng.random() < 0.1:  # entered after the fact
            arrival = t + self.rng.uniform(1800.0, 10800.0)
        self.wire.emit("market", t, rec, style=0, arrival=arrival)

    def prices(self, shop: Shop) -> None:
        rng = self.rng
        for d in self.days:
            noon = day_start(d) + 12 * HOUR
            if shop.working_days_only and not is_working_day(noon):
                continue
            slots = [(8.5, 11.5)] if shop.reports_per_day == 1 else [(8.0, 11.0), (14.0, 17.0)]
            promo = (rng.choice(shop.goods).commodity
                     if shop.kind == "supermarket" and rng.random() < 0.06 else None)
            depth = rng.uniform(0.1, 0.25)
            for lo, hi in slots:
                t = noon - 12 * HOUR + rng.uniform(lo, hi) * HOUR
                if not self.world.start <= t < self.world.end:
                    continue
                for g in shop.goods:
                    if rng.random() < 0.05:
                        continue
                    p = self.index[g.commodity, d] * g.level * math.exp(rng.gauss(0.0, 0.02))
                    p *= (1.0 - depth) if g.commodity == promo else 1.0
                    p *= self._price_effect(shop, g.commodity, t)
                    self.emit(t, shop.region, "price_report", entity_id=shop.entity_id,
                              entity_name=shop.name, commodity=g.commodity,
                              price=round(p / g.factor, 2), unit=g.unit)

    def _price_effect(self, shop: Shop, commodity: str, t: float) -> float:
        f = 1.0
        for e in self.price_eps:
            det = e.detail
            if e.scenario == "price_gouging":
                if commodity == det["commodity"] and shop.entity_id in det["shops"]:
                    s = e.strength * det["sides"].get("market", 1.0)
                    f *= 1.0 + det["rise"] * s * e.level(t, "market")
            elif e.scenario == "holiday_price_rise":
                if commodity in det["commodities"]:
                    f *= 1.0 + det["rise"] * e.strength * e.level(t)
            elif (det["entity_id"] == shop.entity_id and det["commodity"] == commodity
                  and e.start <= t < e.end):
                f *= det["factor"]
        return f

    def routine(self, spec: RegionSpec) -> None:
        """Inspections on working days in office hours; rare recalls and violations."""
        rng, w, r = self.rng, self.world, spec.region.region
        for d in self.days:
            base = day_start(d)
            n_insp = poisson(rng, spec.inspections_per_day) if is_working_day(base + 43200) else 0
            for _ in range(n_insp):
                self._inspection(spec, base + rng.uniform(9.0, 17.0) * HOUR,
                                 rng.random() < spec.fail_rate)
            for _ in range(poisson(rng, w.params["recalls_per_day"])):
                self._recall(spec, base + rng.uniform(9.0, 17.0) * HOUR)
            for _ in range(poisson(rng, w.params["violations_per_day"])):
                ent, name = rng.choice(spec.vendors)
                self._in_span(base + rng.uniform(9.0, 17.0) * HOUR, r, "license_violation",
                              entity_id=ent, entity_name=name, violation=rng.choice(_LICENCE))

    def _in_span(self, t: float, region: str, kind: str, **fields: Any) -> None:
        if self.world.start <= t < self.world.end:
            self.emit(t, region, kind, **fields)

    def _inspection(self, spec: RegionSpec, t: float, failed: bool) -> None:
        ent, name = self.rng.choice(spec.vendors)
        self._in_span(t, spec.region.region, "inspection", entity_id=ent, entity_name=name,
                      passed=not failed,
                      violation=self.rng.choice(_FAILS) if failed else None)

    def _recall(self, spec: RegionSpec, t: float, goods: tuple[str, ...] = FOOD) -> None:
        ent, name = self.rng.choice(spec.vendors)
        self._in_span(t, spec.region.region, "recall", entity_id=ent, entity_name=name,
                      commodity=self.rng.choice(goods), violation=self.rng.choice(_RECALLS))

    def incident(self, e: Episode) -> None:
        """Emergency inspections and recalls (food safety); recalls, violations and failed
        inspections (product quality). In office hours, after the market lag."""
        rng = self.rng
        spec = next(s for s in self.world.regions if s.region.region == e.region)
        s = e.strength * e.detail["sides"].get("market", 1.0)
        m = e.detail["market"]
        lag = e.lags.get("market", 0.0)
        steps = [e.start + lag + j * 600.0 for j in range(int((e.phys_end - e.start) // 600) + 1)]
        levels = [e.level(t, "market") for t in steps] or [1.0]

        def when() -> float:
            t = rng.choices(steps, weights=levels)[0] + rng.uniform(0.0, 600.0)
            return min(_office(rng, t), e.end - 60.0)

        if e.scenario == "food_safety":
            for k in range(max(1, poisson(rng, s * m["inspections"]))):
                self._inspection(spec, when(), k == 0 or rng.random() < m["fail"])
            for _ in range(poisson(rng, s * m["recalls"])):
                self._recall(spec, when())
            return
        n_r, n_v = poisson(rng, s * m["recalls"]), poisson(rng, s * m["violations"])
        n_f = poisson(rng, s * m["failed_inspections"])
        for _ in range(n_r if n_r + n_v + n_f else 1):
            self._recall(spec, when(), _PRODUCTS)
        for _ in range(n_v):
            ent, name = rng.choice(spec.vendors)
            self._in_span(when(), e.region, "license_violation", entity_id=ent,
                          entity_name=name, violation=rng.choice(_LICENCE))
        for _ in range(n_f):
            self._inspection(spec, when(), True)


def market_records(world: World, rng: random.Random, wire: Wire) -> None:
    m = _Market(world, rng, wire)
    for shop in world.shops:
        m.prices(shop)
    for spec in world.regions:
        m.routine(spec)
    for e in world.episodes:
        if e.cross_department and e.scenario in ("food_safety", "product_quality"):
            m.incident(e)
