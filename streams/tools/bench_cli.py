"""``tocsin bench``: throughput, latency and memory on an embedded broker, or the live
warning and alert latency (docs/performance.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from streams.core.errors import TocsinError

err = Console(stderr=True, soft_wrap=True)


def bench(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    events: Annotated[int, typer.Option(min=1, help="Pre-produced records (a realistic mix).")
                      ] = 120_000,
    partitions: Annotated[int, typer.Option(min=1, max=1024, help="Partitions per topic.")
                          ] = 4,
    latency_s: Annotated[float, typer.Option(
        min=1.0, help="Seconds of the half-load latency run.")] = 20.0,
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
    cities: Annotated[int, typer.Option(min=1, help="With --live: simulated cities (a worker "
                                        "each, five incidents each).")] = 6,
    live_s: Annotated[float, typer.Option(min=1.0, help="With --live: seconds of real time.")
                      ] = 300.0,
    time_scale: Annotated[float, typer.Option(
        min=1.0, help="With --live: incidents run this many times faster than real ones.")
                          ] = 120.0,
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
    if any(n < 1 for n in counts):
        raise TocsinError(f"--series: counts must be at least 1, got {series!r}")
    res = run(BenchConfig(events=events, partitions=partitions, latency_s=latency_s,
                          series=counts, variants=variants, log=lambda m: err.print(m)))
    _print_bench(res, as_json)


def _print_bench(res: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        from streams.tools.eval_cli import print_report

        print_report(res, False, tuple(k for k in res if not isinstance(res[k], dict | list)))
