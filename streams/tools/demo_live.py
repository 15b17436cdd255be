"""``tocsin demo``'s real-time tail: after the accelerated week, a live city
(``streams.tools.simulation.live``) warmed with two days of history ending now,
then ``DEMO_TAIL.live_s`` seconds produced in real time (event time = wall clock) with two
price-gouging waves on a shortened time scale (``time_scale`` 600: a wave of 18-30 h lasts
2-3 minutes and brings its price reports and complaints 600 times faster). Each
incident's latency is measured from producing its decisive record (the record after which
the in-process replay opens its warning) to the warning on ``tocsin.warnings``.

The tail's incidents are shown, never scored: recall and precision stay the week's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console

from streams.core.regions import RegionRegistry
from streams.core.settings import TocsinSettings
from streams.tools.live import WARNING, Expected, LiveCity, live_run, quantiles
from streams.tools.simulation.live import LiveConfig, LiveWorld

#: price-gouging waves show up within seconds at this scale: price reports of the goods
#: they touch and complaints come 600 times faster (in market hours, 7-20 h UTC; at night
#: prices are rarely reported). A sensor reads every 3 minutes and a food-safety outbreak
#: needs several recalls or failed inspections: too slow for a tail this short
DEMO_TAIL = LiveConfig(history_days=2.0, live_s=40.0, onsets_s=(2.0, 10.0), time_scale=600.0,
                       scenarios=("price_gouging", "price_gouging"))


@dataclass
class TailResult:
    incidents: list[Expected] = field(default_factory=list)
    unmatched: int = 0  # warnings the replay opened in the tail that fit no incident
    records: int = 0


async def run_tail(base: TocsinSettings, registry: RegionRegistry, seed: int, workdir: Path,
                   log: Callable[[str], None]) -> TailResult:
    """Warm a fresh worker (own topics and group) with the live city's history, play its
    tail in real time, time each incident's warning."""
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={
        "app_id": f"tocsin-demo-live-{tag}", "topic_prefix": f"live{tag}.",
        "data_dir": workdir / "data-live", "metrics_port": 0,
        "checkpoint_interval_s": min(base.checkpoint_interval_s, 2.0),
    })
    city = LiveCity("live", LiveWorld(replace(DEMO_TAIL, seed=seed), registry), settings)
    expected: dict[str, Expected] = {}
    n = await live_run([city], workdir, expected, (WARNING,),
                       settings.reorder_idle_s + 10.0, log)
    return TailResult(city.expected, len(city.unmatched), n)



def tail_rows(tail: TailResult | None) -> list[list[str]]:
    """The tail's incidents as rows of the demo's incident table (``demo.DEMO_COLS``):
    found when its warning arrived, after the delay from onset to the decisive record
    (event time, in seconds: the tail is short), above the latency from producing that
    record to the warning's arrival (wall clock, live)."""
    if tail is None:
        return []
    rows = []
    for e in tail.incidents:
        inc, lat = e.incident, e.latency(WARNING)
        delay = "yes" if e.decisive is None else f"{e.decisive.t - inc.start.timestamp():.0f} s"
        found = "[bold red]NO[/]" if lat is None else f"[green]{delay}[/]\n[dim]{lat:.2f} s[/]"
        rows.append([inc.id, f"{inc.scenario}\n[dim]{inc.region}[/]", found,
                     f"{inc.start:%Y-%m-%d %H:%M:%S}", e.warning_id or ""])
    return rows


def print_tail(console: Console, tail: TailResult | None) -> None:
    """One line: the tail's live latency figures."""
    if tail is None:
        return
    xs = [x for e in tail.incidents if (x := e.latency(WARNING)) is not None]
    q = quantiles(xs)
    figures = (f"latency p50 {q['p50']:.2f} s, max {q['max']:.2f} s" if xs
               else "no warning arrived in time")
    console.print(
        f"real-time tail: {len(xs)} of {len(tail.incidents)} incidents' warnings arrived "
        f"({tail.records} records produced at event time = wall clock, "
        f"{tail.unmatched} other warnings opened); {figures}. Latency: wall clock from "
        "the record after which the in-process replay opens the warning to its arrival "
        "on tocsin.warnings (the week's figures are on the accelerated replay)")
