"""The ``tocsin`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from streams.core.errors import TocsinError, validation_message
from streams.tools.cli_common import BrokerOption, TocsinGroup, options, readable, run
from streams.tools.cli_common import settings_with as _settings

app = typer.Typer(help="Tocsin: cross-department early warning on Kafka.", no_args_is_help=True,
                  rich_markup_mode=None,
                  pretty_exceptions_enable=False, cls=TocsinGroup, callback=options,
                  epilog="Example: tocsin demo")
console = Console()
err = Console(stderr=True, soft_wrap=True)

@app.command(epilog="Example: tocsin schema --topic replay")
def schema(topic: Annotated[str | None, typer.Option(
        help="Only this topic's schema (e.g. tocsin.env.readings); 'replay': a replay file's "
        "line (a record with its 'source'); 'signals': the signal catalogue's metrics, "
        "categories and units.")] = None,
           ) -> None:
    """Print the typed JSON Schema of each message type, keyed by topic (without
    TOCSIN_TOPIC_PREFIX), then 'replay' and 'signals'; the regions, metrics and units are
    those of the region registry and signal catalogue in force.

    """
    from streams.core.contract import contract

    schemas = contract(_settings())
    if topic is not None:
        if topic not in schemas:
            raise TocsinError(f"no schema for topic {topic!r}; known: {', '.join(schemas)}")
        schemas = {topic: schemas[topic]}
    print(json.dumps(schemas, indent=2, ensure_ascii=False))


@app.command(epilog="Example: tocsin broker --port 9092 & TOCSIN_BROKER=127.0.0.1:9092 "
             "tocsin worker")
def broker(port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")
                           ] = 9092) -> None:
    """Run the embedded Tansu broker on loopback until interrupted (Ctrl-C or SIGTERM stop
    it and its Tansu process)."""
    from streams.tools.broker import serve

    serve(port, typer.echo)


@app.command(epilog="Example: TOCSIN_PARTITIONS=8 tocsin worker --broker k1:9092,k2:9092")
def worker(
    broker: BrokerOption = None,
    loglevel: Annotated[str, typer.Option(help="crit|error|warn|info|debug")] = "info",
) -> None:
    """Run a stream worker (all agents). It waits for the broker up to
    TOCSIN_BROKER_UNAVAILABLE_LIMIT_S at start, as when running, then exits 69."""
    from streams.core.regions import RegionRegistry
    from streams.runtime.worker import Worker

    s = _settings(broker=broker)
    registry = RegionRegistry.from_csv(s.region_registry)
    sys.argv = [sys.argv[0]]  # faust's own command line must not see ours
    Worker(s, registry).run(loglevel=loglevel)


@app.command(epilog="Example: tocsin simulate --days 7 --out events.jsonl --truth "
             "truth.json")
def simulate(
    seed: Annotated[int, typer.Option(help="Random seed (deterministic output).")] = 7,
    days: Annotated[float | None, typer.Option(
        help="Simulated days (default 7, more than 3.5; 14 with --world random).",
        show_default=False)] = None,
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
    for path in (out, truth):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
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


@app.command(epilog="Example: tocsin replay events.jsonl --speed 3600 --broker 127.0.0.1:9092")
def replay(
    file: Annotated[Path, typer.Argument(help="JSONL file, one message per line with 'source'.")],
    speed: Annotated[float, typer.Option(help="Event-time speed-up, 0 = as fast as possible.")
                     ] = 0.0,
    broker: BrokerOption = None,
) -> None:
    """Produce a replay file to the source topics (bad lines go to the dead-letter topic)."""
    from streams.tools.replay import replay_file

    stats = replay_file(_settings(broker=broker), readable(file, "the replay file"), speed)
    typer.echo(f"sent {stats.sent}, {stats.bad_lines} bad line(s) to the dead-letter topic")


@app.command(epilog="Example: tocsin explain tw-r1-3f2a9c --file warnings.jsonl")
def explain(
    warning_id: Annotated[str, typer.Argument(help="The warning's id (tw-<region>-...).")],
    file: Annotated[Path | None, typer.Option(
        help="Read warnings from this JSONL file (e.g. eval replay --warnings-out) instead "
        "of the warnings topic.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the versions as JSON.")
                       ] = False,
    detail: Annotated[bool, typer.Option(help="Also the statistics: p-values, scores, "
                                         "parameters, source events.")] = False,
    broker: BrokerOption = None,
) -> None:
    """Print a warning's versions, evidence, decisions and audit trail."""
    import asyncio

    from streams.core.topics import WARNINGS, topic_name
    from streams.runtime.kafka_util import read_topic
    from streams.tools.explain import officer_zone, render, versions_of

    if file is not None:
        raw = readable(file, "the warnings file").read_bytes().splitlines()
    else:
        s = _settings(broker=broker)
        raw = asyncio.run(read_topic(s, topic_name(s, WARNINGS), patient=False))
    versions = versions_of(warning_id, raw, None if file is None else str(file))
    if as_json:
        print(json.dumps([json.loads(w.model_dump_json()) for w in versions], indent=2,
                         ensure_ascii=False))
    else:
        typer.echo(render(versions, detail, officer_zone()))


@app.command(epilog="Example: tocsin feedback tw-r1-3f2a9c dismiss --region r1 --by op-17 "
             "--reason 'drill at the plant'")
def feedback(
    warning_id: Annotated[str, typer.Argument(help="The warning's id.")],
    action: Annotated[str, typer.Argument(help="acknowledge | confirm | dismiss | resolve")],
    region: Annotated[str, typer.Option(help="The warning's region.")],
    by: Annotated[str, typer.Option(help="Your operator id (not your name).")],
    reason: Annotated[str | None, typer.Option(help="Why (required to dismiss).")] = None,
    broker: BrokerOption = None,
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
        from streams.tools.replay import start_producer

        producer = await start_producer(s, patient=False)
        try:
            await producer.send_and_wait(topic_name(s, FEEDBACK), fb.model_dump_json().encode(),
                                         key=fb.region.encode())
        finally:
            await producer.stop()

    asyncio.run(send())
    typer.echo(f"sent: {action} {warning_id} by {by}")


@app.command(epilog="Example: tocsin demo --seed 14 --days 7")
def demo(
    seed: Annotated[int, typer.Option(help="Scenario seed.")] = 14,
    days: Annotated[float, typer.Option(help="Simulated days.")] = 7.0,
    speed: Annotated[float, typer.Option(help="Event-time speed-up (seconds per second).")
                     ] = 20000.0,
    broker: Annotated[str | None, typer.Option(
        help="host:port[,...] of a broker to use instead of starting the embedded one "
        "(default: the embedded one; TOCSIN_BROKER is not read).", show_default=False)
                      ] = None,
) -> None:
    """Embedded broker + worker + a replayed simulated week, watched live; exit 0 only if
    every cross-department incident was detected."""
    from streams.tools.demo import run_demo

    # tables fit the terminal; prose lines are not hard-wrapped, so a piped log keeps them whole
    result = run_demo(seed, speed, days, broker, Console(soft_wrap=True))
    raise typer.Exit(0 if result.ok else 1)


def _add_commands() -> None:
    """The commands defined in their own modules."""
    from streams.tools.bench_cli import bench
    from streams.tools.eval_cli import eval_app
    from streams.tools.grafana_cli import grafana_app
    from streams.tools.signals_cli import signals
    from streams.tools.topics_cli import topics_app
    from streams.tools.validate_cli import validate

    app.add_typer(topics_app, name="topics")
    app.add_typer(eval_app, name="eval")
    app.add_typer(grafana_app, name="grafana")
    app.command("signals", epilog="Example: TOCSIN_SIGNALS=my-signals.yaml tocsin signals "
                "--json")(signals)
    app.command("bench", epilog="Example: tocsin bench --events 20000 --series '' "
                "--no-variants")(bench)
    app.command("validate", epilog="Example: tocsin validate my-readings.jsonl --source env"
                )(validate)


_add_commands()


def main() -> None:
    run(app)
