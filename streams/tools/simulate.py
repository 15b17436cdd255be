"""Scenario simulator: realistic department streams with injected incidents and ground truth.

Deterministic for a given seed. Normal behaviour has diurnal and weekly cycles, slow
weather drift, noise, missing data (drops and outages), late and re-delivered records and a
few malformed ones. Incidents touch several departments at once (cross-department) or one
department only (noise that must not become a cross-department warning).

The parts are in ``streams.tools.simulation``: the incident plan, the delivery faults and one
generator per department; this module runs them in a fixed order (the random stream is
shared) and keeps the public names in one place.
"""

from __future__ import annotations

from streams.core.regions import RegionRegistry
from streams.tools.simulation.complaints import complaints
from streams.tools.simulation.context import SimContext
from streams.tools.simulation.market import market_events
from streams.tools.simulation.model import (
    COMMODITIES,
    COMPLAINT_RATES,
    CROSS_SCENARIOS,
    ENV_DEPT,
    HOTLINE_DEPT,
    MARKET_DEPT,
    METRICS,
    NOISE_SCENARIOS,
    PLACES,
    TEXTS,
    Incident,
    SimConfig,
    SimEvent,
    Simulation,
    diurnal_activity,
    make_uscc,
)
from streams.tools.simulation.sensors import sensor_readings


def simulate(cfg: SimConfig, registry: RegionRegistry) -> Simulation:
    """The events (in arrival order) and incidents of one run of ``cfg`` on ``registry``."""
    ctx = SimContext(cfg, registry)
    sensor_readings(ctx)
    complaints(ctx)
    market_events(ctx)
    events = sorted(ctx.delivery.events)
    return Simulation(cfg, events, ctx.incidents)


__all__ = [
    "COMMODITIES",
    "COMPLAINT_RATES",
    "CROSS_SCENARIOS",
    "ENV_DEPT",
    "HOTLINE_DEPT",
    "MARKET_DEPT",
    "METRICS",
    "NOISE_SCENARIOS",
    "PLACES",
    "TEXTS",
    "Incident",
    "SimConfig",
    "SimEvent",
    "Simulation",
    "diurnal_activity",
    "make_uscc",
    "simulate",
]
