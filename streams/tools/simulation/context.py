"""What the department generators share: configuration, random stream, regions, incidents
and the delivery of their records."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from streams.core.regions import RegionRegistry
from streams.tools.simulation.delivery import Delivery
from streams.tools.simulation.model import Incident, SimConfig
from streams.tools.simulation.plan import plan_incidents


class SimContext:
    """One run's shared state. Every draw comes from the one ``rng``, in a fixed order, so
    a seed always gives the same records."""

    def __init__(self, cfg: SimConfig, registry: RegionRegistry) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.regions = registry.ids()
        self.registry = registry
        self.end = cfg.start + timedelta(days=cfg.days)
        self.delivery = Delivery(cfg, self.rng)
        self.incidents = plan_incidents(cfg, self.rng, registry, self.regions, self.end)

    def effects(self, region: str, t: datetime) -> list[tuple[Incident, float]]:
        """The incidents active in ``region`` at ``t``, with their activity (0-1]."""
        return [(i, a) for i in self.incidents if i.region == region and (a := i.active(t)) > 0]

    def scale(self, factor: float) -> float:
        """Scale a multiplicative effect by effect_scale."""
        return 1.0 + self.cfg.effect_scale * (factor - 1.0)

    def emit(self, source: str, t: datetime, payload: dict[str, Any]) -> None:
        self.delivery.emit(source, t, payload)
