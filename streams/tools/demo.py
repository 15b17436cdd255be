"""``tocsin demo``: the whole path on the embedded broker, watched live, scored at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detectors.signals.prewarning import SCENARIO as PREWARNING
from streams.core.regions import RegionRegistry
from streams.core.schemas import Warning
from streams.core.settings import TocsinSettings
from streams.core.topics import (
    ANOMALIES,
    SOURCE_TOPICS,
    WARNINGS,
    WARNINGS_CAP,
    create_topics,
    topic_name,
)
from streams.evaluation.durations import format_hmm
from streams.evaluation.replay_score import (
    ReplayLine,
    TruthIncident,
    decisive_records,
    read_replay,
    score,
)
from streams.evaluation.report_table import (
    Col,
    fit_table,
    incident_cols,
    match_rows,
    misfit_lines,
    unmatched_table,
)
from streams.pipeline.inprocess import Pipeline
from streams.publish.cap_check import CapCheck, check_alerts
from streams.runtime.kafka_util import assign_all, group_lag, read_topic
from streams.tools.broker import EmbeddedBroker
from streams.tools.demo_live import TailResult, print_tail, run_tail, tail_rows
from streams.tools.replay import produce
from streams.tools.simulate import SimConfig, simulate

#: the OASIS CAP 1.2 schema, when the shared folder is beside the repository
CAP_XSD = Path(__file__).resolve().parents[3] / "shared" / "cap" / "CAP-v1.2.xsd"

SEVERITY_STYLE = {"Extreme": "bold red", "Severe": "red", "Moderate": "yellow", "Minor": "cyan"}


@dataclass
class DemoResult:
    report: dict[str, Any]
    warnings: list[Warning] = field(default_factory=list)
    seconds: float = 0.0
    cap: CapCheck | None = None
    #: warning id -> wall clock from producing its decisive record to its arrival (the
    #: accelerated week's; the real-time tail's are in ``tail``)
    latency: dict[str, float] = field(default_factory=dict)
    tail: TailResult | None = None

    @property
    def ok(self) -> bool:
        cap_ok = self.cap is None or (self.cap.ok and self.cap.alerts == len(self.warnings))
        return bool(self.report["detected"] == self.report["incidents"]) and cap_ok


def start_worker(settings: TocsinSettings, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update({
        "TOCSIN_BROKER": ",".join(settings.bootstrap_servers),
        "TOCSIN_APP_ID": settings.app_id,
        "TOCSIN_TOPIC_PREFIX": settings.topic_prefix,
        "TOCSIN_PARTITIONS": str(settings.partitions),
        "TOCSIN_DATA_DIR": str(settings.data_dir),
        "TOCSIN_REGION_REGISTRY": str(settings.region_registry),
        "TOCSIN_METRICS_PORT": str(settings.metrics_port),
        "TOCSIN_METRICS_ADDR": settings.metrics_addr,
        "TOCSIN_BATCH_WITHIN_S": str(settings.batch_within_s),
        "TOCSIN_BROKER_UNAVAILABLE_LIMIT_S": str(settings.broker_unavailable_limit_s),
        "TOCSIN_CHECKPOINT_INTERVAL_S": str(settings.checkpoint_interval_s),
    })
    for name in ("alertmanager_url", "grafana_url"):
        value = getattr(settings, name)
        if value:
            env[f"TOCSIN_{name.upper()}"] = value
    env["TOCSIN_SECURITY_PROTOCOL"] = settings.security_protocol
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "sasl_username"):
        value = getattr(settings, name)
        if value:
            env[f"TOCSIN_{name.upper()}"] = str(value)
    if settings.sasl_password is not None:  # handed to the child only, never printed
        env["TOCSIN_SASL_PASSWORD"] = settings.sasl_password.get_secret_value()
    if settings.checkpoint_key is not None:  # handed to the child only, never printed
        env["TOCSIN_CHECKPOINT_KEY"] = settings.checkpoint_key.get_secret_value()
    if settings.grafana_token is not None:  # handed to the child only, never printed
        env["TOCSIN_GRAFANA_TOKEN"] = settings.grafana_token.get_secret_value()
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "--loglevel", "info"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def _watch_warnings(settings: TocsinSettings, sink: list[Warning], progress: Progress,
                          stop: asyncio.Event, arrived: dict[str, float]) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        await assign_all(consumer, topic_name(settings, WARNINGS))
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300)
            for msgs in batch.values():
                for m in msgs:
                    w = Warning.model_validate_json(m.value)
                    arrived.setdefault(w.warning_id, time.perf_counter())
                    sink.append(w)
                    style = SEVERITY_STYLE.get(w.severity, "white")
                    progress.console.print(
                        f"[{style}]⚠ {w.status.upper():8}[/] {w.warning_id} v{w.version} "
                        f"[bold]{w.region}[/] {w.scenario} {w.severity}/{w.certainty} "
                        f"score={w.score:.1f} depts={'+'.join(w.departments)} "
                        f"first_seen={w.first_seen:%a %H:%M}"
                    )
    finally:
        await consumer.stop()


async def wait_drained(settings: TocsinSettings, timeout: float) -> bool:
    topics = [topic_name(settings, t) for t in (*SOURCE_TOPICS.values(), ANOMALIES)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lag = await group_lag(settings, settings.app_id, topics)
        if lag == 0:
            return True
        await asyncio.sleep(0.5)
    return False


async def run_pipeline_live(
    settings: TocsinSettings, events_path: Path, truth: list[TruthIncident],
    registry: RegionRegistry, speed: float, console: Console, n_lines: int,
    workdir: Path, drain_timeout: float = 120.0,
) -> DemoResult:
    """Start a worker, replay the file into the topics, collect warnings, score them."""
    t0 = time.monotonic()
    decisive = _decisive_lines(settings, registry, events_path)
    worker = start_worker(settings, workdir / "worker.log")
    warnings: list[Warning] = []
    produced: dict[str, float] = {}
    arrived: dict[str, float] = {}
    stop = asyncio.Event()
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("{task.fields[clock]}"),
                        TimeElapsedColumn(), console=console, transient=False)
    try:
        with progress:
            task = progress.add_task("replaying", total=n_lines, clock="")
            watcher = asyncio.create_task(_watch_warnings(settings, warnings, progress, stop,
                                                          arrived))
            current = [0]

            def lines() -> Iterator[ReplayLine]:
                for ln in read_replay(events_path):
                    current[0] = ln.lineno
                    yield ln

            def on_sent(n: int, et: float | None) -> None:
                for wid in decisive.get(current[0], ()):
                    produced[wid] = time.perf_counter()
                clock = f"{datetime.fromtimestamp(et, UTC):%a %d %b %H:%M}" if et else None
                if clock:
                    progress.update(task, advance=n, clock=clock)
                else:
                    progress.advance(task, n)

            await produce(settings, lines(), speed, on_sent)
            progress.update(task, description="draining")
            drained = await wait_drained(settings, drain_timeout)
            if worker.poll() is not None:
                console.print(f"[red]the worker exited early (code {worker.returncode}); "
                              f"see {workdir / 'worker.log'}[/]")
            elif not drained:
                console.print("[yellow]the worker did not catch up in time; scoring what "
                              "arrived[/]")
            await asyncio.sleep(1.5)
            stop.set()
            await watcher
    finally:
        stop_process(worker)
    # limit pre-warnings are on tocsin.warnings (and CAP) too, but are not incidents
    report = score([w for w in warnings if w.scenario != PREWARNING], truth, registry)
    cap = check_alerts(await read_topic(settings, topic_name(settings, WARNINGS_CAP)), CAP_XSD)
    latency = {w: arrived[w] - t for w, t in produced.items() if w in arrived}
    return DemoResult(report, warnings, time.monotonic() - t0, cap, latency)


def _decisive_lines(settings: TocsinSettings, registry: RegionRegistry,
                    events_path: Path) -> dict[int, list[str]]:
    """Line number -> the warnings whose decisive record it is (in-process replay)."""
    pipe = Pipeline(settings, registry)
    out: dict[int, list[str]] = {}
    for wid, ln in decisive_records(pipe, read_replay(events_path)).items():
        out.setdefault(ln.lineno, []).append(wid)
    return out


#: the demo's incident table: the eval replay table's, with the start (dropped when narrow)
DEMO_COLS = incident_cols("found\nafter\nlatency", (Col("start (UTC)", drop=1),))


def incident_table(result: DemoResult, width: int) -> Table:
    """The injected incidents (then the real-time tail's) with their warnings, no wider
    than ``width``: ids whole, other cells wrapped, the start dropped if need be. Under
    each delay (event time), the wall-clock latency of the incident's first warning."""
    rows = []
    for p in result.report["per_incident"]:
        lat = [result.latency[w] for w in p["warnings"] if w in result.latency]
        mine = match_rows(p, (p["start"][:16].replace("T", " "),))
        if lat:
            mine[0][2] += f"\n[dim]{min(lat):.2f} s[/]"
        rows += mine
    rows += tail_rows(result.tail)
    return fit_table("Injected incidents: found after (h:mm of event time from onset; "
                     "below, the wall-clock latency) or NO; noise incidents quiet or warned",
                     DEMO_COLS, rows, width)


def print_report(console: Console, result: DemoResult) -> None:
    r = result.report
    console.print(incident_table(result, console.width))
    for line in misfit_lines(r["per_incident"]):
        console.print(line, highlight=False)
    console.print(unmatched_table(r, console.width))
    print_tail(console, result.tail)
    med = r["median_delay_s"]
    console.print(
        f"recall {r['recall']:.2f} ({r['detected']}/{r['incidents']} cross-department), "
        f"precision {r['precision']:.2f}, {r['warnings']} warnings, "
        f"{r['false_warnings']} unmatched, {r['mismatched_matches']} matches that do not "
        f"fit their incident, median delay "
        f"{'n/a' if med is None else format_hmm(med)} (h:mm) of event time, "
        f"{result.seconds:.0f} s wall clock"
    )
    c = result.cap
    if c is not None:
        how = "valid against the OASIS XSD" if c.schema_validated else "well-formed"
        if c.ok and c.alerts == len(result.warnings):
            console.print(f"CAP 1.2: {c.alerts} alerts on {WARNINGS_CAP}, one per warning "
                          f"version, all {how}, every Update/Cancel referencing all earlier "
                          "versions")
        else:
            console.print(f"[red]CAP 1.2: {c.alerts} alerts for {len(result.warnings)} warning "
                          f"versions; problems: {'; '.join(c.problems[:5]) or 'count differs'}[/]")


def run_demo(seed: int, speed: float, days: float, broker: str | None,
             console: Console) -> DemoResult:
    base = TocsinSettings()
    registry = RegionRegistry.from_csv(base.region_registry)
    sim = simulate(SimConfig(seed=seed, days=days), registry)
    with tempfile.TemporaryDirectory(prefix="tocsin-demo-") as tmp:
        workdir = Path(tmp)
        events_path = workdir / "events.jsonl"
        sim.write(events_path, workdir / "truth.json")
        truth = [TruthIncident.model_validate(i) for i in sim.truth()]
        console.print(f"[bold]Tocsin demo[/]: seed {seed}, {days:g} simulated days, "
                      f"{len(sim.events)} records ({sim.n_malformed} malformed, "
                      f"{sim.n_duplicates} re-delivered), {len(registry)} regions, "
                      f"{sum(i.cross_department for i in sim.incidents)} cross-department and "
                      f"{sum(not i.cross_department for i in sim.incidents)} single-department "
                      "incidents injected")
        ctx: Any = contextlib.nullcontext() if broker else EmbeddedBroker(
            log_path=workdir / "tansu.log")
        with ctx as emb:
            bootstrap = broker or emb.bootstrap
            settings = base.model_copy(update={
                "broker": bootstrap, "app_id": f"tocsin-demo-{uuid.uuid4().hex[:8]}",
                "data_dir": workdir / "data",
                # the demo waits for the committed offsets: commit (with a checkpoint) often
                "checkpoint_interval_s": min(base.checkpoint_interval_s, 2.0),
            })
            console.print(f"broker {bootstrap} ({'external' if broker else 'embedded Tansu'}), "
                          f"app id {settings.app_id}")
            create_topics(settings)
            result: DemoResult = run_async(run_pipeline_live(
                settings, events_path, truth, registry, speed, console, len(sim.events),
                workdir))
            result.tail = _live_tail(settings, registry, seed, workdir, console)
        print_report(console, result)
    return result


def _live_tail(settings: TocsinSettings, registry: RegionRegistry, seed: int, workdir: Path,
               console: Console) -> TailResult | None:
    """The real-time tail (``streams.tools.demo_live``); a failure is reported, not fatal
    (the demo's verdict is the week's)."""
    from streams.core.errors import TocsinError

    console.print("[bold]real-time tail[/]: a live city, event time = wall clock")
    try:
        tail: TailResult = run_async(run_tail(settings, registry, seed, workdir,
                                              lambda m: console.print(m)))
    except TocsinError as e:
        console.print(f"[yellow]the real-time tail did not run: {e}[/]")
        return None
    return tail


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
