"""A real Prometheus scrapes a real worker that processes a seeded scenario on the real
broker; every panel query of every dashboard must return data, and the live scrape must
pass ``promtool check metrics``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from dashboards.build import all_dashboards, expand, panel_queries

from streams.demo import start_worker, stop_process, wait_drained
from streams.evaluate import read_replay
from streams.kafka_util import read_topic
from streams.regions import RegionRegistry
from streams.replay import produce, start_producer
from streams.schemas import Warning
from streams.settings import TocsinSettings
from streams.simulate import SimConfig, simulate
from streams.topics import ENV, WARNINGS, create_topics, topic_name
from tests.services import ensure_binary, free_port, prometheus

pytestmark = pytest.mark.integration


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def query(base: str, expr: str) -> list[Any]:
    body = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert body["status"] == "success", (expr, body)
    result = body["data"]["result"]
    return result if isinstance(result, list) else [result]


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
         registry: RegionRegistry) -> Iterator[dict[str, Any]]:
    """A worker that has processed a seeded scenario, scraped by a real Prometheus."""
    import uuid

    tmp = tmp_path_factory.mktemp("observability")
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    s = TocsinSettings(broker=kafka_bootstrap, app_id=f"tocsin-obs-{tag}",
                       topic_prefix=f"o{tag}.", data_dir=tmp / "data", metrics_port=port,
                       metrics_addr="127.0.0.1")
    create_topics(s)
    sim = simulate(SimConfig(seed=16, days=4.5), registry)
    events = tmp / "events.jsonl"
    sim.write(events, tmp / "truth.json")
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: tocsin\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n")
    worker = start_worker(s, tmp / "worker.log")
    try:
        with prometheus(config, tmp) as prom:
            async def go() -> bool:
                await produce(s, read_replay(events))
                producer = await start_producer(s)
                try:
                    await producer.send_and_wait(topic_name(s, ENV), b"\xff not json",
                                                 key=b"harbour")
                finally:
                    await producer.stop()
                return await wait_drained(s, 150)

            assert asyncio.run(go()), (tmp / "worker.log").read_text()[-3000:]
            deadline = time.monotonic() + s.reorder_idle_s + 30
            warnings: list[Warning] = []
            while time.monotonic() < deadline:
                warnings = [Warning.model_validate_json(v)
                            for v in asyncio.run(read_topic(s, topic_name(s, WARNINGS)))]
                if warnings and any(w.status == "new" for w in warnings):
                    break
                time.sleep(1.0)
            # let Prometheus take a few scrapes of the final state (rates need two)
            time.sleep(5.0)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                scrape = r.read()
            yield {"prom": prom, "warnings": warnings, "scrape": scrape, "settings": s,
                   "log": tmp / "worker.log"}
    finally:
        stop_process(worker)


def test_every_dashboard_panel_query_returns_data(live: dict[str, Any]) -> None:
    warnings: list[Warning] = live["warnings"]
    assert warnings, live["log"].read_text()[-3000:]
    region = warnings[0].region
    empty: list[str] = []
    checked = 0
    for uid, dash in all_dashboards().items():
        for title, expr in panel_queries(dash):
            q = expand(expr, {"region": region})
            checked += 1
            if not query(live["prom"], q):
                empty.append(f"{uid} / {title}: {q}")
    assert checked >= 15
    assert not empty, "panel queries without data:\n" + "\n".join(empty)


def test_live_scrape_passes_promtool_check_metrics(live: dict[str, Any]) -> None:
    promtool = ensure_binary("promtool")
    proc = subprocess.run([promtool, "check", "metrics"], input=live["scrape"],
                          capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert b"tocsin_events_received_total" in live["scrape"]


def test_metrics_agree_with_the_topics(live: dict[str, Any]) -> None:
    """The counters a duty officer sees match what the worker actually published."""
    prom = live["prom"]
    warnings: list[Warning] = live["warnings"]
    emitted = sum(float(r["value"][1])
                  for r in query(prom, "sum(tocsin_warnings_emitted_total)"))
    assert emitted == len(warnings)
    opened = {w.warning_id for w in warnings if w.status in ("new", "update")}
    closed = {w.warning_id for w in warnings if w.status in ("resolved", "cancelled")}
    active = sum(float(r["value"][1]) for r in query(prom, "sum(tocsin_warnings_active)"))
    assert active == len(opened - closed)
    dead = query(prom, 'sum(tocsin_events_dead_lettered_total{source="env"})')
    assert dead and float(dead[0]["value"][1]) >= 1
    up = query(prom, 'up{job="tocsin"}')
    assert up and up[0]["value"][1] == "1"
