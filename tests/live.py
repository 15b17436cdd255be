"""Helpers for tests that run real workers: read what they published, canonical forms."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from streams.core.schemas import Warning
from streams.core.settings import TocsinSettings
from streams.core.topics import SOURCE_TOPICS, WARNINGS, topic_name
from streams.runtime.kafka_util import read_topic


@dataclass(frozen=True)
class Scenario:
    """A simulated scenario on disk, its replay lines, and the in-process replay's
    warnings (what a live worker must publish)."""

    events: Path
    truth: Path
    lines: list  # type: ignore[type-arg]
    n_events: int
    n_malformed: int  # lines the simulator made unreadable on purpose
    expected: list[Warning]


def read_warnings(s: TocsinSettings) -> list[Warning]:
    return [Warning.model_validate_json(v)
            for v in asyncio.run(read_topic(s, topic_name(s, WARNINGS)))]


def wait_for_warnings(s: TocsinSettings, count: int, extra_s: float = 30.0) -> list[Warning]:
    """The warnings topic once it holds ``count`` versions (the last ones leave the reorder
    buffer ``reorder_idle_s`` after input stops), or at the deadline; read once more a
    second later so a duplicate published late is seen too."""
    deadline = time.monotonic() + s.reorder_idle_s + extra_s
    while len(read_warnings(s)) < count and time.monotonic() < deadline:
        time.sleep(1.0)
    time.sleep(1.0)
    return read_warnings(s)


def canon(ws: list[Warning]) -> list[str]:
    """Warning versions comparable between runs (only the wall-clock sent_at differs)."""
    return sorted(w.model_dump_json(exclude={"sent_at"}) for w in ws)


def scrape(port: int) -> dict[str, float]:
    """metric line (name and labels) -> value, from a worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def total(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith(prefix))


def owned_source_partitions(port: int, s: TocsinSettings) -> float:
    """Source-topic partitions the worker serving /metrics on ``port`` owns (0 when it does
    not serve yet)."""
    sources = {topic_name(s, t) for t in SOURCE_TOPICS.values()}
    try:
        metrics = scrape(port)
    except OSError:
        return 0.0
    return sum(v for k, v in metrics.items() if k.startswith("tocsin_assigned_partitions")
               and any(f'topic="{t}"' in k for t in sources))
