"""TLS to the broker: the worker's TLS settings (TOCSIN_SECURITY_PROTOCOL=SSL, a CA file,
hostname check) against a real Kafka protocol broker behind a TLS-terminating proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streams.core.errors import BrokerError, BrokerStartError
from streams.core.regions import RegionRegistry
from streams.core.settings import TocsinSettings
from streams.core.topics import create_topics
from streams.evaluation.replay_score import read_replay, run_pipeline
from streams.tools.broker import EmbeddedBroker, free_port
from streams.tools.demo import start_worker, stop_process, wait_drained
from streams.tools.replay import produce
from streams.tools.simulate import SimConfig, simulate
from tests.live import assert_same_incidents, wait_for_warnings
from tests.tls_proxy import make_cert, tls_proxy

pytestmark = pytest.mark.integration


def test_embedded_broker_says_it_has_no_tls_listener(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    with pytest.raises(BrokerStartError, match="no TLS listener"):
        EmbeddedBroker(cert=cert, key=key).start()


def test_worker_over_tls_processes_a_scenario(tmp_path: Path, registry: RegionRegistry,
                                              ) -> None:
    cert, key = make_cert(tmp_path)
    tls_port = free_port()
    broker = EmbeddedBroker(advertised_port=tls_port).start()
    try:
        with tls_proxy(tls_port, broker.port, cert, key):
            s = TocsinSettings(broker=f"127.0.0.1:{tls_port}", security_protocol="SSL",
                               ssl_cafile=cert, app_id="tocsin-tls", topic_prefix="tls.",
                               data_dir=tmp_path / "data", metrics_port=0,
                               checkpoint_interval_s=1.0)
            # a client that does not trust the certificate is refused
            untrusting = s.model_copy(update={"ssl_cafile": None})
            with pytest.raises(BrokerError):
                asyncio.run(_probe(untrusting))
            create_topics(s)
            sim = simulate(SimConfig(seed=16, days=4.0), registry)
            events = tmp_path / "events.jsonl"
            sim.write(events, tmp_path / "truth.json")
            expected, _ = run_pipeline(read_replay(events), s, registry)
            assert expected.warnings
            log = tmp_path / "worker.log"
            worker = start_worker(s, log)
            try:
                asyncio.run(produce(s, read_replay(events)))
                assert asyncio.run(wait_drained(s, 150)), log.read_text()[-3000:]
                got = wait_for_warnings(s, expected.published)
                assert worker.poll() is None, log.read_text()[-3000:]
            finally:
                stop_process(worker)
    finally:
        broker.stop()
    assert_same_incidents(got, expected.published)


async def _probe(s: TocsinSettings) -> None:
    from streams.tools.replay import start_producer

    producer = await start_producer(s, patient=False, request_timeout_ms=3000)
    await producer.stop()
