"""``tocsin bench``: the engine's ceiling, the machine's limit and Tocsin, in one run.

One broker (``KAFKA_BOOTSTRAP_SERVERS`` or the embedded Tansu), one set of pre-produced
messages (a simulated realistic mix in the three source topics), then:

* ``raw_limit_eps``: an aiokafka ``getmany`` loop that only decodes JSON;
* ``faust_default_eps``: a faust agent that only iterates, default settings;
* ``faust_variants``: the same agent with one setting changed at a time (each measured);
* ``faust_tuned_eps``: the agent with the settings that helped, together;
* ``pipeline_eps``: the full worker (ingest, detect, correlate, publish);
* ``p50_latency_s``/``p99_latency_s``: production of an event to the warning it completes,
  with events produced at half of ``pipeline_eps`` (``anomaly_p50/p99_latency_s`` likewise for
  anomalies, which are far more numerous; ``streams.bench.latency``);
* ``rss_mb``/``bytes_per_series`` at 10k, 100k and 1M tracked series (``streams.bench.memory``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.bench.common import BenchError, bench_settings, broker, metric_sum
from streams.bench.latency import latency
from streams.core.regions import RegionRegistry
from streams.core.settings import TocsinSettings
from streams.core.topics import SOURCE_TOPICS, create_topics, topic_name
from streams.evaluation.replay_score import ReplayLine, read_replay
from streams.tools.broker import free_port

#: settings of the tuned no-op agent (each also measured on its own)
TUNED: dict[str, Any] = {"uvloop": True, "noop_monitor": True, "raw": True, "batch": 1000,
                         "batch_drain": True, "poll_timeout_s": 0.05,
                         "fetch_max_wait_ms": 100}
#: one change at a time against the default agent
VARIANTS: dict[str, dict[str, Any]] = {
    "uvloop": {"uvloop": True},
    "noop_monitor": {"noop_monitor": True},
    "no_cython": {"cython": False},
    "raw_serializer": {"raw": True},
    "raw_batch_decode": {"raw": True, "batch": 1000},
    "commit_interval_10s": {"commit_interval": 10.0},
    "max_poll_records_5000": {"max_poll_records": 5000},
    "buffer_16384": {"buffer": 16384},
    "fetch_wait_100ms": {"fetch_max_wait_ms": 100},
    "batch_drain": {"batch_drain": True},
    "batch_drain_poll_50ms": {"batch_drain": True, "poll_timeout_s": 0.05},
}


@dataclass
class BenchConfig:
    events: int = 120_000
    partitions: int = 4
    seed: int = 11
    latency_s: float = 20.0
    series: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    variants: bool = True
    log: Callable[[str], None] = field(default=lambda msg: None)


def _lines(seed: int, events: int, workdir: Path, registry: RegionRegistry) -> list[ReplayLine]:
    """``events`` valid source records of a simulated realistic mix, in event-time order."""
    from streams.tools.simulate import SimConfig, simulate

    days = max(SimConfig().warmup_days + 2.0, events / 5000.0 * 1.05)
    sim = simulate(SimConfig(seed=seed, days=days), registry)
    path = workdir / f"events-{seed}.jsonl"
    sim.write(path, None)
    out = []
    for ln in read_replay(path):
        if ln.source is None:
            continue
        try:
            if not isinstance(json.loads(ln.raw), dict):
                continue
        except ValueError:
            continue
        out.append(ln)
        if len(out) >= events:
            break
    return out


async def _produce(settings: TocsinSettings, lines: list[ReplayLine]) -> None:
    from streams.tools.replay import produce

    stats = await produce(settings, lines)
    if sum(stats.sent.values()) != len(lines):
        raise BenchError(f"produced {stats.sent} of {len(lines)} records")


# -- the machine's limit ------------------------------------------------------------------------
async def raw_limit(settings: TocsinSettings, n: int) -> float:
    """Events/s of an aiokafka ``getmany`` loop that decodes each value (JSON)."""
    from aiokafka import AIOKafkaConsumer

    from streams.runtime.kafka_util import assign_topics

    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        await assign_topics(consumer, [topic_name(settings, b) for b in SOURCE_TOPICS.values()])
        seen, started = 0, 0.0
        loads = json.loads
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if not started and batches:
                started = time.perf_counter()
            for msgs in batches.values():
                for m in msgs:
                    loads(m.value)
                seen += sum(len(m) for m in batches.values())
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# -- the engine's ceiling -----------------------------------------------------------------------
def faust_noop(settings: TocsinSettings, n: int, options: dict[str, Any],
               timeout: float = 180.0) -> float:
    """Events/s of a faust agent that only iterates (a fresh consumer group per run)."""
    cfg = {
        "broker": settings.faust_broker, "app_id": f"bench-noop-{uuid.uuid4().hex[:8]}",
        "topics": [topic_name(settings, t) for t in SOURCE_TOPICS.values()], "n": n,
        "partitions": settings.partitions,
        "datadir": str(settings.data_dir.parent / f"noop-{uuid.uuid4().hex[:6]}"), **options,
    }
    proc = subprocess.run([sys.executable, "-m", "streams.bench.agent", json.dumps(cfg)],
                          capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if "{" in line:  # (faust's terminal control codes may precede it)
            res = json.loads(line[line.index("{"):])
            return float(res["n"]) / float(res["seconds"])
    raise BenchError(f"no-op agent {options} failed (exit {proc.returncode}): "
                     f"{proc.stderr[-1500:]}")


# -- Tocsin ------------------------------------------------------------------------------------
def pipeline(settings: TocsinSettings, n: int, workdir: Path, timeout: float = 300.0
             ) -> dict[str, float]:
    """Events/s of the full worker over the pre-produced records (first to last ingested)."""
    from streams.core.settings import TocsinSettings as S
    from streams.tools.demo import start_worker, stop_process

    port = free_port()
    s = S(**{**settings.model_dump(), "app_id": f"tocsin-bench-{uuid.uuid4().hex[:8]}",
             "metrics_port": port, "metrics_addr": "127.0.0.1"})
    worker = start_worker(s, workdir / "pipeline-worker.log")
    try:
        deadline = time.monotonic() + timeout
        first = last = 0.0
        seen = seen0 = 0.0
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise BenchError("the worker exited: "
                                 + (workdir / "pipeline-worker.log").read_text()[-1500:])
            try:
                seen = metric_sum(port, "tocsin_events_received_total")
            except OSError:
                seen = 0.0
            now = time.perf_counter()
            if seen > 0 and not first:
                first, seen0 = now, seen  # rate from here: (n - seen0) / elapsed
            if seen >= n:
                last = now
                break
            time.sleep(0.02 if not first else 0.25)  # scrapes cost the worker CPU
        if not last or last == first:
            raise BenchError(f"the worker ingested {seen:.0f} of {n} records in {timeout} s")
        return {"pipeline_eps": (n - seen0) / (last - first),
                "pipeline_anomalies": metric_sum(port, "tocsin_anomalies_total")}
    finally:
        stop_process(worker)


def memory(series: tuple[int, ...]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for n in series:
        proc = subprocess.run([sys.executable, "-m", "streams.bench.memory", str(n)],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode:
            raise BenchError(f"memory at {n} series failed: {proc.stderr[-1500:]}")
        out[str(n)] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def run(cfg: BenchConfig) -> dict[str, Any]:
    """Every figure, measured in this order on one broker."""
    t_start = time.monotonic()
    registry = RegionRegistry.from_csv(TocsinSettings().region_registry)
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, broker() as bootstrap:
        workdir = Path(tmp)
        s = bench_settings(bootstrap, cfg.partitions, workdir)
        create_topics(s)
        cfg.log(f"simulating and producing {cfg.events} records")
        lines = _lines(cfg.seed, cfg.events, workdir, registry)
        n = len(lines)
        asyncio.run(_produce(s, lines))
        res["events"] = n
        cfg.log("raw aiokafka getmany loop")
        res["raw_limit_eps"] = asyncio.run(raw_limit(s, n))
        cfg.log("faust no-op agent, default settings")
        res["faust_default_eps"] = faust_noop(s, n, {})
        if cfg.variants:
            res["faust_variants"] = {}
            for name, opts in VARIANTS.items():
                cfg.log(f"faust no-op agent: {name}")
                res["faust_variants"][name] = faust_noop(s, n, opts)
        cfg.log(f"faust no-op agent, tuned {TUNED}")
        res["faust_tuned_eps"] = faust_noop(s, n, TUNED)
        res["faust_tuned_settings"] = TUNED
        cfg.log("the full Tocsin worker")
        res.update(pipeline(s, n, workdir))
        res["pipeline_vs_tuned"] = res["pipeline_eps"] / res["faust_tuned_eps"]
        res["tuned_vs_default"] = res["faust_tuned_eps"] / res["faust_default_eps"]
        rate = res["pipeline_eps"] / 2
        cfg.log(f"latency at {rate:.0f} events/s for {cfg.latency_s:.0f} s")
        more = _lines(cfg.seed + 1, int(rate * cfg.latency_s) + 10, workdir, registry)
        res.update(asyncio.run(latency(bootstrap, cfg.partitions, workdir, rate, more,
                                       cfg.latency_s)))
    if cfg.series:
        cfg.log(f"memory at {', '.join(str(k) for k in cfg.series)} tracked series")
        mem = memory(cfg.series)
        res["rss_mb"] = {k: v["rss_mb"] for k, v in mem.items()}
        res["bytes_per_series"] = {k: v["bytes_per_series"] for k, v in mem.items()}
    res["seconds"] = time.monotonic() - t_start
    return res
