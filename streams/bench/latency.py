"""``tocsin bench``'s latency figures: events produced at a steady rate to a worker, each
warning and anomaly timed from the production of the newest event it covers to a consumer."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streams.bench.common import BenchError, bench_settings, metric_sum
from streams.core.settings import TocsinSettings
from streams.core.topics import ANOMALIES, SOURCE_TOPICS, WARNINGS, create_topics, topic_name
from streams.evaluation.replay_score import ReplayLine
from streams.tools.broker import free_port


async def latency(bootstrap: str, partitions: int, workdir: Path, rate: float,
                  lines: list[ReplayLine], seconds: float) -> dict[str, float | None]:
    """Produce ``lines`` at ``rate`` events/s to a worker and time each warning and anomaly
    from the production of the newest event it covers to its arrival at a consumer."""
    from streams.tools.demo import start_worker, stop_process
    from streams.tools.replay import start_producer

    port = free_port()
    s = bench_settings(bootstrap, partitions, workdir, metrics_port=port, metrics_addr="127.0.0.1")
    create_topics(s)
    worker = start_worker(s, workdir / "latency-worker.log")
    produced: dict[str, float] = {}
    samples: dict[str, list[float]] = {"warning": [], "anomaly": []}
    stop = asyncio.Event()
    try:
        producer = await start_producer(s, linger_ms=2)
        topics = {src: topic_name(s, t) for src, t in SOURCE_TOPICS.items()}
        # warm-up: the first records wait for the group to join; time only what follows
        first = lines[: max(1, partitions * 4)]
        for ln in first:
            assert ln.source is not None
            await producer.send_and_wait(topics[ln.source], ln.raw, key=ln.key)
        await _wait_ingested(port, worker, workdir, len(first))
        reader = asyncio.create_task(_consume_latencies(s, stop, produced, samples))
        await _produce_paced(producer, topics, lines[len(first):], rate, seconds, produced)
        await producer.flush()
        await producer.stop()
        await asyncio.sleep(3.0)
        stop.set()
        await reader
    finally:
        stop_process(worker)
    if os.environ.get("TOCSIN_BENCH_DEBUG"):
        print({k: [round(x, 2) for x in sorted(v)] for k, v in samples.items()},
              file=sys.stderr)
    return _latency_figures(rate, samples)


def _event_id(raw: bytes) -> str | None:
    """The id of a source record (reading, complaint or market event)."""
    d = json.loads(raw)
    for k in ("reading_id", "complaint_id", "event_id"):
        if k in d:
            return str(d[k])
    return None


async def _produce_paced(producer: Any, topics: dict[str, str], lines: list[ReplayLine],
                         rate: float, seconds: float, produced: dict[str, float]) -> None:
    """Send ``lines`` at ``rate`` events/s for ``seconds`` (100 sends a second), noting in
    ``produced`` when each event went out."""
    t0 = time.perf_counter()
    total = min(len(lines), int(rate * seconds))
    step = max(1, int(rate / 100))  # 100 sends per second, paced
    for i in range(0, total, step):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        for ln in lines[i:i + step]:
            eid = _event_id(ln.raw)
            if eid is not None:
                produced[eid] = now
            assert ln.source is not None
            await producer.send(topics[ln.source], ln.raw, key=ln.key)


async def _consume_latencies(s: TocsinSettings, stop: asyncio.Event,
                             produced: dict[str, float],
                             samples: dict[str, list[float]]) -> None:
    """Until ``stop``: for each warning and anomaly, the time from the production of the
    newest event it covers to now, into ``samples`` by kind."""
    from aiokafka import AIOKafkaConsumer

    from streams.runtime.kafka_util import assign_topics

    consumer = AIOKafkaConsumer(**s.kafka_client_kwargs(), enable_auto_commit=False,
                                fetch_max_wait_ms=20)
    await consumer.start()
    try:
        await assign_topics(consumer, [topic_name(s, WARNINGS), topic_name(s, ANOMALIES)])
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for tp, msgs in batches.items():
                kind = "warning" if tp.topic.endswith(WARNINGS) else "anomaly"
                for m in msgs:
                    ids = _covered_events(kind, json.loads(m.value))
                    if ids is None:
                        continue
                    t = max((produced[i] for i in ids if i in produced), default=None)
                    if t is not None:
                        samples[kind].append(now - t)
    finally:
        await consumer.stop()


def _covered_events(kind: str, d: dict[str, Any]) -> list[str] | None:
    """The event ids a new or updated warning, or a direct anomaly, covers; ``None`` for
    what is not timed (a warning resolved by time passing, an anomaly relayed ``via``)."""
    if kind == "warning":
        if d.get("status") not in ("new", "update"):
            return None  # resolved by time passing, not by an event
        ids: list[str] = (d.get("audit") or {}).get("event_ids") or []
        return ids
    if d.get("record") == "anomaly" and not d.get("via"):
        anomaly_ids: list[str] = d.get("event_ids") or []
        return anomaly_ids
    return None


def _latency_figures(rate: float, samples: dict[str, list[float]]) -> dict[str, float | None]:
    """Sample counts, medians and 99th percentiles of each kind."""
    out: dict[str, float | None] = {"latency_rate_eps": rate}
    for kind, key in (("warning", ""), ("anomaly", "anomaly_")):
        xs = sorted(samples[kind])
        out[f"{key}latency_samples"] = len(xs)
        # null when nothing of that kind completed during the run (a short run may see no
        # warning: the figure is then unknown, not zero)
        out[f"{key}p50_latency_s"] = statistics.median(xs) if xs else None
        out[f"{key}p99_latency_s"] = xs[min(len(xs) - 1, int(0.99 * len(xs)))] if xs else None
    return out


async def _wait_ingested(port: int, worker: subprocess.Popen[bytes], workdir: Path, n: int,
                         timeout: float = 60.0) -> None:
    """Wait until the worker has ingested ``n`` records (it has joined the group)."""
    log = workdir / "latency-worker.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise BenchError("latency worker exited: " + log.read_text()[-1500:])
        try:
            if metric_sum(port, "tocsin_events_received_total") >= n:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise BenchError("latency worker did not start consuming: " + log.read_text()[-1500:])
