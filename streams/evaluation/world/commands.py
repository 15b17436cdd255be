"""What ``tocsin simulate --world random`` and ``tocsin eval zoo`` do (``streams/cli.py``
only wires the options): bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from streams.core.errors import EXIT_USAGE
from streams.evaluation.durations import format_hmm
from streams.evaluation.world.zoo import METHODS, ZooConfig, fmt, run_zoo

WORLDS = ("classic", "random")


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def simulate_world(world: str, seed: int, days: float | None, out: Path | None,
                   truth: Path | None, regions_out: Path | None, effect_scale: float,
                   to_kafka: bool, speed: float) -> None:
    """Draw the world of ``seed``, simulate it and write events, truth and regions."""
    from streams.evaluation.world.draw import check_params, draw_world
    from streams.evaluation.world.generate import generate

    if world not in WORLDS:
        fail(f"--world must be one of {', '.join(WORLDS)}, got {world!r}")
    if out is None and not to_kafka:
        fail("say where to write: --out FILE.jsonl and/or --to-kafka")
    days = 14.0 if days is None else days
    try:
        check_params(days, effect_scale)
    except ValueError as e:
        fail(str(e))
    sim = generate(draw_world(seed, days, effect_scale))
    st = sim.stats
    with tempfile.TemporaryDirectory() as tmp:
        path = out or Path(tmp) / "events.jsonl"
        try:
            sim.write(path, truth, regions_out)
        except OSError as e:
            fail(f"cannot write: {e.strerror or e}")
        typer.echo(
            f"world {seed}: {st['regions']} regions, {st['stations']} stations, "
            f"{st['shops']} shops; {st['events']} events ({st['malformed']} malformed, "
            f"{st['duplicates']} re-delivered, {st['late']} late); {st['incidents']} "
            f"incidents, {st['decoys']} decoys" + (f" -> {out}" if out else "")
            + (f", truth -> {truth}" if truth else "")
            + (f", regions -> {regions_out}" if regions_out else ""), err=True)
        if regions_out is None:
            typer.echo("note: the regions are drawn; pass --regions-out to replay or score "
                       "these events (tocsin eval replay --regions ...)", err=True)
        if to_kafka:
            from streams.core.settings import load_settings
            from streams.tools.replay import replay_file

            stats = replay_file(load_settings(), path, speed)
            typer.echo(f"produced {stats.sent}", err=True)


def eval_zoo(worlds: int, seed_base: int, effect_scale: float, days: float, jobs: int,
             as_json: bool) -> None:
    try:
        cfg = ZooConfig(worlds=worlds, seed_base=seed_base, effect_scale=effect_scale,
                        days=days, jobs=jobs)
    except ValueError as e:
        fail(str(e))
    console = Console()
    err = Console(stderr=True)

    def progress(row: dict[str, Any]) -> None:
        if not as_json:
            err.print(f"world {row['seed']}: {row['events']} events, {row['seconds']} s",
                      highlight=False)

    report = run_zoo(cfg, progress)
    if as_json:
        print(json.dumps(report))
        return
    render(report, console)


def _cell(m: dict[str, Any]) -> str:
    return f"{fmt(m['recall'])} {fmt(m['precision'])} {_hmm(m['median_delay_h']):>5}"


def _hmm(hours: float | None) -> str:
    return "-" if hours is None else format_hmm(hours * 3600)


def _table(title: str) -> Table:
    """A compact table (two spaces between columns, no edges): fits 80 columns."""
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                 collapse_padding=True)


def render(report: dict[str, Any], console: Console) -> None:
    """The zoo report as rich tables."""
    table = _table("World zoo: recall, precision, median delay (h:mm) per world")
    for col in ("seed", "reg", "inc", "dec", *METHODS):
        table.add_column(col, justify="right", no_wrap=True)
    for w in report["worlds"]:
        table.add_row(str(w["seed"]), str(w["regions"]), str(w["incidents"]),
                      str(w["decoys"]), *(_cell(w[m]) for m in METHODS))
    console.print(table)
    overall = _table("Pooled over all worlds (FP/10rw: false per 10 region-weeks)")
    for col in ("method", "inc", "found", "recall", "warn", "false", "prec", "delay",
                "FP/10rw", "decoys"):
        overall.add_column(col, justify="right", no_wrap=True)
    for m in METHODS:
        o = report["overall"][m]
        overall.add_row(m, str(o["incidents"]), str(o["detected"]), fmt(o["recall"]),
                        str(o["warnings"]), str(o["false_warnings"]), fmt(o["precision"]),
                        _hmm(o["median_delay_h"]), fmt(o["false_per_10_region_weeks"]),
                        str(o["decoys_warned"]))
    console.print(overall)
    scen = _table("Detected incidents by scenario")
    for col in ("scenario", "incidents", *METHODS):
        scen.add_column(col, justify="right", no_wrap=True)
    for name, s in report["by_scenario"].items():
        scen.add_row(name, str(s["incidents"]), *(str(s[m]) for m in METHODS))
    console.print(scen)
    fp = report["false_per_10_region_weeks_no_incident"]
    worst = report["worst_world"]
    console.print(
        f"Tocsin's recall and precision both >= naive's in "
        f"{report['tocsin_ge_naive_share']:.0%} of worlds. False warnings per 10 "
        f"region-weeks on the {report['no_incident_worlds']} world(s) without incidents: "
        + ", ".join(f"{m} {fmt(fp[m])}" for m in METHODS)
        + f". Worst world for Tocsin: seed {worst['seed']} (F1 {fmt(worst['f1'])}, "
        f"recall {fmt(worst['recall'])}, precision {fmt(worst['precision'])}). "
        f"{report['seconds']} s.", highlight=False)
