"""Scaling out: two workers in one consumer group split the partitions, each takes part,
and together they publish exactly the warnings of an in-process replay."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import pytest

from streams.demo import start_worker, stop_process, wait_drained
from streams.evaluate import read_replay, run_pipeline
from streams.kafka_util import read_topic
from streams.regions import RegionRegistry
from streams.replay import produce
from streams.schemas import Warning
from streams.settings import TocsinSettings
from streams.simulate import SimConfig, simulate
from streams.topics import SOURCE_TOPICS, WARNINGS, create_topics, topic_name
from tests.services import free_port

pytestmark = pytest.mark.integration


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


def test_two_workers_split_the_partitions_and_complete_the_scenario(
    isolated_settings: TocsinSettings, registry: RegionRegistry, tmp_path: Path
) -> None:
    s = isolated_settings
    create_topics(s)
    sim = simulate(SimConfig(seed=16, days=4.5), registry)
    events = tmp_path / "events.jsonl"
    sim.write(events, tmp_path / "truth.json")
    expected, _ = run_pipeline(read_replay(events), s, registry)
    assert expected.warnings

    ports = [free_port(), free_port()]
    workers = [start_worker(s.model_copy(update={"metrics_port": p, "metrics_addr": "127.0.0.1"}),
                            tmp_path / f"worker{i}.log") for i, p in enumerate(ports)]
    logs = lambda: "\n".join(  # noqa: E731
        (tmp_path / f"worker{i}.log").read_text(errors="replace")[-2000:] for i in range(2))
    try:
        # both members in the group, the source partitions split between them
        sources = {topic_name(s, t) for t in SOURCE_TOPICS.values()}
        deadline = time.monotonic() + 90
        while True:
            try:
                owned = [sum(v for k, v in scrape(p).items()
                             if k.startswith("tocsin_assigned_partitions")
                             and any(f'topic="{t}"' in k for t in sources)) for p in ports]
            except OSError:
                owned = [0.0, 0.0]
            if all(owned) and sum(owned) == len(sources) * s.partitions:
                break
            assert time.monotonic() < deadline, f"owned {owned}\n{logs()}"
            time.sleep(0.5)

        async def go() -> bool:
            await produce(s, read_replay(events))
            return await wait_drained(s, 150)

        assert asyncio.run(go()), logs()
        deadline = time.monotonic() + s.reorder_idle_s + 30
        while True:
            warnings = [Warning.model_validate_json(v)
                        for v in asyncio.run(read_topic(s, topic_name(s, WARNINGS)))]
            if len(warnings) >= len(expected.warnings) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        received = [total(scrape(p), "tocsin_events_received_total") for p in ports]
        assert all(w.poll() is None for w in workers), logs()
    finally:
        for w in workers:
            stop_process(w)

    # each worker took part, and together they saw every record exactly once
    assert all(r > 0 for r in received), received
    assert sum(received) == len(sim.events)

    def canon(ws: list[Warning]) -> list[str]:
        return sorted(w.model_dump_json(exclude={"sent_at"}) for w in ws)

    assert canon(warnings) == canon(expected.warnings)
