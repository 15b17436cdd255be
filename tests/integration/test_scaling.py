"""Scaling out: two workers in one consumer group split the partitions, each takes part,
and together they publish exactly the warnings of an in-process replay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streams.core.settings import TocsinSettings
from streams.core.topics import SOURCE_TOPICS, create_topics
from streams.tools.demo import start_worker, stop_process, wait_drained
from streams.tools.replay import produce
from tests.live import (
    Scenario,
    assert_same_incidents,
    owned_source_partitions,
    scrape,
    total,
    wait_for_warnings,
)
from tests.services import free_port

pytestmark = pytest.mark.integration


def test_two_workers_split_the_partitions_and_complete_the_scenario(
    isolated_settings: TocsinSettings, scenario: Scenario, tmp_path: Path
) -> None:
    s = isolated_settings
    create_topics(s)

    ports = [free_port(), free_port()]
    workers = [start_worker(s.model_copy(update={"metrics_port": p, "metrics_addr": "127.0.0.1"}),
                            tmp_path / f"worker{i}.log") for i, p in enumerate(ports)]
    logs = lambda: "\n".join(  # noqa: E731
        (tmp_path / f"worker{i}.log").read_text(errors="replace")[-2000:] for i in range(2))
    try:
        # both members in the group, the source partitions split between them
        deadline = time.monotonic() + 90
        while True:
            owned = [owned_source_partitions(p, s) for p in ports]
            if all(owned) and sum(owned) == len(SOURCE_TOPICS) * s.partitions:
                break
            assert time.monotonic() < deadline, f"owned {owned}\n{logs()}"
            time.sleep(0.5)

        async def go() -> bool:
            await produce(s, iter(scenario.lines))
            return await wait_drained(s, 150)

        assert asyncio.run(go()), logs()
        warnings = wait_for_warnings(s, scenario.expected)
        received = [total(scrape(p), "tocsin_events_received_total") for p in ports]
        assert all(w.poll() is None for w in workers), logs()
    finally:
        for w in workers:
            stop_process(w)

    # each worker took part, and together they saw every record exactly once
    assert all(r > 0 for r in received), received
    assert sum(received) == scenario.n_events

    assert_same_incidents(warnings, scenario.expected)
