"""Delivery of the simulated records: late arrivals, malformed records and re-deliveries."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from streams.tools.simulation.model import SimConfig, SimEvent

#: source -> the field holding its event time
TIME_FIELDS = {"env": "observed_at", "complaint": "received_at", "market": "occurred_at"}


class Delivery:
    """Collects the records of all departments as they would arrive, in one sequence."""

    def __init__(self, cfg: SimConfig, rng: random.Random) -> None:
        self.cfg = cfg
        self.rng = rng
        self.events: list[SimEvent] = []
        self.seq = 0

    def emit(self, source: str, t: datetime, payload: dict[str, Any]) -> None:
        """Deliver one record of event time ``t``: maybe late, malformed or twice."""
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
        choice = self.rng.randrange(6)
        if choice == 0:
            p["region"] = "atlantis"
        elif choice == 1:
            p.pop(next(iter(p)))  # drop the id
        elif choice == 2:
            p[TIME_FIELDS[source]] = "yesterday afternoon"
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
