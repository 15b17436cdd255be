"""``tocsin eval``: score detection offline (replay files, NAB, the world zoo)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

eval_app = typer.Typer(help="Offline evaluation.", no_args_is_help=True,
                       epilog="Example: tocsin eval replay --events events.jsonl --truth "
                       "truth.json")
console = Console()


@eval_app.command("replay", epilog="Example: tocsin eval replay --events events.jsonl "
                  "--truth truth.json --baseline naive")
def eval_replay(
    events: Annotated[Path, typer.Option(help="Replay JSONL file.")],
    truth: Annotated[Path, typer.Option(help="Ground-truth JSON list of incidents.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    warnings_out: Annotated[Path | None, typer.Option(help="Write every warning version.")
                            ] = None,
    regions: Annotated[Path | None, typer.Option(help="Region registry CSV.")] = None,
    baseline: Annotated[str, typer.Option(
        metavar="[tocsin|single|naive]",
        help="What to score: tocsin (the pipeline), single (a warning per anomaly episode) "
             "or naive (hourly z-scores / Poisson tails, two departments within 6 h); "
             "see streams/evaluation/baselines.py.")] = "tocsin",
    dead_letters_out: Annotated[Path | None, typer.Option(
        help="Write every dead-lettered line as JSONL: line, source, reason, error_type "
        "(the reasons tocsin validate prints).")] = None,
) -> None:
    """Run detection and correlation in-process over a replay file and score it."""
    from streams.core.regions import RegionRegistry
    from streams.core.settings import load_settings
    from streams.evaluation.baselines import BASELINES
    from streams.evaluation.replay_score import evaluate_replay, load_truth
    from streams.ingest.rejections import Rejection
    from streams.tools.validate_cli import write_rejections

    if baseline not in BASELINES:
        raise typer.BadParameter(f"{baseline!r} is not one of {', '.join(BASELINES)}",
                                 param_hint="'--baseline'")
    from streams.tools.cli_common import readable, writable

    readable(events, "the replay file")
    incidents = load_truth(truth)  # every file is checked before anything is built
    if regions is not None:
        readable(regions, "the --regions file")
    writable(dead_letters_out, "--dead-letters-out")
    writable(warnings_out, "--warnings-out")
    s = load_settings(region_registry=regions)
    if s.pseudonym_key is None:  # pseudonyms are never shown here: no warning about linking
        import secrets

        from pydantic import SecretStr

        s = s.model_copy(update={"pseudonym_key": SecretStr(secrets.token_hex(32))})
    registry = RegionRegistry.from_csv(s.region_registry)
    rejected: list[Rejection] = []
    report, warnings = evaluate_replay(events, incidents, s, registry, baseline, rejected)
    if dead_letters_out is not None:
        write_rejections(dead_letters_out, rejected)
    if warnings_out is not None:
        with warnings_out.open("w", encoding="utf-8") as f:
            for w in warnings:
                f.write(w.model_dump_json() + "\n")
    from streams.evaluation.report_table import print_replay

    print_replay(report, events, as_json, Console(), Console(stderr=True))


def print_report(report: dict[str, Any], as_json: bool, keys: tuple[str, ...]) -> None:
    """One JSON object on stdout, or the chosen keys as a two-column listing."""
    if as_json:
        print(json.dumps(report))
        return
    for k in keys:
        console.print(f"{k:24} {report[k]}")


@eval_app.command("nab", epilog="Example: tocsin eval nab --data NAB/data --labels "
                  "NAB/labels/combined_windows.json")
def eval_nab(
    data: Annotated[Path, typer.Option(help="NAB data directory (<category>/<file>.csv).")],
    labels: Annotated[Path, typer.Option(help="NAB labels/combined_windows.json.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[Path | None, typer.Option(
        help="Write NAB-layout results: DIR/<category>/tocsin_<file>.csv.")] = None,
) -> None:
    """Score the sensor detector on a NAB corpus (each point scored before it is learned)."""
    from detectors.signals.sensor import SensorEnsemble
    from streams.evaluation.nab import evaluate, load_corpus, run_detector, write_results

    files = load_corpus(data, labels)
    scores, cost = run_detector(files, SensorEnsemble)
    report = evaluate(files, scores)
    report.update({"us_per_event": round(cost["us_per_event"], 2),
                   "bytes_per_series": int(cost["bytes_per_series"])})
    if out is not None:
        write_results(out, files, scores)
    print_report(report, as_json, ("standard", "reward_low_fp", "reward_low_fn", "files",
                                    "us_per_event", "bytes_per_series"))


@eval_app.command("prewarn", epilog="Example: tocsin eval prewarn --seeds 101,102 --days 30")
def eval_prewarn(
    seeds: Annotated[str, typer.Option(help="World seeds, comma-separated.")] = "101,102,103",
    days: Annotated[float, typer.Option(help="Simulated days per world.")] = 30.0,
    stations: Annotated[int, typer.Option(help="Stations per limited metric.")] = 3,
    rises: Annotated[int, typer.Option(
        help="Rises past the limit (and as many near misses) per station-month.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Limit pre-warnings on simulated station-months: lead time, share of limit crossings
    pre-warned, false pre-warnings per station-month (streams/evaluation/prewarn.py)."""
    from streams.evaluation.prewarn import evaluate

    try:
        ids = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{seeds!r} is not a comma-separated list of integers",
                                 param_hint="'--seeds'") from None
    if not ids or days < 1 or stations < 1 or rises < 1:
        raise typer.BadParameter("need at least one seed, --days >= 1, --stations >= 1 and "
                                 "--rises >= 1")
    report = evaluate(ids, days, stations, rises)
    if as_json:
        print(json.dumps(report))
        return
    total = report["total"]
    assert isinstance(total, dict)
    print_report(total, False, tuple(total))


@eval_app.command("zoo", epilog="Example: tocsin eval zoo --worlds 20 --jobs 4")
def eval_zoo(
    worlds: Annotated[int, typer.Option(help="How many random worlds (seeds seed-base...).")],
    seed_base: Annotated[int, typer.Option(help="Seed of the first world.")] = 1000,
    effect_scale: Annotated[float, typer.Option(help="Scale every incident's strength.")
                            ] = 1.0,
    days: Annotated[float, typer.Option(help="Simulated days per world.")] = 14.0,
    jobs: Annotated[int, typer.Option(help="Worlds run in parallel processes.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score Tocsin and the naive and single baselines on random worlds
    (streams/evaluation/world/)."""
    from streams.evaluation.world.commands import eval_zoo as run

    run(worlds, seed_base, effect_scale, days, jobs, as_json)


