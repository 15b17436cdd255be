"""Issue 19, done when: one live worker on the embedded broker publishes a pre-warning
before the reading crosses its regulatory limit, an entity-risk warning and a station-fault
notice; the two warnings are valid CAP 1.2; all three reach the right receivers of a real
Alertmanager by its deploy routes; and the dashboards' own queries show them on a real
Prometheus scraping the worker."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from dashboards.build import all_dashboards, panel_queries
from streams.core.schemas import Warning
from streams.core.settings import TocsinSettings
from streams.core.topics import WARNINGS, WARNINGS_CAP, create_topics, topic_name
from streams.core.uscc import check_char
from streams.evaluation.replay_score import read_replay
from streams.publish.alertmanager import label_value
from streams.publish.cap_check import check_alerts
from streams.runtime.kafka_util import read_topic
from streams.tools.demo import start_worker, stop_process, wait_drained
from streams.tools.replay import produce
from tests.services import alertmanager, free_port, prometheus
from tests.streams.test_alertmanager import local_config

pytestmark = pytest.mark.integration

CAP_XSD = Path(__file__).resolve().parents[2].parent / "shared" / "cap" / "CAP-v1.2.xsd"
T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
LIMIT = 30.0  # water_cod, GB 3838-2002 (the signal catalogue)
RISE_FROM = 192  # readings flat for two days, then the slow rise
SILENT_FROM = 150  # the second station stops reporting here


def code(i: int) -> str:
    body = f"91110000{i:09d}"
    return body + check_char(body)


RISKY = code(777)


def cod(i: int) -> float:
    return 18.0 + 0.3 * math.sin(i / 7.0) + max(0, i - RISE_FROM) * 0.5


FIRST_PAST = next(i for i in range(1000) if cod(i) > LIMIT)


def env_line(i: int, sensor: str, metric: str, unit: str, value: float) -> dict[str, Any]:
    at = datetime.fromtimestamp(T0 + 900 * i, UTC).isoformat()
    return {"source": "env", "reading_id": f"{sensor}-{i}", "sensor_id": sensor,
            "metric": metric, "value": round(value, 3), "unit": unit, "region": "harbour",
            "observed_at": at, "department": "ecology_bureau"}


def market_line(n: int, kind: str, entity: str, t: float, passed: bool | None) -> dict[str, Any]:
    line = {"source": "market", "event_id": f"m-{n}", "kind": kind, "entity_id": entity,
            "region": "harbour", "department": "market_regulation",
            "occurred_at": datetime.fromtimestamp(t, UTC).isoformat()}
    return line if passed is None else {**line, "passed": passed}


def before_crossing() -> list[dict[str, Any]]:
    """Everything up to the last reading under the limit (its crossing comes later)."""
    lines = []
    for i in range(FIRST_PAST):
        lines.append(env_line(i, "WQ-harbour-9", "water_cod", "mg/L", cod(i)))
        if i < SILENT_FROM:
            lines.append(env_line(i, "AQ-harbour-9", "pm25", "ug/m3", 35 + 3 * math.sin(i)))
    for i in range(200):  # a population of inspected firms, one in ten failing
        lines.append(market_line(i, "inspection", code(i), T0 + 600 * i, i % 10 != 0))
    t = T0 + 600 * 200
    for k, kind in enumerate(["license_violation", "recall", "license_violation", "recall"]):
        lines.append(market_line(1000 + k, kind, RISKY, t + 2 * 86400.0 * k, None))
    return lines


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def query(base: str, expr: str) -> list[dict[str, Any]]:
    body = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


class Webhooks:
    """The receivers of the deploy Alertmanager config, served locally: alerts by receiver."""

    def __init__(self) -> None:
        self.port = free_port()
        self.got: dict[str, list[dict[str, Any]]] = {}

    async def _take(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.got.setdefault(request.match_info["receiver"], []).extend(body["alerts"])
        return web.Response()

    async def serve(self, stop: asyncio.Event) -> None:
        app = web.Application()
        app.router.add_post("/{receiver}", self._take)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        await stop.wait()
        await runner.cleanup()

    def firing(self, receiver: str, **labels: str) -> bool:
        return any(a["status"] == "firing" and all(a["labels"].get(k) == v
                                                   for k, v in labels.items())
                   for a in self.got.get(receiver, []))


def warnings_of(s: TocsinSettings) -> list[Warning]:
    return [Warning.model_validate_json(v)
            for v in asyncio.run(read_topic(s, topic_name(s, WARNINGS)))]


def wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("portfolio")
    tag = uuid.uuid4().hex[:8]
    hooks = Webhooks()
    am_config = tmp / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(local_config(hooks.port)))
    port = free_port()
    prom_config = tmp / "prometheus.yml"
    prom_config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n  - job_name: tocsin\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    server = threading.Thread(target=lambda: loop.run_until_complete(hooks.serve(stop)),
                              daemon=True)
    server.start()
    with alertmanager(am_config, tmp) as am, prometheus(prom_config, tmp) as prom:
        s = TocsinSettings(
            broker=kafka_bootstrap, app_id=f"tocsin-pf-{tag}", topic_prefix=f"p{tag}.",
            data_dir=tmp / "data", metrics_port=port, metrics_addr="127.0.0.1",
            alertmanager_url=am, checkpoint_interval_s=1.0)
        create_topics(s)
        worker = start_worker(s, tmp / "worker.log")
        try:
            yield {"s": s, "hooks": hooks, "prom": prom, "am": am, "tmp": tmp,
                   "log": tmp / "worker.log", "worker": worker}
        finally:
            stop_process(worker)
            loop.call_soon_threadsafe(stop.set)
            server.join(10)


def feed(s: TocsinSettings, lines: list[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    asyncio.run(produce(s, read_replay(path)))
    assert asyncio.run(wait_drained(s, 150))


def test_pre_warning_entity_risk_and_station_notice_end_to_end(run: dict[str, Any]) -> None:
    s: TocsinSettings = run["s"]
    hooks: Webhooks = run["hooks"]
    log = run["log"]
    feed(s, before_crossing(), run["tmp"] / "before.jsonl")

    def scenario(name: str) -> list[Warning]:
        return [w for w in warnings_of(s) if w.scenario == name]

    # a pre-warning is out while every reading so far is under the limit
    wait(lambda: bool(scenario("limit_forecast")), 60, "a pre-warning\n" + log.read_text()[-3000:])
    pre = scenario("limit_forecast")[0]
    assert pre.status == "new" and pre.urgency == "Expected" and pre.region == "harbour"
    assert "WQ-harbour-9" in pre.explanation
    wait(lambda: bool(scenario("entity_risk")), 60, "an entity-risk warning")
    ent = scenario("entity_risk")[0]
    assert ent.status == "new" and RISKY in " ".join(e.signal for e in ent.evidence)

    # both are valid CAP 1.2 on the CAP topic
    caps = asyncio.run(read_topic(s, topic_name(s, WARNINGS_CAP)))
    mine = [c for c in caps if pre.warning_id.encode() in c or ent.warning_id.encode() in c]
    assert len(mine) >= 2
    checked = check_alerts(mine, CAP_XSD)
    assert checked.ok, checked.problems

    # routed by the real Alertmanager: the ecology bureau, the market regulator, operators
    wait(lambda: hooks.firing("ecology-bureau", scenario="limit_forecast"), 30,
         f"the pre-warning at the ecology bureau: {hooks.got}")
    wait(lambda: hooks.firing("market-regulator", scenario="entity_risk"), 30,
         f"the entity warning at the market regulator: {hooks.got}")
    wait(lambda: hooks.firing("operators", alertname="TocsinStationFault",
                              station=label_value("AQ-harbour-9")), 40,
         f"the station notice at the operators: {hooks.got}")

    # the dashboards' own queries show them on a real Prometheus
    wanted = {"Riskiest market entities": ("entity", RISKY),
              "Stations needing attention": ("station", "AQ-harbour-9")}
    panels = {title: expr for dash in all_dashboards().values()
              for title, expr in panel_queries(dash) if title in wanted}
    assert set(panels) == set(wanted)

    def shown() -> bool:
        return all(any(r["metric"].get(label) == value for r in query(run["prom"], panels[t]))
                   for t, (label, value) in wanted.items())
    wait(shown, 40, "the entity and the station on the dashboards")
    open_now = query(run["prom"], "sum(tocsin_warnings_active)")  # the overview's count
    assert open_now and float(open_now[0]["value"][1]) >= 2

    # only now the reading crosses the limit: the pre-warning came before it
    after = [env_line(i, "WQ-harbour-9", "water_cod", "mg/L", cod(i))
             for i in range(FIRST_PAST, FIRST_PAST + 8)]
    feed(s, after, run["tmp"] / "after.jsonl")
    assert cod(FIRST_PAST) > LIMIT and pre.last_seen.timestamp() < T0 + 900 * FIRST_PAST
