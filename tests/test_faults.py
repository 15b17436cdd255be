"""Broker faults against a real worker, each on its own embedded broker (so pausing or
killing it touches no other test). Bounds are in the test names and docstrings."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker
from streams.demo import start_worker, stop_process, wait_drained
from streams.evaluate import read_replay, run_pipeline
from streams.regions import RegionRegistry
from streams.replay import produce
from streams.settings import TocsinSettings
from streams.simulate import SimConfig, simulate
from streams.topics import create_topics
from streams.watchdog import EXIT_BROKER_UNAVAILABLE
from tests.live import canon, scrape, total, wait_for_warnings

pytestmark = pytest.mark.integration


def settings_for(broker: EmbeddedBroker, tmp_path: Path, **kw: object) -> TocsinSettings:
    tag = uuid.uuid4().hex[:8]
    return TocsinSettings(broker=broker.bootstrap, app_id=f"tocsin-fault-{tag}",
                          topic_prefix=f"f{tag}.", data_dir=tmp_path / "data",
                          metrics_port=0, **kw)  # type: ignore[arg-type]


def test_broker_gone_longer_than_the_limit_exits_69_within_limit_plus_10s(
        tmp_path: Path) -> None:
    """Limit 4 s: the worker must exit by itself with EX_UNAVAILABLE (69) and say why,
    no later than 10 s after the limit has passed."""
    broker = EmbeddedBroker().start()
    try:
        s = settings_for(broker, tmp_path, broker_unavailable_limit_s=4.0)
        create_topics(s)
        log = tmp_path / "worker.log"
        worker = start_worker(s, log)
        try:
            deadline = time.monotonic() + 60
            while "rebalance complete" not in log.read_text(errors="replace"):
                assert worker.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.5)
            gone_at = time.monotonic()
            broker.stop()
            rc = worker.wait(4.0 + 10.0 + 5.0)
            took = time.monotonic() - gone_at
        finally:
            stop_process(worker)
    finally:
        broker.stop()
    text = log.read_text(errors="replace")
    assert rc == EXIT_BROKER_UNAVAILABLE, text[-2000:]
    # not before the limit (less one 1 s check interval: the last answer may precede the
    # stop by up to one interval), and within the stated bound
    assert 3.0 <= took <= 14.0, took
    assert "BrokerUnavailableError" in text and "TOCSIN_BROKER_UNAVAILABLE_LIMIT_S" in text


def test_broker_paused_20s_worker_recovers_without_restart_and_loses_nothing(
        tmp_path: Path, registry: RegionRegistry) -> None:
    """The broker is SIGSTOPped for 20 s in the middle of a seeded scenario (limit 120 s):
    the same worker process carries on afterwards and publishes exactly the warnings of an
    in-process replay (nothing lost, nothing doubled)."""
    sim = simulate(SimConfig(seed=16, days=4.5), registry)
    events = tmp_path / "events.jsonl"
    sim.write(events, tmp_path / "truth.json")
    lines = list(read_replay(events))
    half = len(lines) // 2
    broker = EmbeddedBroker().start()
    try:
        s = settings_for(broker, tmp_path)
        expected, _ = run_pipeline(iter(lines), s, registry)
        create_topics(s)
        log = tmp_path / "worker.log"
        worker = start_worker(s, log)
        try:
            asyncio.run(produce(s, iter(lines[:half])))
            time.sleep(3.0)
            assert broker.proc is not None
            os.kill(broker.proc.pid, signal.SIGSTOP)
            time.sleep(20.0)
            os.kill(broker.proc.pid, signal.SIGCONT)
            asyncio.run(produce(s, iter(lines[half:])))
            assert asyncio.run(wait_drained(s, 150)), log.read_text()[-3000:]
            warnings = wait_for_warnings(s, len(expected.warnings))
            assert worker.poll() is None, log.read_text()[-3000:]  # never restarted
        finally:
            stop_process(worker)
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            os.kill(broker.proc.pid, signal.SIGCONT)
        broker.stop()

    assert canon(warnings) == canon(expected.warnings)


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_burst_far_above_10x_is_all_processed_with_peak_memory_under_400mb(
        tmp_path: Path, registry: RegionRegistry) -> None:
    """Nine simulated days produced as fast as the producer can (about 10^5 times the
    real-time rate, far beyond a 10x burst) while the worker runs: every record is counted
    once, and the worker's peak resident memory stays under 400 MB (flow control holds
    the backlog in Kafka, not in the worker)."""
    from streams.broker import free_port

    sim = simulate(SimConfig(seed=23, days=9.0), registry)
    events = tmp_path / "events.jsonl"
    sim.write(events, tmp_path / "truth.json")
    broker = EmbeddedBroker().start()
    try:
        port = free_port()
        s = settings_for(broker, tmp_path).model_copy(
            update={"metrics_port": port, "metrics_addr": "127.0.0.1"})
        create_topics(s)
        log = tmp_path / "worker.log"
        worker = start_worker(s, log)
        try:
            stats = asyncio.run(produce(s, read_replay(events)))
            sent = sum(stats.sent.values()) + stats.bad_lines
            assert asyncio.run(wait_drained(s, 240)), log.read_text()[-3000:]
            received = total(scrape(port), "tocsin_events_received_total")
            peak = _peak_rss_mb(worker.pid)
            assert worker.poll() is None, log.read_text()[-3000:]
        finally:
            stop_process(worker)
    finally:
        broker.stop()
    assert received == sum(stats.sent.values()), (received, sent)
    print(f"burst: {received:.0f} records, peak RSS {peak:.0f} MB")
    assert peak < 400, f"peak RSS {peak:.0f} MB"
