"""A real Prometheus scrapes a real worker that processes a seeded scenario on the real
broker; every panel query of every dashboard must return data, and the live scrape must
pass ``promtool check metrics``. The same worker posts its warnings to a real Alertmanager
(deploy routes) and its annotations to a local server speaking Grafana's HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.build import all_dashboards, expand, panel_queries
from streams.core.regions import RegionRegistry
from streams.core.schemas import Warning
from streams.core.settings import TocsinSettings
from streams.core.topics import ENV, WARNINGS, create_topics, topic_name
from streams.core.uscc import check_char
from streams.evaluation.replay_score import read_replay
from streams.runtime.kafka_util import read_topic
from streams.tools.demo import start_worker, stop_process, wait_drained
from streams.tools.replay import produce, start_producer
from streams.tools.simulate import SimConfig, simulate
from tests.services import alertmanager, ensure_binary, free_port, prometheus
from tests.streams.test_alertmanager import local_config
from tests.streams.test_grafana import TOKEN, FakeGrafana, serve
from tests.streams.test_privacy import pii_corpus

pytestmark = pytest.mark.integration

#: a firm some of the personal-data complaints name (a valid unified social credit code)
NAMED_FIRM = "91110000000000777" + check_char("91110000000000777")


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
    am_config = tmp / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(local_config(free_port())))
    with alertmanager(am_config, tmp) as am, contextlib.contextmanager(serve)(
            FakeGrafana()) as grafana:
        s = TocsinSettings(
            broker=kafka_bootstrap, app_id=f"tocsin-obs-{tag}", topic_prefix=f"o{tag}.",
            data_dir=tmp / "data", metrics_port=port, metrics_addr="127.0.0.1",
            alertmanager_url=am, grafana_url=grafana.url, grafana_token=TOKEN,
            checkpoint_interval_s=1.0)
        yield from _live(s, tmp, port, registry, am, grafana)


def _live(s: TocsinSettings, tmp: Path, port: int, registry: RegionRegistry, am: str,
          grafana: FakeGrafana) -> Iterator[dict[str, Any]]:
    create_topics(s)
    sim = simulate(SimConfig(seed=16, days=4.5), registry)
    events = tmp / "events.jsonl"
    sim.write(events, tmp / "truth.json")
    corpus = pii_corpus(random.Random(5))
    with events.open("a") as f:  # complaints carrying personal data, mid-scenario
        for i, item in enumerate(corpus):
            f.write(json.dumps({
                "source": "complaint", "complaint_id": f"pii-{i}", "channel": "hotline",
                "category": "odor", "region": registry.ids()[i % len(registry.ids())],
                "text": f"call me on {corpus[(i * 7) % len(corpus)]} about {item} please",
                "reporter_phone": "13800138000" if i % 2 else "+86 139 0013 9000",
                "received_at": f"2026-03-0{4 + i % 2}T1{i % 10}:15:00Z",
                "department": "citizen_hotline",
                # some name a firm: entity risk and its topic see them too
                **({"entity_id": NAMED_FIRM} if i % 3 == 0 else {})}) + "\n")
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
                   "log": tmp / "worker.log", "am": am, "grafana": grafana,
                   "corpus": corpus}
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


def test_worker_notifies_alertmanager_and_annotates_grafana(live: dict[str, Any]) -> None:
    """Every open warning reaches the real Alertmanager, once per receiving department, with
    bounded labels; every warning version becomes one annotation on the overview."""
    warnings: list[Warning] = live["warnings"]
    latest: dict[str, Warning] = {}
    for w in warnings:
        latest[w.warning_id] = w
    open_ids = {wid for wid, w in latest.items() if w.status in ("new", "update")}
    deadline = time.monotonic() + 20
    while True:
        got = get_json(f"{live['am']}/api/v2/alerts?active=true&inhibited=true&silenced=true"
                       "&filter=" + urllib.parse.quote('alertname="TocsinWarning"'))
        ids = {a["labels"]["warning_id"] for a in got}
        if ids >= open_ids or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert open_ids and ids >= open_ids, (open_ids, ids)
    for a in got:
        assert set(a["labels"]) == {"alertname", "region", "scenario", "severity",
                                    "department", "warning_id"}
        assert a["labels"]["department"] in {"ecology", "market", "hotline"}
        assert a["annotations"]["runbook_url"].endswith("#" + a["labels"]["scenario"])
    grafana: FakeGrafana = live["grafana"]
    grafana.wait_for(lambda: len(grafana.posted("/api/annotations")) >= len(warnings), 20)
    posted = grafana.posted("/api/annotations")
    assert len(posted) == len(warnings)
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in posted)
    assert all("tocsin" in r.body["tags"] and r.body["dashboardUID"] == "tocsin-overview"
               for r in posted)
    sent = query(live["prom"], 'sum(tocsin_notifications_total{outcome="sent"})')
    assert sent and float(sent[0]["value"][1]) >= 1


def test_no_personal_data_in_any_output(live: dict[str, Any]) -> None:
    """Complaints carrying phone numbers, ID numbers, card numbers and e-mails went through
    the worker: none of them (as written, or as bare digits) appears in its log, its
    /metrics, Alertmanager's alerts, Grafana's annotations, or the warnings, CAP and
    anomalies topics. (The dead-letter topic, a quarantine of original bytes, is not an
    output to any audience.)"""
    from streams.core.topics import ANOMALIES, CONDITIONS, ENTITY_RISK, WARNINGS_CAP

    s: TocsinSettings = live["settings"]
    outputs = {
        "log": live["log"].read_text(errors="replace"),
        "metrics": live["scrape"].decode(),
        "alertmanager": json.dumps(get_json(f"{live['am']}/api/v2/alerts")),
        "grafana": json.dumps([r.body for r in live["grafana"].requests]),
    }
    for base in (WARNINGS, WARNINGS_CAP, ANOMALIES, ENTITY_RISK, CONDITIONS):
        outputs[base] = "\n".join(
            v.decode(errors="replace")
            for v in asyncio.run(read_topic(s, topic_name(s, base))))
    assert outputs["alertmanager"] != "[]" and outputs[WARNINGS]
    # the personal-data complaints were accepted and processed, not dead-lettered
    from streams.core.topics import DEADLETTER

    dead = "\n".join(v.decode(errors="replace")
                     for v in asyncio.run(read_topic(s, topic_name(s, DEADLETTER))))
    assert "pii-" not in dead
    valid = query(live["prom"], 'sum(tocsin_events_valid_total{source="complaint"})')
    assert float(valid[0]["value"][1]) >= len(live["corpus"])
    needles = set()
    for item in live["corpus"] + ["13800138000", "+86 139 0013 9000"]:
        needles.add(item)
        digits = "".join(ch for ch in item if ch.isdigit())
        if len(digits) >= 7:
            needles.add(digits)
    found = [(name, n) for name, text in outputs.items() for n in needles if n in text]
    assert not found, found[:10]
