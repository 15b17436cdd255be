"""Citizen complaints of a drawn world: uneven, over-dispersed background (gamma-Poisson by
region and day, and a city-wide factor), day/night and weekday rhythms, holidays, a hotline
backlog, incidents' complaints (lagging, night ones arriving next morning) and clusters."""

from __future__ import annotations

import math
import random
from itertools import accumulate

from streams.evaluation.world.catalog import CATEGORIES, CHANNELS, COMMODITIES, PLACES, TEXTS
from streams.evaluation.world.model import (
    HOUR,
    Episode,
    RegionSpec,
    World,
    is_holiday,
    is_night,
    local_date,
    local_day,
    local_hour,
    next_morning,
    poisson,
)
from streams.evaluation.world.wire import Wire


def _activity(h: float) -> float:
    return (0.12 + 1.4 * math.exp(-(((h - 10.5) / 3.5) ** 2))
            + 0.9 * math.exp(-(((h - 20.0) / 2.5) ** 2)))


_RAW = [_activity(h + 0.5) for h in range(24)]
ACTIVITY = [a * 24.0 / sum(_RAW) for a in _RAW]  # mean 1 over the day
_CATS = tuple(CATEGORIES)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(rng: random.Random) -> str:
    """An 18-character resident ID with a valid GB 11643 check character."""
    body = (rng.choice(("110105", "310104", "440305", "320102", "510107"))
            + f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            + f"{rng.randrange(1000):03d}")
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS,
                                                                strict=True)) % 11]


def _phone(rng: random.Random) -> str:
    n = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
    return rng.choice((n, f"+86 {n[:3]} {n[3:7]} {n[7:]}", f"{n[:3]}-{n[3:7]}-{n[7:]}"))


class _People:
    def __init__(self, world: World, rng: random.Random, wire: Wire) -> None:
        self.world, self.rng, self.wire = world, rng, wire
        self.dept = world.departments["complaint"]
        self.backlogs = [e for e in world.episodes if e.scenario == "hotline_backlog"]
        self.city_day: dict[int, float] = {}

    def complaint(self, spec: RegionSpec, t: float, category: str, *,
                  channel: str | None = None) -> None:
        rng = self.rng
        if channel is None:
            weights = list(spec.channels)
            if is_night(t):
                weights[0] *= 2.5
            channel = rng.choices(CHANNELS, weights=weights)[0]
        repeats = 0
        for b in self.backlogs:  # hotline down: the calls are logged in a burst afterwards
            if channel == "hotline" and b.start <= t < b.detail["outage_end"]:
                t = b.detail["outage_end"] + rng.uniform(0.0, b.detail["burst_s"])
                repeats = poisson(rng, b.strength)
        for k in range(1 + repeats):
            when = t if k == 0 else t + rng.uniform(0.0, 1800.0)
            self._send(spec, when, category, channel)

    def _send(self, spec: RegionSpec, t: float, category: str, channel: str) -> None:
        rng, r = self.rng, spec.region
        text = rng.choice(TEXTS.get(category, TEXTS["other"])).format(
            place=rng.choice(PLACES), phone=_phone(rng),
            email=f"user{rng.randrange(10000)}@example.com", idno=resident_id(rng),
            goods=rng.choice(sorted(COMMODITIES)).replace("_", " "))
        rec: dict[str, object] = {"channel": channel, "category": category, "text": text,
                                  "region": r.region, "department": self.dept}
        if rng.random() < 0.6:
            rec["lat"] = round(r.lat + rng.uniform(-0.01, 0.01), 5)
            rec["lon"] = round(r.lon + rng.uniform(-0.01, 0.01), 5)
        if channel == "hotline":
            rec["reporter_phone"] = _phone(rng)
        self.wire.emit("complaint", t, rec, style=rng.choice((0, 0, 1, 2)))

    def background(self, spec: RegionSpec) -> None:
        rng, w = self.rng, self.world
        k, kc = w.dispersion, w.params["city_dispersion"]
        region_day: dict[int, float] = {}
        weights = {}
        for night in (False, True):
            for hol in (False, True):
                ws = [spec.categories[c][1 if night else 0]
                      * (1.5 if hol and c in ("price", "food_safety") else 1.0) for c in _CATS]
                weights[night, hol] = list(accumulate(ws))
        for i in range(math.ceil(w.days * 24)):
            t0 = w.start + i * HOUR
            day = local_day(t0)
            if day not in region_day:
                region_day[day] = rng.gammavariate(k, 1.0 / k)
                self.city_day.setdefault(day, rng.gammavariate(kc, 1.0 / kc))
            h = int(local_hour(t0))
            hol = is_holiday(t0)
            f = ACTIVITY[h] * region_day[day] * self.city_day[day] * (0.85 if hol else 1.0)
            if local_date(t0).weekday() >= 5:
                f *= w.weekend
            for _ in range(poisson(rng, spec.complaints_per_day / 24.0 * f)):
                t = t0 + rng.uniform(0.0, HOUR)
                if t < w.end:
                    cat = rng.choices(_CATS, cum_weights=weights[h >= 22 or h < 6, hol])[0]
                    self.complaint(spec, t, cat)

    def incident(self, e: Episode) -> None:
        """The incident's complaints, after its complaint lag; at night most wait till
        morning (noise complaints less so)."""
        rng = self.rng
        specs = {s.region.region: s for s in self.world.regions}
        s = e.strength * e.detail["sides"].get("complaint", 1.0)
        dur = e.phys_end - e.start
        n = max(2, poisson(rng, s * e.detail["complaint_n"] * math.sqrt(max(1.0, dur / 43200))))
        lag = e.lags.get("complaint", 0.0)
        steps = [e.start + lag + j * 600.0 for j in range(int(dur // 600) + 1)]
        levels = [e.level(t, "complaint") for t in steps]
        if not any(levels):
            levels = [1.0] * len(steps)
        cats, cw = zip(*e.detail["categories"].items(), strict=True)
        area = [e.region] + [r for r in e.regions if r != e.region]
        area_w = [1.0] + [0.5] * (len(area) - 1)
        defer = 0.4 if e.scenario == "noise" else 0.85
        for t in rng.choices(steps, weights=levels, k=n):
            t = min(t + rng.uniform(0.0, 600.0), e.end - 60.0)
            if is_night(t) and rng.random() < defer:
                t = min(next_morning(t) + rng.uniform(0.0, 3 * HOUR), e.end - 60.0)
            region = rng.choices(area, weights=area_w)[0]
            self.complaint(specs[region], t, rng.choices(cats, weights=cw)[0])

    def cluster(self, e: Episode) -> None:
        spec = next(s for s in self.world.regions if s.region.region == e.region)
        for _ in range(max(3, poisson(self.rng, e.detail["complaints"]))):
            t = self.rng.uniform(e.start, e.end)
            self.complaint(spec, t, e.detail["category"],
                           channel=self.rng.choice(("app", "wechat", "web")))


def complaint_records(world: World, rng: random.Random, wire: Wire) -> None:
    people = _People(world, rng, wire)
    for spec in world.regions:
        people.background(spec)
    for e in world.episodes:
        if e.cross_department and "complaint" in e.sources:
            people.incident(e)
        elif e.scenario == "complaint_cluster":
            people.cluster(e)
