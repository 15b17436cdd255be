"""Warnings as Alertmanager v2 alerts: their shape, routing by the deploy configuration
(amtool) and delivery through a real Alertmanager to webhook receivers."""

from __future__ import annotations

import asyncio
import copy
import re
import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from aiohttp import ClientSession, web
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.schemas import Certainty, Evidence, Severity, Urgency, Warning
from streams.publish.alertmanager import (
    LABEL_KEYS,
    MAX_WARNINGS,
    SEVERITIES,
    AlertmanagerSink,
    label_value,
    warning_alerts,
)
from tests.services import alertmanager, ensure_binary, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK = "https://docs.example.org/runbook.md"
DASHBOARD = "http://grafana.example.org/d/tocsin-region"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
VALUE = re.compile(r"^[a-z0-9_:.-]+$")
PHONE, EMAIL = "13800138000", "zhang.wei@example.com"


def ev(source: str, at: datetime, *, dept: str = "dept", region: str = "harbour",
       ids: Iterable[str] = ("e-1",)) -> Evidence:
    return Evidence(source=source, department=dept, region=region,
                    signal=f"{source}:x:{region}", detector="robust_median", observed=10,
                    expected=2, score=6.5, p_value=3e-7, event_time=at, event_ids=list(ids))


def warning(*, sources: Iterable[str] = ("env",), region: str = "harbour",
            scenario: str = "pollution", severity: str = "Moderate", status: str = "new",
            version: int = 1, wid: str | None = None, first_seen: datetime = T0,
            last_seen: datetime | None = None, sent_at: datetime | None = None,
            explanation: str = "Possible pollution in harbour.") -> Warning:
    last = last_seen or first_seen + H
    return Warning(
        warning_id=wid or f"tw-{region}-{scenario}-0123456789abcdef", version=version,
        status=status, region=region, scenario=scenario,
        severity=severity, urgency="Immediate", certainty="Likely",
        score=12.5, departments=["ecology_bureau"], first_seen=first_seen, last_seen=last,
        evidence=[ev(s, first_seen + i * timedelta(minutes=5), region=region)
                  for i, s in enumerate(sources)],
        explanation=explanation, sent_at=sent_at,
    )


def alerts_of(w: Warning, **kw: Any) -> list[dict[str, Any]]:
    return warning_alerts(w, runbook_url=RUNBOOK, dashboard_url=DASHBOARD, **kw)


# -- alert shape --------------------------------------------------------------------------------
def test_alert_shape() -> None:
    w = warning(sources=["env"], severity="Severe", sent_at=T0 + 2 * H)
    [a] = alerts_of(w)
    assert set(a) == {"labels", "annotations", "startsAt", "generatorURL"}
    assert a["labels"] == {
        "alertname": "TocsinWarning", "region": "harbour", "scenario": "pollution",
        "severity": "severe", "department": "ecology",
        "warning_id": "tw-harbour-pollution-0123456789abcdef",
    }
    assert set(a["annotations"]) == {"summary", "description", "runbook_url"}
    assert "\n" not in a["annotations"]["summary"]
    for word in ("pollution", "harbour", "Severe"):
        assert word in a["annotations"]["summary"]
    assert a["annotations"]["description"] == w.explanation
    assert a["annotations"]["runbook_url"] == f"{RUNBOOK}#pollution"
    assert a["generatorURL"] == f"{DASHBOARD}?var-region=harbour"
    assert a["startsAt"] == "2026-11-23T08:00:00Z"


def test_generator_url_keeps_an_existing_query() -> None:
    [a] = warning_alerts(warning(), runbook_url=RUNBOOK, dashboard_url=f"{DASHBOARD}?orgId=1")
    assert a["generatorURL"] == f"{DASHBOARD}?orgId=1&var-region=harbour"


@pytest.mark.parametrize(("sources", "departments"), [
    (["env"], ["ecology"]),
    (["market"], ["market"]),
    (["complaint"], ["hotline"]),
    (["env", "complaint"], ["ecology", "hotline"]),
    (["market", "env", "env", "complaint", "market"], ["ecology", "hotline", "market"]),
    ([], ["unassigned"]),
])
def test_one_alert_per_receiving_department(sources: list[str], departments: list[str]) -> None:
    alerts = alerts_of(warning(sources=sources))
    assert [a["labels"]["department"] for a in alerts] == departments
    # the alerts of one warning differ in department only
    assert len({tuple(sorted((k, v) for k, v in a["labels"].items() if k != "department"))
                for a in alerts}) == 1


@pytest.mark.parametrize("severity", get_args(Severity))
def test_severity_is_lower_case(severity: str) -> None:
    [a] = alerts_of(warning(severity=severity))
    assert a["labels"]["severity"] == severity.lower()
    assert a["labels"]["severity"] in SEVERITIES


def test_no_personal_data_in_labels() -> None:
    text = f"Resident (call {PHONE}, mail {EMAIL}) reports black water at pier 3."
    w = warning(sources=["complaint", "market"], explanation=text)
    w = w.model_copy(update={
        "departments": [f"hotline {PHONE}", EMAIL],
        "evidence": [e.model_copy(update={"department": EMAIL, "signal": f"complaint:{PHONE}",
                                          "event_ids": [f"c-{PHONE}", EMAIL]})
                     for e in w.evidence],
    })
    alerts = alerts_of(w)
    assert len(alerts) == 2
    for a in alerts:
        for value in a["labels"].values():
            assert PHONE not in value and EMAIL not in value and "@" not in value
        for field in ("summary", "runbook_url"):
            assert PHONE not in a["annotations"][field] and EMAIL not in a["annotations"][field]
        assert PHONE not in a["generatorURL"] and EMAIL not in a["generatorURL"]
        assert a["annotations"]["description"] == text  # the text goes there and only there


def test_label_values_are_cleaned_and_stay_distinct() -> None:
    assert label_value("harbour") == "harbour"
    odd = [label_value(v) for v in ("Harbour", "harbour ", "港区", "港口", "x" * 500, "")]
    assert len(set(odd)) == len(odd)
    for v in odd:
        assert VALUE.match(v) and len(v) <= 128
    [a] = alerts_of(warning(region="Old Town\n<b>", scenario="Food Safety!"))
    assert VALUE.match(a["labels"]["region"]) and VALUE.match(a["labels"]["scenario"])
    assert "\n" not in a["annotations"]["summary"]
    assert a["generatorURL"].endswith("?var-region=Old+Town%0A%3Cb%3E")


def test_active_alerts_have_no_end() -> None:
    for status in ("new", "update"):
        [a] = alerts_of(warning(status=status, sent_at=T0 + 3 * H))
        assert "endsAt" not in a


def test_resolved_and_cancelled_alerts_end() -> None:
    resolved = warning(status="resolved", sent_at=T0 + 5 * H, last_seen=T0 + 2 * H)
    assert {a["endsAt"] for a in alerts_of(resolved)} == {"2026-11-23T13:00:00Z"}
    cancelled = warning(status="cancelled", sources=["env", "market"], last_seen=T0 + 2 * H)
    assert {a["endsAt"] for a in alerts_of(cancelled)} == {"2026-11-23T10:00:00Z"}
    override = alerts_of(resolved, ends_at=T0 + 7 * H)
    assert override[0]["endsAt"] == "2026-11-23T15:00:00Z"
    # never before the start, which Alertmanager would refuse
    early = alerts_of(resolved, ends_at=T0 - H)
    assert early[0]["endsAt"] == early[0]["startsAt"] == "2026-11-23T08:00:00Z"


_text = st.text(max_size=60)
_time = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
                     timezones=st.just(UTC))


@st.composite
def random_warnings(draw: st.DrawFn) -> Warning:
    first = draw(_time)
    evidence = [
        Evidence(source=draw(st.sampled_from(["env", "complaint", "market"])),
                 department=draw(_text), region=draw(_text), signal=draw(_text),
                 detector=draw(_text), observed=1, expected=0, score=draw(st.floats(0, 400)),
                 p_value=draw(st.floats(0, 1)), event_time=draw(_time),
                 event_ids=draw(st.lists(_text, max_size=3)))
        for _ in range(draw(st.integers(0, 4)))
    ]
    return Warning(
        warning_id=draw(_text), version=draw(st.integers(1, 50)),
        status=draw(st.sampled_from(["new", "update", "resolved", "cancelled"])),
        region=draw(_text), scenario=draw(_text),
        severity=draw(st.sampled_from(get_args(Severity))),
        urgency=draw(st.sampled_from(get_args(Urgency))),
        certainty=draw(st.sampled_from(get_args(Certainty))),
        score=draw(st.floats(allow_nan=True)), departments=draw(st.lists(_text, max_size=3)),
        first_seen=first, last_seen=draw(_time), evidence=evidence,
        explanation=draw(st.text(max_size=300)), sent_at=draw(st.one_of(st.none(), _time)),
    )


@settings(max_examples=200, deadline=None)
@given(w=random_warnings())
def test_every_warning_gives_bounded_labels(w: Warning) -> None:
    alerts = alerts_of(w)
    expected = {"env": "ecology", "complaint": "hotline", "market": "market"}
    assert sorted(a["labels"]["department"] for a in alerts) == (
        sorted({expected[e.source] for e in w.evidence}) or ["unassigned"])
    for a in alerts:
        labels = a["labels"]
        assert set(labels) == LABEL_KEYS
        assert labels["alertname"] == "TocsinWarning"
        for key in LABEL_KEYS - {"alertname"}:
            value = labels[key]
            assert isinstance(value, str) and VALUE.match(value) and len(value) <= 128, value
        assert labels["severity"] in SEVERITIES
        assert labels["department"] in {"ecology", "market", "hotline", "unassigned"}
        assert "\n" not in a["annotations"]["summary"]
        assert ("endsAt" in a) == (w.status in ("resolved", "cancelled"))
        if "endsAt" in a:
            assert datetime.fromisoformat(a["endsAt"]) >= datetime.fromisoformat(a["startsAt"])


# -- the sink without Alertmanager ---------------------------------------------------------------
def sink(url: str = "http://127.0.0.1:9", **kw: Any) -> AlertmanagerSink:
    return AlertmanagerSink(url, runbook_url=RUNBOOK, dashboard_url=DASHBOARD, **kw)


def by_severity(s: AlertmanagerSink) -> list[tuple[str, str, bool]]:
    return sorted((a["labels"]["department"], a["labels"]["severity"], "endsAt" in a)
                  for a in s.alerts())


def test_sink_keeps_the_latest_version_of_each_warning() -> None:
    s = sink()
    v1 = warning(sources=["env"])
    s.submit([v1])
    assert by_severity(s) == [("ecology", "moderate", False)]
    # escalation: the moderate alert is resolved (posted once with endsAt), the severe fires
    v2 = warning(sources=["env", "market"], severity="Severe", status="update", version=2)
    s.submit([v2])
    assert by_severity(s) == [("ecology", "moderate", True), ("ecology", "severe", False),
                              ("market", "severe", False)]
    s.submit([v1])  # an older version delivered again changes nothing
    assert len(s.alerts()) == 3
    s.submit([v2.model_copy(update={"status": "resolved", "version": 3})])
    assert by_severity(s) == [("ecology", "moderate", True), ("ecology", "severe", True),
                              ("market", "severe", True)]
    s.submit([warning(wid="tw-other", region="oldtown", sources=["complaint"])])
    assert ("hotline", "moderate", False) in by_severity(s)


def test_station_fault_notices_fire_and_resolve() -> None:
    s = sink()
    rows = [("AQ-7", "pm25", "silent", 0.4), ("WQ-1", "water_cod", "stuck", 0.0),
            ("AQ-9", "no2", "ok", 0.1)]
    s.notify_stations(rows)
    firing = {(a["labels"]["station"], a["labels"]["status"], "endsAt" in a)
              for a in s.alerts()}
    aq7, wq1 = label_value("AQ-7"), label_value("WQ-1")  # bounded label values
    assert firing == {(aq7, "silent", False), (wq1, "stuck", False)}  # never "ok"
    assert {a["annotations"]["summary"] for a in s.alerts()} >= {"Sensor AQ-7 (pm25) is silent"}
    assert all(a["labels"]["department"] == "operations" and
               a["annotations"]["runbook_url"].endswith("#tocsinstationssilent")
               for a in s.alerts())
    started = {a["labels"]["station"]: a["startsAt"] for a in s.alerts()}
    s.notify_stations(rows[:1])  # WQ-1 reports soundly again: its notice is resolved
    after = {(a["labels"]["station"], "endsAt" in a) for a in s.alerts()}
    assert after == {(aq7, False), (wq1, True)}
    assert {a["labels"]["station"]: a["startsAt"] for a in s.alerts()}[aq7] == started[
        aq7]  # a notice that goes on keeps its start


def test_sink_submit_never_raises() -> None:
    s = sink()
    s.submit([warning(), object()])  # type: ignore[list-item]
    assert len(s.alerts()) == 1


def test_sink_memory_is_bounded() -> None:
    s = sink()
    s.submit([warning(wid=f"tw-{i}") for i in range(MAX_WARNINGS + 5)])
    assert len(s.alerts()) == MAX_WARNINGS
    assert s.alerts()[0]["labels"]["warning_id"] == "tw-5"


def test_sink_failure_is_reported_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    results: list[str] = []
    port = free_port()  # nothing listens there

    async def scenario() -> None:
        s = sink(f"http://127.0.0.1:{port}", timeout_s=0.5, max_backoff_s=0.2,
                 on_result=results.append)
        await s.start()
        s.submit([warning()])
        deadline = time.monotonic() + 5
        while results.count("failed") < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await s.stop()

    asyncio.run(scenario())
    assert results and set(results) == {"failed"}
    assert "TOCSIN_ALERTMANAGER_URL" in caplog.text


class FakeAlertmanager:
    """Records what is posted to /api/v2/alerts; answers with the next queued status."""

    def __init__(self) -> None:
        self.posts: list[list[dict[str, Any]]] = []
        self.statuses: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


async def until(cond: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_sink_posts_retries_resends_and_drops_resolved() -> None:
    fake = FakeAlertmanager()
    fake.statuses = [503]  # the first post fails
    results: list[str] = []

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/api/v2/alerts", fake.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        s = sink(f"http://127.0.0.1:{port}/", resend_s=0.3, max_backoff_s=0.1,
                 on_result=results.append)
        try:
            await s.start()
            w = warning(sources=["env", "market"])
            s.submit([w])
            await until(lambda: results[:2] == ["failed", "sent"])
            assert len(fake.posts[1]) == 2  # the failed post was retried
            await until(lambda: len(fake.posts) >= 4)  # re-sent while active
            assert fake.posts[3] == fake.posts[1]
            s.submit([w.model_copy(update={"status": "resolved", "version": 2,
                                           "sent_at": T0 + 2 * H})])
            await until(lambda: any("endsAt" in a for a in fake.posts[-1]))
            assert {a["endsAt"] for a in fake.posts[-1]} == {"2026-11-23T10:00:00Z"}
            await until(lambda: s.alerts() == [])  # posted once, then dropped
            n = len(fake.posts)
            await asyncio.sleep(0.8)
            assert len(fake.posts) == n  # nothing left to send
            s.submit([warning(wid="tw-last")])  # stop() flushes what is new
            task = s._task
            await s.stop()
            assert task is not None and task.done()
            assert fake.posts[-1][0]["labels"]["warning_id"] == "tw-last"
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


# -- the deploy configuration -------------------------------------------------------------------
def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ensure_binary("amtool"), *args], capture_output=True, text=True,
                          timeout=30)


def test_deploy_config_is_valid() -> None:
    proc = amtool("check-config", str(DEPLOY))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    cfg = yaml.safe_load(DEPLOY.read_text())
    receivers = {r["name"]: r for r in cfg["receivers"]}
    assert set(receivers) == {"duty-officer", "ecology-bureau", "market-regulator", "hotline",
                              "operators"}
    for r in receivers.values():
        assert r["webhook_configs"] and all(h["send_resolved"] is True
                                            for h in r["webhook_configs"])
    assert cfg["route"]["group_by"] == ["region", "scenario"]


@pytest.mark.parametrize(("labels", "receivers"), [
    ("severity=severe department=market", "duty-officer,market-regulator"),
    ("severity=extreme department=ecology", "duty-officer,ecology-bureau"),
    ("severity=severe department=hotline", "duty-officer,hotline"),
    ("severity=moderate department=market", "market-regulator"),
    ("severity=minor department=ecology", "ecology-bureau"),
    ("severity=unknown department=hotline", "hotline"),
    ("severity=moderate department=unassigned", "duty-officer"),
    ("severity=severe department=unassigned", "duty-officer"),
])
def test_routing(labels: str, receivers: str) -> None:
    """Warnings go to the departments concerned (and severe ones to the duty officer)."""
    proc = amtool("config", "routes", "test", f"--config.file={DEPLOY}",
                  f"--verify.receivers={receivers}", "alertname=TocsinWarning",
                  "region=harbour", "scenario=pollution", "warning_id=tw-harbour-1",
                  *labels.split())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receivers


@pytest.mark.parametrize("alert", ["TocsinWorkerDown", "TocsinConsumerLagGrowing"])
def test_pipeline_alerts_go_to_the_operators(alert: str) -> None:
    """deploy/prometheus rules carry department="operations": operators, not regulators."""
    proc = amtool("config", "routes", "test", f"--config.file={DEPLOY}",
                  "--verify.receivers=operators", f"alertname={alert}",
                  "department=operations", "severity=critical")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "operators"


@pytest.mark.parametrize("sources", [["market"], ["env", "complaint"]])
def test_routing_of_generated_alerts(sources: list[str]) -> None:
    """The labels warning_alerts produces are the ones the routes match."""
    for a in alerts_of(warning(sources=sources, severity="Severe")):
        dept = a["labels"]["department"]
        want = {"market": "market-regulator", "ecology": "ecology-bureau",
                "hotline": "hotline"}[dept]
        proc = amtool("config", "routes", "test", f"--config.file={DEPLOY}",
                      *(f"{k}={v}" for k, v in a["labels"].items()))
        assert proc.stdout.strip() == f"duty-officer,{want}", proc.stderr


# -- a real Alertmanager ------------------------------------------------------------------------
def local_config(webhook_port: int) -> dict[str, Any]:
    """The deploy configuration with local webhooks and short timers; routes, grouping and
    inhibit rules unchanged."""
    cfg: dict[str, Any] = copy.deepcopy(yaml.safe_load(DEPLOY.read_text()))

    def fast(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", "1s"), ("group_interval", "1s"),
                           ("repeat_interval", "1h")):
            if key in route or route is cfg["route"]:
                route[key] = value
        for child in route.get("routes", []):
            fast(child)

    fast(cfg["route"])
    for r in cfg["receivers"]:
        r["webhook_configs"] = [
            {**h, "url": f"http://127.0.0.1:{webhook_port}/{r['name']}"}
            for h in r["webhook_configs"]]
    return cfg


async def am_alerts(url: str, matcher: str) -> list[dict[str, Any]]:
    """Alertmanager's active (firing or suppressed, not resolved) alerts matching."""
    async with ClientSession() as http, http.get(
            f"{url}/api/v2/alerts", params={"filter": matcher, "active": "true",
                                            "silenced": "true", "inhibited": "true"}) as r:
        assert r.status == 200
        found: list[dict[str, Any]] = await r.json()
        return found


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_real_alertmanager_routes_groups_inhibits_and_resolves(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(local_config(port)))
    got: dict[str, list[dict[str, Any]]] = {}

    async def webhook(request: web.Request) -> web.Response:
        got.setdefault(request.match_info["receiver"], []).append(await request.json())
        return web.Response(text="ok")

    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=10)
    a = warning(wid="tw-harbour-a", region="harbour", scenario="pollution", severity="Severe",
                sources=["env", "complaint"], first_seen=start, last_seen=now)
    b = warning(wid="tw-oldtown-b", region="oldtown", scenario="price_gouging",
                severity="Moderate", sources=["market"], first_seen=start, last_seen=now)
    d = warning(wid="tw-riverside-d", region="riverside", scenario="food_safety",
                severity="Extreme", sources=["market"], first_seen=start, last_seen=now)
    # a lower-severity duplicate of incident a for the ecology bureau: inhibited
    c = warning(wid="tw-harbour-c", region="harbour", scenario="pollution",
                severity="Moderate", sources=["env"], first_seen=start, last_seen=now)

    def alerts(receiver: str, status: str | None = None) -> list[dict[str, Any]]:
        return [x for p in got.get(receiver, []) for x in p["alerts"]
                if status is None or x["status"] == status]

    def seen(receiver: str, status: str = "firing") -> set[tuple[str, str]]:
        return {(x["labels"]["warning_id"], x["labels"]["department"])
                for x in alerts(receiver, status)}

    firing = {
        "duty-officer": {("tw-harbour-a", "ecology"), ("tw-harbour-a", "hotline"),
                         ("tw-riverside-d", "market")},
        "market-regulator": {("tw-oldtown-b", "market"), ("tw-riverside-d", "market")},
        "ecology-bureau": {("tw-harbour-a", "ecology")},
        "hotline": {("tw-harbour-a", "hotline")},
    }

    async def scenario(url: str) -> None:
        app = web.Application()
        app.router.add_post("/{receiver}", webhook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        results: list[str] = []
        s = AlertmanagerSink(url, runbook_url=RUNBOOK, dashboard_url=DASHBOARD,
                             on_result=results.append, timeout_s=2)
        try:
            await s.start()
            s.submit([a, b, d])
            await until(lambda: all(seen(r) >= want for r, want in firing.items()), 15)
            # a lower-severity duplicate arriving while incident a is severe
            sent = results.count("sent")
            s.submit([c])
            await until(lambda: results.count("sent") > sent)
            await asyncio.sleep(2.5)  # > group_interval: a wrong delivery would have happened
            # routing: exactly the expected departments and severities per receiver
            for receiver, want in firing.items():
                assert seen(receiver) == want, receiver
            assert set(got) == set(firing)
            # grouping: per region and scenario; both departments of incident a together
            for receiver, payloads in got.items():
                for p in payloads:
                    assert set(p["groupLabels"]) == {"region", "scenario"}
                    assert {(x["labels"]["region"], x["labels"]["scenario"])
                            for x in p["alerts"]} == {(p["groupLabels"]["region"],
                                                       p["groupLabels"]["scenario"])}
                    assert p["receiver"] == receiver
            assert any({x["labels"]["department"] for x in p["alerts"]} == {"ecology", "hotline"}
                       for p in got["duty-officer"])
            shown = alerts("market-regulator")[0]
            assert shown["annotations"]["runbook_url"].startswith(f"{RUNBOOK}#")
            assert shown["generatorURL"].startswith(f"{DASHBOARD}?var-region=")
            # inhibition: Alertmanager holds c's moderate ecology alert, suppressed by a's
            held = await am_alerts(url, 'warning_id="tw-harbour-c"')
            assert [x["labels"]["department"] for x in held] == ["ecology"]
            assert held[0]["status"]["state"] == "suppressed"
            assert held[0]["status"]["inhibitedBy"]
            assert ("tw-harbour-c", "ecology") not in seen("ecology-bureau")
            assert "sent" in results and "failed" not in results

            # resolution: every receiver is told
            end = datetime.now(UTC) - timedelta(seconds=1)
            s.submit([w.model_copy(update={"status": "resolved", "version": 2, "sent_at": end})
                      for w in (c, a, b, d)])
            await until(lambda: all(seen(r, "resolved") >= want for r, want in firing.items()),
                        15)
            for receiver in firing:
                assert any(p["status"] == "resolved" for p in got[receiver]), receiver
            await until(lambda: s.alerts() == [])
            assert await am_alerts(url, 'alertname="TocsinWarning"') == []
        finally:
            await s.stop()
            await runner.cleanup()

    with alertmanager(config, tmp_path) as url:
        t = time.monotonic()
        asyncio.run(scenario(url))
        assert time.monotonic() - t < 30
