"""End to end on a real broker: a seeded scenario through a real worker process."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from detectors.signals.prewarning import SCENARIO as PREWARNING_SCENARIO
from streams.core.regions import RegionRegistry
from streams.core.schemas import DeadLetter
from streams.core.settings import TocsinSettings
from streams.core.topics import COMPLAINTS, DEADLETTER, ENV, create_topics, topic_name
from streams.evaluation.replay_score import load_truth, score
from streams.pipeline.entities import ENTITY_SCENARIO
from streams.runtime.kafka_util import read_topic
from streams.tools.demo import start_worker, stop_process, wait_drained
from streams.tools.replay import produce, start_producer
from tests.live import Scenario, assert_same_incidents, wait_for_warnings

pytestmark = pytest.mark.integration

GARBAGE = [b"\xff\xfe not utf-8", b'{"reading_id": "trunc', b"[]"]


def test_create_topics_is_idempotent(isolated_settings: TocsinSettings) -> None:
    first = create_topics(isolated_settings)
    assert set(first.values()) == {"created"}
    assert set(create_topics(isolated_settings).values()) == {"exists"}


def test_scenario_through_real_worker(
    isolated_settings: TocsinSettings, registry: RegionRegistry, scenario: Scenario,
    tmp_path: Path
) -> None:
    s = isolated_settings
    create_topics(s)

    worker = start_worker(s, tmp_path / "worker.log")
    try:
        async def go() -> bool:
            stats = await produce(s, iter(scenario.lines))
            assert sum(stats.sent.values()) == scenario.n_events
            producer = await start_producer(s)
            try:
                for g in GARBAGE:
                    await producer.send_and_wait(topic_name(s, ENV), g, key=b"harbour")
                await producer.send_and_wait(topic_name(s, COMPLAINTS), b"{}", key=b"x")
            finally:
                await producer.stop()
            return await wait_drained(s, 150)

        drained = asyncio.run(go())
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert worker.poll() is None, log[-3000:]
        assert drained, log[-3000:]
        # the last anomalies leave the reorder buffer once input has been idle for a while
        warnings = wait_for_warnings(s, scenario.expected, extra_s=20)
        dead = [DeadLetter.model_validate_json(v)
                for v in asyncio.run(read_topic(s, topic_name(s, DEADLETTER)))]
    finally:
        stop_process(worker)

    # live equals replay (the contract in docs/architecture.md): the same incidents, each
    # with the same final version and evidence, as the in-process run over the same file
    assert warnings, log[-3000:]
    assert_same_incidents(warnings, scenario.expected)
    # incidents fuse departments; a pre-warning or an entity warning is one department's
    single = {PREWARNING_SCENARIO, ENTITY_SCENARIO}
    assert all(len(w.departments) >= 2 for w in warnings if w.scenario not in single)
    assert len({w.warning_id for w in warnings}) == len([w for w in warnings if w.version == 1])
    assert len({(w.warning_id, w.version) for w in warnings}) == len(warnings)
    truth = load_truth(scenario.truth)
    live_hits = {p["id"] for p in score(warnings, truth, registry)["per_incident"]
                 if p["detected"] and p["cross_department"]}
    assert live_hits, "the live worker found none of the injected incidents"
    # every malformed record is in the dead-letter topic with its origin and reason
    assert len(dead) == scenario.n_malformed + len(GARBAGE) + 1
    origins = {(d.source_topic, d.partition, d.offset) for d in dead}
    assert len(origins) == len(dead)
    assert all(d.reason for d in dead)
    assert {d.error_type for d in dead} >= {"encoding", "json", "not_an_object", "schema"}
    raw_bytes = {__import__("base64").b64decode(d.original_b64) for d in dead}
    assert set(GARBAGE) <= raw_bytes


def test_cli_schema_and_topics_commands(isolated_settings: TocsinSettings) -> None:
    import os
    import sys

    env = {**os.environ, "TOCSIN_BROKER": isolated_settings.broker,
           "TOCSIN_TOPIC_PREFIX": isolated_settings.topic_prefix}
    out = subprocess.run([sys.executable, "-m", "streams", "schema"], capture_output=True,
                         text=True, env=env, check=True)
    assert "tocsin.warnings" in json.loads(out.stdout)
    out = subprocess.run([sys.executable, "-m", "streams", "topics", "create"],
                         capture_output=True, text=True, env=env, check=True)
    from streams.core.topics import CATALOGUE

    assert out.stdout.count("created") == len(CATALOGUE) == 12
    assert f"{isolated_settings.topic_prefix}tocsin.feedback" in out.stdout
    assert f"{isolated_settings.topic_prefix}tocsin.entities.risk" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "streams", "schema", "--topic", "nope"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "no schema for topic" in bad.stderr
