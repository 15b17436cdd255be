"""The ``tocsin`` command."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from streams.core.errors import EXIT_USAGE, TocsinError, validation_message

app = typer.Typer(help="Tocsin: cross-department early warning on Kafka.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
topics_app = typer.Typer(help="Topic catalogue.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
console = Console()
err = Console(stderr=True)

grafana_app = typer.Typer(help="Grafana dashboards and warning annotations.",
                          no_args_is_help=True)
app.add_typer(grafana_app, name="grafana")


@grafana_app.command("push")
def grafana_push(
    url: Annotated[str | None, typer.Option(
        help="Grafana base URL (default: TOCSIN_GRAFANA_URL).")] = None,
    token: Annotated[str | None, typer.Option(
        help="Service-account token (default: TOCSIN_GRAFANA_TOKEN); never printed.",
        show_default=False)] = None,
    folder_uid: Annotated[str | None, typer.Option(
        help="Folder to put the dashboards in (default: General).")] = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Directory of dashboard JSON files (default: the packaged "
        "dashboards/json).")] = None,
) -> None:
    """Create or overwrite the dashboards in Grafana (POST /api/dashboards/db)."""
    from streams.core.errors import ConfigError
    from streams.publish.grafana import dashboard_files, push_dashboards

    try:
        s = _settings()
        base = url or s.grafana_url
        if not base:
            raise ConfigError("no Grafana URL: pass --url or set TOCSIN_GRAFANA_URL")
        secret = token if token is not None else (
            s.grafana_token.get_secret_value() if s.grafana_token is not None else None)
        if directory is None:  # the packaged dashboards, installed beside streams
            directory = Path(__file__).resolve().parents[2] / "dashboards" / "json"
        files = dashboard_files(directory)
        pushed = push_dashboards(base, secret, files, folder_uid)
    except TocsinError as e:
        from rich.markup import escape

        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from e
    for path, where in zip(files, pushed, strict=True):
        typer.echo(f"pushed {path.name} -> {where}")


def _settings(**overrides: object):  # type: ignore[no-untyped-def]
    from streams.core.settings import load_settings

    return load_settings(**overrides)


@app.command()
def schema(topic: Annotated[str | None, typer.Option(help="Only this topic's schema.")] = None
           ) -> None:
    """Print the JSON Schema of each message type, keyed by topic."""
    from streams.core.schemas import json_schemas

    schemas = json_schemas()
    if topic is not None:
        if topic not in schemas:
            raise TocsinError(f"no schema for topic {topic!r}; known: {', '.join(schemas)}")
        schemas = {topic: schemas[topic]}
    print(json.dumps(schemas, indent=2))


@topics_app.command("create")
def topics_create(broker: Annotated[str | None, typer.Option(help="host:port[,...]")] = None
                  ) -> None:
    """Create the catalogue's topics (idempotent)."""
    from streams.core.topics import create_topics

    for name, outcome in create_topics(_settings(broker=broker)).items():
        console.print(f"{outcome:8} {name}")


@topics_app.command("list")
def topics_list() -> None:
    """Print the topic catalogue."""
    from streams.core.topics import CATALOGUE

    s = _settings()
    for t in CATALOGUE:
        console.print(f"{s.topic_prefix + t.name:32} partitions={t.partitions or s.partitions} "
                      f"retention={t.retention_ms // 3600000}h "
                      f"{'compacted' if t.compacted else 'delete'}  {t.description}")


@app.command()
def broker(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9092) -> None:
    """Run the embedded Tansu broker on loopback until interrupted."""
    from streams.tools.broker import EmbeddedBroker

    b = EmbeddedBroker(port=port).start()
    console.print(f"Tansu listening on {b.bootstrap}; Ctrl-C stops it")
    try:
        while b.proc is not None and b.proc.poll() is None:
            time.sleep(0.5)
        raise TocsinError(f"the broker exited with code {b.proc.returncode if b.proc else '?'}")
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


@app.command()
def worker(
    broker: Annotated[str | None, typer.Option(help="host:port[,...]")] = None,
    loglevel: Annotated[str, typer.Option(help="crit|error|warn|info|debug")] = "info",
) -> None:
    """Run a stream worker (all agents) against TOCSIN_BROKER."""
    from streams.core.regions import RegionRegistry
    from streams.runtime.worker import Worker

    s = _settings(broker=broker)
    registry = RegionRegistry.from_csv(s.region_registry)
    sys.argv = [sys.argv[0]]  # faust's own command line must not see ours
    Worker(s, registry).run(loglevel=loglevel)


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(help="Random seed (deterministic output).")] = 7,
    days: Annotated[float | None, typer.Option(
        help="Simulated days (default 7; 14 with --world random).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(help="Write events to this JSONL file.")] = None,
    truth: Annotated[Path | None, typer.Option(help="Write ground truth to this JSON file.")
                     ] = None,
    to_kafka: Annotated[bool, typer.Option(help="Produce to the topics instead.")] = False,
    effect_scale: Annotated[float, typer.Option(help="Scale every incident's effect.")] = 1.0,
    speed: Annotated[float, typer.Option(help="With --to-kafka: event-time speed-up, 0 = max.")
                     ] = 0.0,
    world: Annotated[str, typer.Option(
        metavar="[classic|random]", help="classic: this simulator on the region registry; "
        "random: a world whose structure is drawn from the seed (streams/world/).")
                     ] = "classic",
    regions_out: Annotated[Path | None, typer.Option(
        help="With --world random: write the drawn region registry CSV here.")] = None,
) -> None:
    """Generate department streams with injected incidents and their ground truth."""
    import tempfile

    if world != "classic":  # a drawn world (refuses an unknown --world)
        from streams.evaluation.world.commands import simulate_world

        simulate_world(world, seed, days, out, truth, regions_out, effect_scale, to_kafka,
                       speed)
        return

    from streams.core.regions import RegionRegistry
    from streams.tools.replay import replay_file
    from streams.tools.simulate import SimConfig
    from streams.tools.simulate import simulate as run_sim

    if out is None and not to_kafka:
        raise TocsinError("say where to write: --out FILE.jsonl and/or --to-kafka")
    s = _settings()
    sim = run_sim(SimConfig(seed=seed, days=7.0 if days is None else days,
                            effect_scale=effect_scale),
                  RegionRegistry.from_csv(s.region_registry))
    with tempfile.TemporaryDirectory() as tmp:
        path = out or Path(tmp) / "events.jsonl"
        sim.write(path, truth)
        err.print(f"{len(sim.events)} events ({sim.n_malformed} malformed, {sim.n_duplicates} "
                  f"re-delivered), {len(sim.incidents)} incidents"
                  + (f" -> {out}" if out else "") + (f", truth -> {truth}" if truth else ""))
        if to_kafka:
            stats = replay_file(s, path, speed)
            err.print(f"produced {stats.sent}")


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="JSONL file, one message per line with 'source'.")],
    speed: Annotated[float, typer.Option(help="Event-time speed-up, 0 = as fast as possible.")
                     ] = 0.0,
    broker: Annotated[str | None, typer.Option(help="host:port[,...]")] = None,
) -> None:
    """Produce a replay file to the source topics (bad lines go to the dead-letter topic)."""
    from streams.tools.replay import replay_file

    stats = replay_file(_settings(broker=broker), file, speed)
    console.print(f"sent {stats.sent}, {stats.bad_lines} bad line(s) to the dead-letter topic")


@app.command()
def explain(
    warning_id: Annotated[str, typer.Argument(help="The warning's id (tw-<region>-...).")],
    file: Annotated[Path | None, typer.Option(
        help="Read warnings from this JSONL file (e.g. eval replay --warnings-out) instead "
        "of the warnings topic.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the versions as JSON.")
                       ] = False,
    detail: Annotated[bool, typer.Option(help="Also the statistics: p-values, scores, "
                                         "parameters, source events.")] = False,
    broker: Annotated[str | None, typer.Option(help="host:port[,...]")] = None,
) -> None:
    """Print a warning's versions, evidence, decisions and audit trail."""
    import asyncio

    from streams.core.topics import WARNINGS, topic_name
    from streams.runtime.kafka_util import read_topic
    from streams.tools.explain import officer_zone, render, versions_of

    if file is not None:
        try:
            raw = file.read_bytes().splitlines()
        except OSError as e:
            raise TocsinError(f"cannot read {file}: {e.strerror or e}") from e
    else:
        s = _settings(broker=broker)
        raw = asyncio.run(read_topic(s, topic_name(s, WARNINGS)))
    versions = versions_of(warning_id, raw)
    if as_json:
        print(json.dumps([json.loads(w.model_dump_json()) for w in versions], indent=2,
                         ensure_ascii=False))
    else:
        typer.echo(render(versions, detail, officer_zone()))


@app.command()
def feedback(
    warning_id: Annotated[str, typer.Argument(help="The warning's id.")],
    action: Annotated[str, typer.Argument(help="acknowledge | confirm | dismiss | resolve")],
    region: Annotated[str, typer.Option(help="The warning's region.")],
    by: Annotated[str, typer.Option(help="Your operator id (not your name).")],
    reason: Annotated[str | None, typer.Option(help="Why (required to dismiss).")] = None,
    broker: Annotated[str | None, typer.Option(help="host:port[,...]")] = None,
) -> None:
    """Send a duty officer's decision on a warning to tocsin.feedback."""
    import asyncio
    from datetime import UTC, datetime

    from detectors.fusion.feedback import Decision, InvalidDecision
    from streams.core.schemas import Feedback, check_feedback
    from streams.core.topics import FEEDBACK, topic_name

    try:
        fb = Feedback(warning_id=warning_id, region=region, action=action,
                      by=by, at=datetime.now(UTC), reason=reason)
        check_feedback(fb)
        Decision(fb.warning_id, fb.action, fb.by, fb.at.timestamp(), fb.reason)
    except (ValidationError, InvalidDecision, ValueError) as e:
        raise TocsinError(f"not sent: {validation_message(e)}") from e
    s = _settings(broker=broker)

    async def send() -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**s.kafka_client_kwargs())
        await producer.start()
        try:
            await producer.send_and_wait(topic_name(s, FEEDBACK), fb.model_dump_json().encode(),
                                         key=fb.region.encode())
        finally:
            await producer.stop()

    asyncio.run(send())
    console.print(f"sent: {action} {warning_id} by {by}")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Scenario seed.")] = 14,
    days: Annotated[float, typer.Option(help="Simulated days.")] = 7.0,
    speed: Annotated[float, typer.Option(help="Event-time speed-up (seconds per second).")
                     ] = 20000.0,
    broker: Annotated[str | None, typer.Option(
        help="Use this broker instead of starting the embedded one.")] = None,
) -> None:
    """Embedded broker + worker + a replayed simulated week, watched live; exit 0 only if
    every cross-department incident was detected."""
    from streams.tools.demo import run_demo

    result = run_demo(seed, speed, days, broker, console)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def bench(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    events: Annotated[int, typer.Option(help="Pre-produced records (a realistic mix).")
                      ] = 120_000,
    partitions: Annotated[int, typer.Option(help="Partitions per topic.")] = 4,
    latency_s: Annotated[float, typer.Option(help="Seconds of the half-load latency run.")
                         ] = 20.0,
    series: Annotated[str, typer.Option(help="Tracked-series counts for the memory figures "
                                        "(comma separated; empty: skip).")
                      ] = "10000,100000,1000000",
    variants: Annotated[bool, typer.Option(help="Measure each faust setting on its own.")
                        ] = True,
    live: Annotated[bool, typer.Option(
        "--live", help="Instead: wall-clock latency of warnings and Alertmanager alerts in "
        "real time (simulated cities warmed with days of history, then minutes of live "
        "records with incident onsets; needs prometheus-alertmanager).")] = False,
    seed: Annotated[int, typer.Option(help="With --live: the worlds' seed.")] = 1,
    cities: Annotated[int, typer.Option(help="With --live: simulated cities (a worker each, "
                                        "five incidents each).")] = 6,
    live_s: Annotated[float, typer.Option(help="With --live: seconds of real time.")] = 300.0,
    time_scale: Annotated[float, typer.Option(
        help="With --live: incidents run this many times faster than real ones.")] = 120.0,
) -> None:
    """Measure, in one run on one broker: the raw aiokafka limit, faust's default and tuned
    no-op agents, the full pipeline, latency at half load, memory per tracked series. With
    --live: warning and alert latency in real time (docs/performance.md, Live latency)."""
    if live:
        from streams.bench.live import LiveBenchConfig, run_live

        res = run_live(LiveBenchConfig(seed=seed, cities=cities, partitions=partitions,
                                       live_s=live_s, time_scale=time_scale,
                                       log=lambda m: err.print(m)))
        _print_bench(res, as_json)
        return
    from streams.bench.run import BenchConfig, run

    try:
        counts = tuple(int(x) for x in series.split(",") if x.strip())
    except ValueError as exc:
        raise TocsinError(f"--series: comma-separated whole numbers, got {series!r}") from exc
    res = run(BenchConfig(events=events, partitions=partitions, latency_s=latency_s,
                          series=counts, variants=variants, log=lambda m: err.print(m)))
    _print_bench(res, as_json)


def _print_bench(res: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        from streams.tools.eval_cli import print_report

        print_report(res, False, tuple(k for k in res if not isinstance(res[k], dict | list)))


def _add_eval() -> None:
    from streams.tools.eval_cli import eval_app

    app.add_typer(eval_app, name="eval")


_add_eval()


def _add_signals() -> None:
    from streams.tools.signals_cli import signals

    app.command("signals")(signals)


_add_signals()


def main() -> None:
    try:
        app()
    except TocsinError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", soft_wrap=True)  # one line, unwrapped
        sys.exit(e.exit_code)
    except ValidationError as e:
        err.print(f"[red]configuration error:[/] {e}")
        sys.exit(EXIT_USAGE)
