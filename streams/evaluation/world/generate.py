"""Simulate a drawn world's department streams: the same wire contract as
``streams/simulate.py`` (one JSON object per line with ``source``), its ground truth and
its region registry."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.evaluation.world.draw import draw_world
from streams.evaluation.world.market import market_records
from streams.evaluation.world.model import World
from streams.evaluation.world.people import complaint_records
from streams.evaluation.world.sensors import sensor_records
from streams.evaluation.world.wire import Wire


@dataclass
class WorldSim:
    world: World
    lines: list[str]  # in arrival order
    stats: dict[str, Any]

    def truth(self) -> list[dict[str, Any]]:
        return self.world.truth()

    def write(self, events: Path, truth: Path | None = None,
              regions: Path | None = None) -> None:
        with events.open("w", encoding="utf-8") as f:
            for line in self.lines:
                f.write(line + "\n")
        if truth is not None:
            truth.write_text(json.dumps(self.truth(), indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
        if regions is not None:
            regions.write_text(self.world.regions_csv(), encoding="utf-8")


def generate(world: World) -> WorldSim:
    """Each source has its own generator (seeded from the world), so adding records to one
    never shifts another."""
    base = world.stream_seed
    wire = Wire(random.Random(base + 3), world.id_prefix,
                late_rate=world.params["late_rate"],
                duplicate_rate=world.params["duplicate_rate"],
                malformed_rate=world.params["malformed_rate"])
    sensor_records(world, random.Random(base), wire)
    complaint_records(world, random.Random(base + 1), wire)
    market_records(world, random.Random(base + 2), wire)
    stats: dict[str, Any] = {
        "events": len(wire), "env": wire.counts["env"], "complaint": wire.counts["complaint"],
        "market": wire.counts["market"], "late": wire.counts["late"],
        "duplicates": wire.counts["duplicates"], "malformed": len(wire.malformed),
        "regions": len(world.regions), "stations": len(world.stations),
        "shops": len(world.shops), "incidents": len(world.incidents()),
        "decoys": len(world.decoys()),
    }
    return WorldSim(world, wire.lines(), stats)


def simulate_world(seed: int, days: float = 14.0, effect_scale: float = 1.0) -> WorldSim:
    """Draw the world of ``seed`` and simulate it (deterministic)."""
    return generate(draw_world(seed, days, effect_scale))
