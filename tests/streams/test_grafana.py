"""Warning annotations and dashboard upload against a local fake of Grafana's HTTP API.

The fake implements the documented endpoints Tocsin uses (``POST /api/annotations``,
``POST /api/dashboards/db``, ``GET /api/health``): it checks the method, the path, the
``Authorization: Bearer`` header and the shape of the JSON body (401 / 400 otherwise, like
Grafana), records every request and can be told to fail or hang."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.core.errors import InputFileError, TocsinError
from streams.core.schemas import Audit, Evidence, Warning
from streams.publish.grafana import (
    AnnotationSink,
    GrafanaError,
    annotation_for,
    dashboard_files,
    first_sentence,
    push_dashboards,
)
from streams.tools.cli import app
from tests.services import free_port

TOKEN = "glsa_test-token-0123456789abcdef"
T0 = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
EXPLANATION = ("Possible water pollution in harbour: 2 departments (citizen_hotline, "
               "ecology_bureau) report anomalies since 2024-05-06 03:00 UTC. env:water_cod "
               "observed 58.2 vs expected 21 (p=6.0e-08). Combined chance of this by "
               "coincidence: p=1.2e-09.")
FIRST = ("Possible water pollution in harbour: 2 departments (citizen_hotline, ecology_bureau) "
         "report anomalies since 2024-05-06 03:00 UTC.")


# -- the fake Grafana ---------------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGrafana:
    token: str = TOKEN
    requests: list[Request] = field(default_factory=list)
    #: statuses answered to the next requests instead of handling them (e.g. [503, 503])
    fail_next: list[int] = field(default_factory=list)
    #: while set, POST requests wait until it is cleared (a hanging Grafana)
    hang: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1

    def posted(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST" and r.path == path]

    def wait_for(self, cond: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"timed out; requests: {self.requests}"
            time.sleep(0.01)


def _valid_annotation(b: Any) -> bool:
    return (isinstance(b, dict) and isinstance(b.get("dashboardUID"), str)
            and isinstance(b.get("time"), int) and not isinstance(b.get("time"), bool)
            and isinstance(b.get("tags"), list) and all(isinstance(t, str) for t in b["tags"])
            and isinstance(b.get("text"), str) and b["text"] != "")


def _valid_dashboard_post(b: Any) -> bool:
    return (isinstance(b, dict) and isinstance(b.get("dashboard"), dict)
            and isinstance(b["dashboard"].get("title"), str)
            and isinstance(b.get("overwrite"), bool)
            and (b.get("folderUid") is None or isinstance(b["folderUid"], str))
            and isinstance(b.get("message", ""), str))


def make_handler(g: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.record(None)
            if self.path == "/api/health":
                self.reply(200, {"commit": "fake", "database": "ok", "version": "10.4.0"})
            else:
                self.reply(404, {"message": "Not found"})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            self.record(body)
            while g.hang.is_set():
                time.sleep(0.01)
            with g.lock:
                status = g.fail_next.pop(0) if g.fail_next else None
            if status is not None:
                self.reply(status, {"message": f"injected failure {status}"})
                return
            if self.headers.get("Authorization") != f"Bearer {g.token}":
                self.reply(401, {"message": "invalid API key"})
                return
            if self.headers.get_content_type() != "application/json":
                self.reply(400, {"message": "bad request data: not JSON"})
                return
            with g.lock:
                n = g.next_id
                g.next_id += 1
            if self.path == "/api/annotations":
                if not _valid_annotation(body):
                    self.reply(400, {"message": "bad request data"})
                    return
                self.reply(200, {"message": "Annotation added", "id": n})
            elif self.path == "/api/dashboards/db":
                if not _valid_dashboard_post(body):
                    self.reply(400, {"message": "bad request data"})
                    return
                if body.get("folderUid") == "missing-folder":
                    self.reply(400, {"message": "folder not found", "status": "not-found"})
                    return
                d = body["dashboard"]
                uid = d.get("uid") or f"gen{n}"
                slug = re.sub(r"[^a-z0-9]+", "-", d["title"].lower()).strip("-")
                self.reply(200, {"id": n, "uid": uid, "url": f"/d/{uid}/{slug}",
                                 "status": "success", "version": 1, "slug": slug})
            else:
                self.reply(404, {"message": "Not found"})

        def record(self, body: Any) -> None:
            with g.lock:
                g.requests.append(Request(self.command, self.path, dict(self.headers), body))

    return Handler


def serve(g: FakeGrafana, port: int = 0) -> Generator[FakeGrafana, None, None]:
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(g))
    server.daemon_threads = True
    g.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield g
    finally:
        g.hang.clear()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    yield from serve(FakeGrafana())


def test_fake_grafana_checks_token_and_body(grafana: FakeGrafana) -> None:
    """The fake refuses what Grafana refuses, so passing tests mean something."""
    import urllib.error
    import urllib.request

    def post(path: str, body: Any, token: str) -> int:
        req = urllib.request.Request(grafana.url + path, data=json.dumps(body).encode(),
                                     method="POST", headers={
                                         "Authorization": f"Bearer {token}",
                                         "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return e.code

    good = {"dashboardUID": "d", "time": 1, "tags": ["a"], "text": "t"}
    assert post("/api/annotations", good, TOKEN) == 200
    assert post("/api/annotations", good, "wrong") == 401
    assert post("/api/annotations", {**good, "time": "soon"}, TOKEN) == 400
    assert post("/api/dashboards/db", {"dashboard": {}, "overwrite": True}, TOKEN) == 400
    with urllib.request.urlopen(grafana.url + "/api/health", timeout=5) as r:
        assert json.load(r)["database"] == "ok"


# -- warnings -----------------------------------------------------------------------------------
def make_warning(version: int = 1, status: str = "new", *, region: str = "harbour",
                 scenario: str = "pollution", severity: str = "Severe",
                 explanation: str = EXPLANATION, evidence: list[Evidence] | None = None,
                 audit: Audit | None = None) -> Warning:
    ev = evidence or [Evidence(
        source="env", department="ecology_bureau", region=region,
        signal="env:water_cod:S-harbour-w", detector="robust_median", observed=58.2,
        expected=21.0, score=7.2, p_value=6e-8, event_time=T0, event_ids=["rd-000193"])]
    return Warning(
        warning_id=f"tw-{region}-0123456789abcdef", version=version, status=status,
        region=region, scenario=scenario, severity=severity,
        urgency="Immediate", certainty="Likely", score=11.4,
        departments=sorted({e.department for e in ev}), first_seen=T0,
        last_seen=T0 + timedelta(hours=version), evidence=ev, explanation=explanation,
        audit=audit)


def test_first_sentence_keeps_decimals() -> None:
    assert first_sentence(EXPLANATION) == FIRST
    assert first_sentence("observed 58.2 vs 21.0 (p=6.0e-08). Next.") == (
        "observed 58.2 vs 21.0 (p=6.0e-08).")
    assert first_sentence("  no full stop  ") == "no full stop"
    assert first_sentence("") == ""


def test_annotation_for_a_new_warning() -> None:
    w = make_warning(version=2, status="update")
    a = annotation_for(w, "tocsin-overview")
    assert a == {
        "dashboardUID": "tocsin-overview",
        "time": int((T0 + timedelta(hours=2)).timestamp()) * 1000,
        "tags": ["tocsin", "region:harbour", "scenario:pollution", "severity:severe",
                 "status:update"],
        "text": f"update pollution in harbour (Severe), v2: {FIRST}",
    }


def test_annotation_for_a_resolved_warning_is_at_last_seen() -> None:
    w = make_warning(version=3, status="resolved", explanation="Resolved: " + EXPLANATION)
    a = annotation_for(w, "d")
    assert a["time"] == int(w.last_seen.timestamp() * 1000)
    assert "status:resolved" in a["tags"]
    assert a["text"].startswith("resolved pollution in harbour (Severe), v3: Resolved: ")


def test_annotation_text_is_plain_and_short() -> None:
    w = make_warning(explanation="<b>Possible</b> <script>x()</script> " + "long " * 200)
    text = annotation_for(w, "d")["text"]
    assert "<" not in text and ">" not in text
    assert len(text) <= 300
    assert text.endswith("…")


def test_no_personal_data_in_annotations() -> None:
    """Phone numbers and e-mail addresses in a complaint's event ids or signal (or in the
    audit's event ids) never reach Grafana."""
    phone, email = "13800138000", "li.wei@example.com"
    ev = [Evidence(
        source="complaint", department="citizen_hotline", region="harbour",
        signal=f"complaint:odor:{phone}:{email}", detector="quasi_poisson", observed=14,
        expected=3, score=6.0, p_value=1e-6, event_time=T0,
        event_ids=[f"c-{phone}", email, "c-000042"])]
    w = make_warning(evidence=ev, audit=Audit(
        template="pollution", rule="fisher", detectors={"quasi_poisson": "1"},
        event_ids=[f"c-{phone}", email]))
    body = json.dumps(annotation_for(w, "tocsin-overview"))
    assert phone not in body
    assert email not in body
    assert "c-000042" not in body


# -- the annotation sink ------------------------------------------------------------------------
def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_sink_posts_one_annotation_per_version(grafana: FakeGrafana) -> None:
    results: list[str] = []
    versions = [make_warning(1, "new"), make_warning(2, "update"),
                make_warning(3, "resolved", explanation="Resolved: " + EXPLANATION)]

    async def go() -> None:
        sink = AnnotationSink(grafana.url, TOKEN, "tocsin-overview", on_result=results.append)
        await sink.start()
        sink.submit(versions[:2])
        sink.submit([versions[1], versions[2]])  # version 2 re-delivered
        await until(lambda: len(results) >= 3)
        await sink.stop()
        assert sink.sent == 3 and sink.pending == 0

    run(go())
    posts = grafana.posted("/api/annotations")
    assert len(posts) == 3
    assert results == ["sent"] * 3
    for post, w in zip(posts, versions, strict=True):
        assert post.headers["Authorization"] == f"Bearer {TOKEN}"
        assert post.body["dashboardUID"] == "tocsin-overview"
        assert post.body["time"] == int(w.last_seen.timestamp() * 1000)
        assert post.body["tags"] == ["tocsin", "region:harbour", "scenario:pollution",
                                     "severity:severe", f"status:{w.status}"]
        assert post.body["text"].startswith(f"{w.status} pollution in harbour (Severe), "
                                            f"v{w.version}: ")


def test_sink_retries_server_errors_with_backoff(grafana: FakeGrafana) -> None:
    grafana.fail_next = [503, 503]
    results: list[str] = []

    async def go() -> None:
        sink = AnnotationSink(grafana.url, TOKEN, "d", max_backoff_s=0.05,
                              on_result=results.append)
        await sink.start()
        sink.submit([make_warning(1), make_warning(2, "update")])
        await until(lambda: results.count("sent") == 2)
        await sink.stop()

    run(go())
    assert results == ["failed", "failed", "sent", "sent"]
    posts = grafana.posted("/api/annotations")
    assert len(posts) == 4  # the first annotation three times, then the second
    assert posts[0].body == posts[1].body == posts[2].body
    assert posts[2].body["text"].split(":")[0].endswith("v1")
    assert posts[3].body["text"].split(":")[0].endswith("v2")


def test_sink_retries_until_grafana_is_reachable() -> None:
    port = free_port()  # nothing listens here yet: connection refused
    results: list[str] = []
    g = FakeGrafana()

    async def go() -> None:
        sink = AnnotationSink(f"http://127.0.0.1:{port}", TOKEN, "d", max_backoff_s=0.05,
                              timeout_s=2, on_result=results.append)
        await sink.start()
        sink.submit([make_warning(1)])
        await until(lambda: results.count("failed") >= 2)
        server = serve(g, port)
        next(server)  # Grafana comes up on that port
        try:
            await until(lambda: "sent" in results)
            await sink.stop()
        finally:
            server.close()

    run(go())
    assert results[-1] == "sent" and set(results[:-1]) == {"failed"}
    assert len(g.posted("/api/annotations")) == 1


def test_sink_drops_refused_annotations_and_goes_on(grafana: FakeGrafana,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A bad token (401) cannot be cured by retrying: each annotation is reported failed and
    dropped, without blocking the ones behind it or raising."""
    results: list[str] = []

    async def go() -> None:
        sink = AnnotationSink(grafana.url, "wrong-token", "d", max_backoff_s=30,
                              on_result=results.append)
        await sink.start()
        sink.submit([make_warning(1), make_warning(2, "update")])
        await until(lambda: results.count("dropped") == 2)
        assert sink.pending == 0
        await sink.stop()

    with caplog.at_level(logging.ERROR, logger="tocsin.grafana"):
        run(go())
    assert results == ["failed", "dropped", "failed", "dropped"]
    assert len(grafana.posted("/api/annotations")) == 2
    assert "TOCSIN_GRAFANA_TOKEN" in caplog.text and "401" in caplog.text
    assert "wrong-token" not in caplog.text


def test_submit_does_no_io_and_is_bounded(grafana: FakeGrafana) -> None:
    """``submit`` only queues: called outside any event loop, with no poster task, nothing
    reaches the server; when the queue is full the oldest annotation is dropped."""
    results: list[str] = []
    sink = AnnotationSink(grafana.url, TOKEN, "d", max_queue=2, on_result=results.append)
    sink.submit([make_warning(v, "update") for v in range(1, 6)])
    assert sink.pending == 2
    assert results == ["dropped"] * 3 and sink.dropped == 3
    assert grafana.requests == []

    async def go() -> None:
        await sink.start()
        await until(lambda: results.count("sent") == 2)
        await sink.stop()

    run(go())
    texts = [p.body["text"] for p in grafana.posted("/api/annotations")]
    assert [t.split(":")[0][-2:] for t in texts] == ["v4", "v5"]  # the newest two


def test_submit_never_raises_on_a_malformed_warning(grafana: FakeGrafana) -> None:
    sink = AnnotationSink(grafana.url, TOKEN, "d")
    bad = make_warning(1).model_copy(update={"last_seen": None})  # no event time
    sink.submit([bad, make_warning(2, "update")])
    assert sink.pending == 1


def test_stop_does_not_wait_for_a_hanging_grafana(grafana: FakeGrafana) -> None:
    results: list[str] = []
    grafana.hang.set()

    async def go() -> None:
        sink = AnnotationSink(grafana.url, TOKEN, "d", timeout_s=30, on_result=results.append)
        await sink.start()
        sink.submit([make_warning(1), make_warning(2, "update")])
        await until(lambda: len(grafana.requests) == 1)  # the first POST is hanging
        sink.submit([make_warning(3, "update")])  # still only queues
        assert sink.pending == 3
        await asyncio.wait_for(sink.stop(flush_s=0.1), 5)  # well before the 30 s timeout
        assert sink.pending == 0

    run(go())
    assert results == ["dropped"] * 3


def test_stop_cuts_a_backoff_short_for_one_last_attempt() -> None:
    port = free_port()  # nothing listens: every attempt fails at once
    results: list[str] = []

    async def go() -> None:
        sink = AnnotationSink(f"http://127.0.0.1:{port}", TOKEN, "d", max_backoff_s=600,
                              on_result=results.append)
        await sink.start()
        sink.submit([make_warning(1)])
        await until(lambda: "failed" in results)  # now backing off
        await asyncio.wait_for(sink.stop(flush_s=60), 10)

    run(go())
    assert results == ["failed", "failed", "dropped"]


def test_sink_can_restart_under_another_event_loop(grafana: FakeGrafana) -> None:
    results: list[str] = []
    sink = AnnotationSink(grafana.url, TOKEN, "d", on_result=results.append)

    async def deliver(w: Warning) -> None:
        await sink.start()
        sink.submit([w])
        await until(lambda: len(results) == w.version)
        await sink.stop()

    run(deliver(make_warning(1)))
    run(deliver(make_warning(2, "update")))
    assert results == ["sent", "sent"]


# -- dashboards ---------------------------------------------------------------------------------
def write_dashboards(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    a = directory / "overview.json"
    a.write_text(json.dumps({"id": 42, "uid": "tocsin-overview", "title": "Tocsin overview",
                             "panels": [], "schemaVersion": 39}))
    b = directory / "region.json"
    b.write_text(json.dumps({"uid": "tocsin-region", "title": "Tocsin region",
                             "panels": [{"type": "timeseries"}]}))
    return [a, b]


def test_push_dashboards(grafana: FakeGrafana, tmp_path: Path) -> None:
    paths = write_dashboards(tmp_path)
    out = push_dashboards(grafana.url, TOKEN, paths, folder_uid="ops")
    assert out == [f"{grafana.url}/d/tocsin-overview/tocsin-overview",
                   f"{grafana.url}/d/tocsin-region/tocsin-region"]
    posts = grafana.posted("/api/dashboards/db")
    assert len(posts) == 2
    for post, path in zip(posts, paths, strict=True):
        assert post.headers["Authorization"] == f"Bearer {TOKEN}"
        want = json.loads(path.read_text())
        want.pop("id", None)
        assert post.body == {"dashboard": want, "overwrite": True, "folderUid": "ops",
                             "message": "tocsin grafana push"}
    assert "id" not in posts[0].body["dashboard"]


def test_push_dashboards_under_a_sub_path(tmp_path: Path) -> None:
    """Grafana served from a sub-path (root_url http://host/grafana/)."""
    g = FakeGrafana()
    gen = serve(g)
    next(gen)
    try:
        with pytest.raises(GrafanaError) as e:  # the fake only serves /api/...
            push_dashboards(g.url + "/grafana", TOKEN, write_dashboards(tmp_path))
        assert e.value.status == 404
        assert g.requests[0].path == "/grafana/api/dashboards/db"
    finally:
        gen.close()


def test_push_dashboards_reports_grafana_errors(grafana: FakeGrafana, tmp_path: Path) -> None:
    paths = write_dashboards(tmp_path)
    with pytest.raises(GrafanaError) as e:
        push_dashboards(grafana.url, "wrong-token", paths)
    assert e.value.status == 401
    assert isinstance(e.value, TocsinError)
    assert "401" in str(e.value) and "invalid API key" in str(e.value)
    assert "overview.json" in str(e.value) and "wrong-token" not in str(e.value)

    with pytest.raises(GrafanaError) as e:
        push_dashboards(grafana.url, TOKEN, paths, folder_uid="missing-folder")
    assert e.value.status == 400 and "folder not found" in str(e.value)

    grafana.fail_next = [500]
    with pytest.raises(GrafanaError) as e:
        push_dashboards(grafana.url, TOKEN, paths)
    assert e.value.status == 500 and "injected failure 500" in str(e.value)


def test_push_dashboards_refuses_bad_files(grafana: FakeGrafana, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match=r"bad\.json is not valid JSON"):
        push_dashboards(grafana.url, TOKEN, [bad])
    untitled = tmp_path / "untitled.json"
    untitled.write_text("[]")
    with pytest.raises(InputFileError, match="not a Grafana dashboard"):
        push_dashboards(grafana.url, TOKEN, [untitled])
    assert grafana.requests == []  # nothing uploaded when a file is bad


def test_dashboard_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        dashboard_files(tmp_path / "missing")
    with pytest.raises(InputFileError, match="no dashboard JSON files"):
        dashboard_files(tmp_path)
    paths = write_dashboards(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    assert dashboard_files(tmp_path) == sorted(paths)


# -- tocsin grafana push ------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("TOCSIN_GRAFANA_URL", "TOCSIN_GRAFANA_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file


def flat(text: str) -> str:
    return " ".join(text.split())


def test_cli_push(grafana: FakeGrafana, tmp_path: Path, clean_env: None) -> None:
    write_dashboards(tmp_path / "dash")
    res = CliRunner().invoke(app, ["grafana", "push", "--url", grafana.url, "--token", TOKEN,
                                   "--folder-uid", "ops", "--dir", str(tmp_path / "dash")])
    assert res.exit_code == 0, res.output
    assert f"pushed overview.json -> {grafana.url}/d/tocsin-overview/" in res.stdout
    assert f"pushed region.json -> {grafana.url}/d/tocsin-region/" in res.stdout
    assert TOKEN not in res.output
    posts = grafana.posted("/api/dashboards/db")
    assert [p.body["folderUid"] for p in posts] == ["ops", "ops"]
    assert {p.headers["Authorization"] for p in posts} == {f"Bearer {TOKEN}"}


def test_cli_push_reads_url_and_token_from_settings(grafana: FakeGrafana, tmp_path: Path,
                                                    clean_env: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_GRAFANA_URL", grafana.url)
    monkeypatch.setenv("TOCSIN_GRAFANA_TOKEN", TOKEN)
    write_dashboards(tmp_path / "dash")
    res = CliRunner().invoke(app, ["grafana", "push", "--dir", str(tmp_path / "dash")])
    assert res.exit_code == 0, res.output
    assert TOKEN not in res.output
    posts = grafana.posted("/api/dashboards/db")
    assert len(posts) == 2
    assert posts[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert posts[0].body["folderUid"] is None


def test_cli_push_bad_token_exits_2_without_echoing_it(grafana: FakeGrafana, tmp_path: Path,
                                                       clean_env: None) -> None:
    write_dashboards(tmp_path / "dash")
    secret = "glsa_not-the-right-one"
    res = CliRunner().invoke(app, ["grafana", "push", "--url", grafana.url, "--token", secret,
                                   "--dir", str(tmp_path / "dash")])
    assert res.exit_code == 2, res.output
    assert "401" in res.stderr and "TOCSIN_GRAFANA_TOKEN" in flat(res.stderr)
    assert secret not in res.output


@pytest.mark.parametrize("make_dir, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no dashboard JSON files"),
])
def test_cli_push_without_dashboards_exits_2(grafana: FakeGrafana, tmp_path: Path,
                                             clean_env: None, make_dir: Callable[[Path], Path],
                                             message: str) -> None:
    (tmp_path / "readme.txt").write_text("no dashboards here")
    res = CliRunner().invoke(app, ["grafana", "push", "--url", grafana.url, "--token", TOKEN,
                                   "--dir", str(make_dir(tmp_path))])
    assert res.exit_code == 2, res.output
    assert message in flat(res.stderr)
    assert grafana.requests == []


def test_cli_push_without_url_exits_2(tmp_path: Path, clean_env: None) -> None:
    write_dashboards(tmp_path / "dash")
    res = CliRunner().invoke(app, ["grafana", "push", "--dir", str(tmp_path / "dash")])
    assert res.exit_code == 2, res.output
    assert "TOCSIN_GRAFANA_URL" in flat(res.stderr)
