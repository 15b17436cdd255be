"""Scenario simulator: realistic department streams with injected incidents and ground truth.

Deterministic for a given seed. Normal behaviour has diurnal and weekly cycles, slow
weather drift, noise, missing data (drops and outages), late and re-delivered records and a
few malformed ones. Incidents touch several departments at once (cross-department) or one
department only (noise that must not become a cross-department warning).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.core.regions import RegionRegistry
from streams.core.uscc import ALPHABET, check_char

ENV_DEPT = "ecology_bureau"
HOTLINE_DEPT = "citizen_hotline"
MARKET_DEPT = "market_regulation"

CROSS_SCENARIOS = ("chemical_leak", "food_safety", "price_gouging", "waterlogging")
NOISE_SCENARIOS = ("sensor_fault", "noise_event", "market_blip")

# metric -> (station kind, base level, relative noise, diurnal amplitude, unit)
METRICS: dict[str, tuple[str, float, float, float, str]] = {
    "pm25": ("AQ", 35.0, 0.12, 0.25, "ug/m3"),
    "no2": ("AQ", 40.0, 0.10, 0.35, "ug/m3"),
    "noise_db": ("AQ", 52.0, 0.03, 0.12, "dB"),
    "water_cod": ("WQ", 18.0, 0.08, 0.05, "mg/L"),
    "water_nh3n": ("WQ", 0.6, 0.10, 0.05, "mg/L"),
    "water_level_m": ("WQ", 2.0, 0.01, 0.0, "m"),
}

# complaint category -> base rate per region-hour at the daily mean
COMPLAINT_RATES = {
    "odor": 0.06, "water_quality": 0.04, "noise": 0.12, "food_safety": 0.04,
    "illness": 0.03, "price": 0.05, "product_quality": 0.04, "flooding": 0.01,
}

COMMODITIES = {  # commodity -> (base price, canonical unit)
    "pork": (26.0, "CNY/kg"), "eggs": (11.0, "CNY/kg"), "rice": (6.0, "CNY/kg"),
    "cabbage": (4.0, "CNY/kg"), "cooking_oil": (15.0, "CNY/L"), "bottled_water": (2.0, "CNY/item"),
}

TEXTS = {
    "odor": ["Strong chemical smell near {place}, eyes watering.",
             "刺鼻气味 near {place} since this morning, call me at {phone}.",
             "Smells like solvent by the canal at {place}."],
    "water_quality": ["Tap water is cloudy and smells at {place}.",
                      "River water turned a strange colour near {place}."],
    "noise": ["Loud construction at night near {place}.",
              "Music from a venue at {place} until 2am."],
    "food_safety": ["Bought spoiled meat at the market on {place}.",
                    "Restaurant at {place} kitchen is filthy, contact {email}."],
    "illness": ["Several family members vomiting after dinner, we live at {place}.",
                "Kids have rashes and coughs since yesterday, {place}. ID {idno}."],
    "price": ["Price of {goods} doubled overnight at {place}!",
              "Shop at {place} overcharging for {goods}."],
    "product_quality": ["Charger bought at {place} melted.",
                        "Toy from {place} has sharp broken parts."],
    "flooding": ["Street flooded at {place}, cars stuck.", "Water entering basements at {place}."],
}
PLACES = ["Main St", "the wet market", "Canal Rd", "Block 7", "the school gate", "Harbour Rd",
          "Station Sq", "Lotus Lane"]


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    start: datetime = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
    days: float = 7.0
    warmup_days: float = 2.0
    cross_per_week: int = 4
    noise_per_week: int = 3
    effect_scale: float = 1.0
    late_rate: float = 0.03
    missing_rate: float = 0.02
    duplicate_rate: float = 0.003
    malformed_rate: float = 0.001
    sensor_period_s: int = 900


@dataclass
class Incident:
    id: str
    scenario: str
    region: str
    start: datetime
    end: datetime
    cross_department: bool
    departments: list[str]
    detail: dict[str, Any] = field(default_factory=dict)

    def truth(self) -> dict[str, Any]:
        return {
            "id": self.id, "scenario": self.scenario, "region": self.region,
            "start": _iso(self.start), "end": _iso(self.end.replace(microsecond=0)),
            "cross_department": self.cross_department, "departments": self.departments,
        }

    def active(self, t: datetime) -> float:
        """0 outside, ramping to 1 over the first hour inside."""
        if t < self.start or t >= self.end:
            return 0.0
        return min(1.0, (t - self.start).total_seconds() / 3600.0 + 0.25)


@dataclass(order=True)
class SimEvent:
    arrival: float
    seq: int
    source: str = field(compare=False)
    payload: dict[str, Any] = field(compare=False)
    malformed: bool = field(default=False, compare=False)
    duplicate: bool = field(default=False, compare=False)


@dataclass
class Simulation:
    config: SimConfig
    events: list[SimEvent]
    incidents: list[Incident]

    def truth(self) -> list[dict[str, Any]]:
        return [i.truth() for i in self.incidents]

    @property
    def n_malformed(self) -> int:
        return sum(e.malformed for e in self.events)

    @property
    def n_duplicates(self) -> int:
        return sum(e.duplicate for e in self.events)

    def lines(self) -> Iterator[str]:
        for e in self.events:
            yield json.dumps({"source": e.source, **e.payload}, ensure_ascii=False)

    def write(self, events_path: Path, truth_path: Path | None) -> None:
        with events_path.open("w", encoding="utf-8") as f:
            for line in self.lines():
                f.write(line + "\n")
        if truth_path is not None:
            truth_path.write_text(json.dumps(self.truth(), indent=2) + "\n", encoding="utf-8")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_uscc(rng: random.Random) -> str:
    body = "91" + "".join(rng.choice("0123456789") for _ in range(6)) + "".join(
        rng.choice(ALPHABET) for _ in range(9)
    )
    return body + check_char(body)


def diurnal_activity(hour: float) -> float:
    """Human activity over the day, mean about 1: low at night, high 9-21h."""
    return 0.25 + 1.35 * math.exp(-((hour - 14.0) / 5.0) ** 2)


class _Gen:
    def __init__(self, cfg: SimConfig, registry: RegionRegistry) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.regions = registry.ids()
        self.registry = registry
        self.end = cfg.start + timedelta(days=cfg.days)
        self.events: list[SimEvent] = []
        self.seq = 0
        self.incidents = self._plan_incidents()

    # -- plan ---------------------------------------------------------------------------
    def _plan_incidents(self) -> list[Incident]:
        cfg, rng = self.cfg, self.rng
        weeks = cfg.days / 7.0
        n_cross = max(1, round(cfg.cross_per_week * weeks))
        n_noise = round(cfg.noise_per_week * weeks)
        t_lo = cfg.start + timedelta(days=cfg.warmup_days)
        t_hi = self.end - timedelta(hours=36)
        if t_hi <= t_lo:
            raise ValueError("simulation too short: need warmup_days + 1.5 days at least")
        span = (t_hi - t_lo).total_seconds()
        kinds = [(CROSS_SCENARIOS[i % len(CROSS_SCENARIOS)], True) for i in range(n_cross)]
        kinds += [(NOISE_SCENARIOS[i % len(NOISE_SCENARIOS)], False) for i in range(n_noise)]
        rng.shuffle(kinds)
        out: list[Incident] = []
        busy: dict[str, list[tuple[datetime, datetime]]] = {r: [] for r in self.regions}
        for idx, (scenario, cross) in enumerate(kinds):
            hours = {
                "chemical_leak": (6, 10), "food_safety": (12, 24), "price_gouging": (18, 30),
                "waterlogging": (6, 10), "sensor_fault": (2, 4), "noise_event": (3, 5),
                "market_blip": (10, 16),
            }[scenario]
            dur = timedelta(hours=rng.uniform(*hours))
            for _ in range(200):
                region = rng.choice(self.regions)
                start = t_lo + timedelta(seconds=rng.uniform(0, span))
                start = start.replace(second=0, microsecond=0)
                end = start + dur
                # keep incidents in one region (and its neighbours) a day apart
                near = {region, *self.registry.neighbours(region)}
                if all(
                    end + timedelta(hours=24) < s or start > e + timedelta(hours=24)
                    for r in near for s, e in busy[r]
                ):
                    break
            busy[region].append((start, end))
            depts = {
                "chemical_leak": [ENV_DEPT, HOTLINE_DEPT],
                "food_safety": [MARKET_DEPT, HOTLINE_DEPT],
                "price_gouging": [MARKET_DEPT, HOTLINE_DEPT],
                "waterlogging": [ENV_DEPT, HOTLINE_DEPT],
                "sensor_fault": [ENV_DEPT], "noise_event": [HOTLINE_DEPT],
                "market_blip": [MARKET_DEPT],
            }[scenario]
            detail: dict[str, Any] = {}
            if scenario in ("price_gouging", "market_blip"):
                detail["commodities"] = rng.sample(sorted(COMMODITIES), 2 if cross else 1)
            if scenario == "sensor_fault":
                detail["metric"] = rng.choice(sorted(METRICS))
            out.append(Incident(f"inc-{cfg.seed}-{idx:02d}", scenario, region, start, end,
                                cross, depts, detail))
        out.sort(key=lambda i: i.start)
        return out

    def _effects(self, region: str, t: datetime) -> list[tuple[Incident, float]]:
        return [(i, a) for i in self.incidents if i.region == region and (a := i.active(t)) > 0]

    def _scale(self, factor: float) -> float:
        """Scale a multiplicative effect by effect_scale."""
        return 1.0 + self.cfg.effect_scale * (factor - 1.0)

    # -- emit ---------------------------------------------------------------------------
    def _emit(self, source: str, t: datetime, payload: dict[str, Any]) -> None:
        rng, cfg = self.rng, self.cfg
        arrival = t.timestamp()
        if rng.random() < cfg.late_rate:
            arrival += rng.uniform(300, 2700)
        self.seq += 1
        ev = SimEvent(arrival, self.seq, source, payload)
        if rng.random() < cfg.malformed_rate:
            ev.payload = self._corrupt(source, dict(payload))
            ev.malformed = True
        self.events.append(ev)
        if not ev.malformed and rng.random() < cfg.duplicate_rate:
            self.seq += 1
            self.events.append(SimEvent(arrival + rng.uniform(1, 600), self.seq, source,
                                        payload, duplicate=True))

    def _corrupt(self, source: str, p: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        choice = rng.randrange(6)
        if choice == 0:
            p["region"] = "atlantis"
        elif choice == 1:
            p.pop(next(iter(p)))  # drop the id
        elif choice == 2:
            ts_field = {"env": "observed_at", "complaint": "received_at", "market": "occurred_at"}
            p[ts_field[source]] = "yesterday afternoon"
        elif choice == 3 and source == "env":
            p["value"] = "NaN"
        elif choice == 3 and source == "complaint":
            p["channel"] = "fax"
        elif choice == 3:
            p["entity_id"] = "91310000MA1FL0000X"[:17] + "0"
        elif choice == 4 and source == "env":
            p["unit"] = "furlongs"
        else:
            p["department"] = ""
        return p

    # -- sources ------------------------------------------------------------------------
    def sensors(self) -> None:
        cfg, rng = self.cfg, self.rng
        step = timedelta(seconds=cfg.sensor_period_s)
        region_factor = {r: rng.uniform(0.7, 1.4) for r in self.regions}
        drift = {(r, m): 0.0 for r in self.regions for m in METRICS}
        outages: dict[tuple[str, str], tuple[datetime, datetime]] = {}
        for r in self.regions:
            if rng.random() < 0.5:
                kind = rng.choice(["AQ", "WQ"])
                s = cfg.start + timedelta(hours=rng.uniform(0, cfg.days * 24 - 8))
                outages[(r, kind)] = (s, s + timedelta(hours=rng.uniform(3, 8)))
        ppb_region = self.regions[0]
        cm_region = self.regions[-1]
        n = 0
        t = cfg.start
        rho = math.exp(-cfg.sensor_period_s / (12 * 3600))
        while t < self.end:
            hour = t.hour + t.minute / 60.0
            for r in self.regions:
                effects = self._effects(r, t)
                for metric, (kind, base, noise, amp, unit) in METRICS.items():
                    d = drift[(r, metric)] = rho * drift[(r, metric)] + math.sqrt(
                        1 - rho * rho) * rng.gauss(0, 0.15)
                    if (r, kind) in outages:
                        o0, o1 = outages[(r, kind)]
                        if o0 <= t < o1:
                            continue
                    if rng.random() < cfg.missing_rate:
                        continue
                    if metric == "water_level_m":
                        value = base + 0.15 * math.sin(2 * math.pi * t.timestamp() / 44712.0)
                        value += 0.05 * d + rng.gauss(0, base * noise)
                    elif metric == "noise_db":
                        value = base * (1 + amp * (diurnal_activity(hour) - 1) / 1.35)
                        value += rng.gauss(0, base * noise)
                    else:
                        rush = (math.exp(-((hour - 8) / 1.5) ** 2)
                                + math.exp(-((hour - 19) / 2) ** 2))
                        value = base * region_factor[r] * math.exp(d) * (1 + amp * (rush - 0.3))
                        value *= math.exp(rng.gauss(0, noise))
                    for inc, a in effects:
                        value = self._sensor_effect(inc, metric, value, a)
                    out_unit = unit
                    if metric == "no2" and r == ppb_region:
                        value, out_unit = value / 1.88, "ppb"
                    if metric == "water_level_m" and r == cm_region:
                        value, out_unit = value * 100.0, "cm"
                    n += 1
                    self._emit("env", t, {
                        "reading_id": f"rd-{cfg.seed}-{n:08d}",
                        "sensor_id": f"{kind}-{r}",
                        "metric": metric, "value": round(value, 4), "unit": out_unit,
                        "region": r, "lat": self.registry.get(r).lat,
                        "lon": self.registry.get(r).lon,
                        "observed_at": _iso(t), "department": ENV_DEPT,
                    })
            t += step

    def _sensor_effect(self, inc: Incident, metric: str, value: float, a: float) -> float:
        s = self._scale
        if inc.scenario == "chemical_leak":
            f = {"water_cod": 3.0, "water_nh3n": 4.0, "pm25": 1.6, "no2": 1.3}.get(metric)
            if f:
                return value * (1 + a * (s(f) - 1))
        elif inc.scenario == "waterlogging" and metric == "water_level_m":
            return value + a * 0.9 * self.cfg.effect_scale
        elif inc.scenario == "waterlogging" and metric == "water_cod":
            return value * (1 + a * (s(1.8) - 1))
        elif inc.scenario == "sensor_fault" and metric == inc.detail.get("metric"):
            return value * 5.0
        return value

    def complaints(self) -> None:
        cfg, rng = self.cfg, self.rng
        n = 0
        t = cfg.start
        while t < self.end:
            hour = t.hour + 0.5
            act = diurnal_activity(hour) * (1.15 if t.weekday() >= 5 else 1.0)
            for r in self.regions:
                rates = {c: base * act for c, base in COMPLAINT_RATES.items()}
                for inc, a in self._effects(r, t):
                    for cat, extra in self._complaint_effect(inc).items():
                        rates[cat] += a * extra * self.cfg.effect_scale * max(act, 0.8)
                for nb_inc in self.incidents:
                    if nb_inc.scenario == "chemical_leak" and r in self.registry.neighbours(
                        nb_inc.region
                    ) and (a := nb_inc.active(t)) > 0:
                        rates["odor"] += 0.4 * a * self.cfg.effect_scale * max(act, 0.5)
                for cat, lam in rates.items():
                    for _ in range(_poisson(rng, lam)):
                        ts = t + timedelta(seconds=rng.uniform(0, 3600))
                        n += 1
                        channel = rng.choice(["hotline", "hotline", "app", "web", "wechat"])
                        text = rng.choice(TEXTS[cat]).format(
                            place=rng.choice(PLACES), phone=f"138{rng.randrange(10**8):08d}",
                            email=f"user{rng.randrange(1000)}@example.com",
                            idno="11010519491231002X",
                            goods=rng.choice(sorted(COMMODITIES)).replace("_", " "),
                        )
                        rec: dict[str, Any] = {
                            "complaint_id": f"cp-{cfg.seed}-{n:07d}", "channel": channel,
                            "category": cat, "text": text, "region": r,
                            "received_at": _iso(ts), "department": HOTLINE_DEPT,
                        }
                        if channel == "hotline":
                            rec["reporter_phone"] = f"+86 139 {rng.randrange(10**8):08d}"
                        self._emit("complaint", ts, rec)
            t += timedelta(hours=1)

    @staticmethod
    def _complaint_effect(inc: Incident) -> dict[str, float]:
        return {
            "chemical_leak": {"odor": 2.5, "illness": 0.6, "water_quality": 1.0},
            "food_safety": {"illness": 1.0, "food_safety": 1.5},
            "price_gouging": {"price": 1.5},
            "waterlogging": {"flooding": 2.0, "water_quality": 0.4},
            "noise_event": {"noise": 3.0},
        }.get(inc.scenario, {})

    def market(self) -> None:
        cfg, rng = self.cfg, self.rng
        entities = {r: [(make_uscc(rng), f"{r.title()} Vendor {i}") for i in range(12)]
                    for r in self.regions}
        price_factor = {(r, c): rng.uniform(0.9, 1.15) for r in self.regions for c in COMMODITIES}
        n = 0
        t = cfg.start
        while t < self.end:
            hour = t.hour + 0.5
            open_hours = 7 <= t.hour < 20
            for r in self.regions:
                effects = self._effects(r, t)
                ents = entities[r]

                def emit(kind: str, ts: datetime, r: str = r,
                         ents: list[tuple[str, str]] = ents, **kw: Any) -> None:
                    nonlocal n
                    n += 1
                    ent_id, ent_name = rng.choice(ents)
                    rec: dict[str, Any] = {
                        "event_id": f"mk-{cfg.seed}-{n:07d}", "kind": kind,
                        "entity_id": ent_id, "entity_name": ent_name, "commodity": None,
                        "price": None, "unit": None, "passed": None, "violation": None,
                        "region": r, "occurred_at": _iso(ts), "department": MARKET_DEPT,
                    }
                    rec.update(kw)
                    self._emit("market", ts, rec)

                # price reports
                for c, (base, unit) in COMMODITIES.items():
                    lam = 0.6 if open_hours else 0.05
                    for _ in range(_poisson(rng, lam)):
                        ts = t + timedelta(seconds=rng.uniform(0, 3600))
                        days = (ts - cfg.start).total_seconds() / 86400
                        price = base * price_factor[(r, c)] * (1 + 0.01 * math.sin(days))
                        price *= math.exp(rng.gauss(0, 0.04))
                        for inc, a in effects:
                            if c in inc.detail.get("commodities", ()):
                                price *= 1 + a * (self._scale(1.45) - 1)
                        out_unit = unit
                        if unit == "CNY/kg" and rng.random() < 0.2:
                            price, out_unit = price / 2, "CNY/500g"
                        emit("price_report", ts, commodity=c, price=round(price, 2),
                             unit=out_unit, entity_id=None)
                # inspections
                lam_i = 0.7 if open_hours else 0.0
                fail = 0.06
                for inc, a in effects:
                    if inc.scenario == "food_safety":
                        lam_i *= 1 + a * self.cfg.effect_scale
                        fail = fail + a * self.cfg.effect_scale * 0.35
                for _ in range(_poisson(rng, lam_i)):
                    ts = t + timedelta(seconds=rng.uniform(0, 3600))
                    ok = rng.random() >= fail
                    emit("inspection", ts, passed=ok,
                         violation=None if ok else rng.choice(["hygiene", "expired_goods",
                                                              "cold_chain"]))
                # recalls and licence violations
                lam_r = 0.0008
                for inc, a in effects:
                    if inc.scenario == "food_safety":
                        lam_r += a * 0.25 * self.cfg.effect_scale
                for _ in range(_poisson(rng, lam_r)):
                    emit("recall", t + timedelta(seconds=rng.uniform(0, 3600)),
                         commodity=rng.choice(["pork", "eggs", "rice"]),
                         violation="contamination")
                for _ in range(_poisson(rng, 0.02 * diurnal_activity(hour))):
                    emit("license_violation", t + timedelta(seconds=rng.uniform(0, 3600)),
                         violation=rng.choice(["expired_licence", "unlicensed_trading"]))
            t += timedelta(hours=1)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    # Knuth for the small rates used here
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def simulate(cfg: SimConfig, registry: RegionRegistry) -> Simulation:
    g = _Gen(cfg, registry)
    g.sensors()
    g.complaints()
    g.market()
    events = sorted(g.events)
    return Simulation(cfg, events, g.incidents)
