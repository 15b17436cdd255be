"""The citizen hotline's complaints: hourly Poisson counts per region and category, more by
day and at weekends, more where (and next to where) an incident is active."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from streams.tools.simulation.context import SimContext
from streams.tools.simulation.model import (
    COMMODITIES,
    COMPLAINT_RATES,
    HOTLINE_DEPT,
    PLACES,
    TEXTS,
    diurnal_activity,
    iso,
    poisson,
)

#: scenario -> extra complaints per region-hour, by category, at full effect
COMPLAINT_EFFECTS: dict[str, dict[str, float]] = {
    "chemical_leak": {"odor": 2.5, "illness": 0.6, "water_quality": 1.0},
    "food_safety": {"illness": 1.0, "food_safety": 1.5},
    "price_gouging": {"price": 1.5},
    "waterlogging": {"flooding": 2.0, "water_quality": 0.4},
    "noise_event": {"noise": 3.0},
}


class ComplaintIds:
    """Complaint ids ``<prefix>-<n>``, numbered from 1 (a live tail continues them under
    another prefix)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n:07d}"


def complaints(ctx: SimContext, ids: ComplaintIds | None = None) -> None:
    """Every complaint of the run, hour by hour (numbered by ``ids``, default
    ``cp-<seed>-<n>``)."""
    next_id = ids or ComplaintIds(f"cp-{ctx.cfg.seed}")
    t = ctx.cfg.start
    while t < ctx.end:
        complaint_span(ctx, t, 3600.0, next_id)
        t += timedelta(hours=1)


def complaint_span(ctx: SimContext, t: datetime, span_s: float, next_id: Callable[[], str],
                   boost: float = 1.0) -> None:
    """The complaints of every region in the ``span_s`` seconds from ``t``; incidents'
    extra complaints come ``boost`` times faster (a live tail's shortened incidents)."""
    rng = ctx.rng
    hour = t.hour + 0.5
    act = diurnal_activity(hour) * (1.15 if t.weekday() >= 5 else 1.0)
    for r in ctx.regions:
        for cat, lam in _rates(ctx, r, t, act, boost).items():
            for _ in range(poisson(rng, lam * span_s / 3600.0)):
                ts = t + timedelta(seconds=rng.uniform(0, span_s))
                ctx.emit("complaint", ts, _complaint(ctx, next_id(), cat, r, ts))


def _rates(ctx: SimContext, region: str, t: datetime, act: float,
           boost: float = 1.0) -> dict[str, float]:
    """Expected complaints per category in ``region`` in the hour from ``t``: odour drifts
    to the neighbours of a chemical leak; the incidents' share times ``boost``."""
    rates = {c: base * act for c, base in COMPLAINT_RATES.items()}
    for inc, a in ctx.effects(region, t):
        for cat, extra in COMPLAINT_EFFECTS.get(inc.scenario, {}).items():
            rates[cat] += a * extra * ctx.cfg.effect_scale * max(act, 0.8) * boost
    for nb_inc in ctx.incidents:
        if nb_inc.scenario == "chemical_leak" and region in ctx.registry.neighbours(
            nb_inc.region
        ) and (a := nb_inc.active(t)) > 0:
            rates["odor"] += 0.4 * a * ctx.cfg.effect_scale * max(act, 0.5) * boost
    return rates


def _complaint(ctx: SimContext, complaint_id: str, cat: str, region: str,
               ts: datetime) -> dict[str, Any]:
    """One complaint record, with a text that may hold personal data."""
    rng = ctx.rng
    channel = rng.choice(["hotline", "hotline", "app", "web", "wechat"])
    text = rng.choice(TEXTS[cat]).format(
        place=rng.choice(PLACES), phone=f"138{rng.randrange(10**8):08d}",
        email=f"user{rng.randrange(1000)}@example.com",
        idno="11010519491231002X",
        goods=rng.choice(sorted(COMMODITIES)).replace("_", " "),
    )
    rec: dict[str, Any] = {
        "complaint_id": complaint_id, "channel": channel,
        "category": cat, "text": text, "region": region,
        "received_at": iso(ts), "department": HOTLINE_DEPT,
    }
    if channel == "hotline":
        rec["reporter_phone"] = f"+86 139 {rng.randrange(10**8):08d}"
    return rec
