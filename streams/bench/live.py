"""``tocsin bench --live``: wall-clock latency from the record that decides a warning to the
warning on ``tocsin.warnings`` and to the alert at a webhook behind a real Alertmanager.

Method (``docs/performance.md``, "Live latency"):

1. ``cities`` simulated cities (``streams.tools.simulation.live``), one worker each on one
   broker, every worker posting to one Alertmanager (``prometheus-alertmanager`` on
   loopback: one route, ``group_by: [warning_id]``, ``group_wait: 0s``,
   ``group_interval: 1s``, a webhook receiver served by this bench). Several cities
   because one city cannot hold twenty local incidents within six hours: a signal kind
   anomalous in four regions at once is a city-wide condition, not local evidence.
2. Warm-up: each city's ``history_days`` of history, event times ending at the current
   wall clock, produced as fast as possible; the bench waits until every worker has
   consumed it.
3. Live: each city's tail, ``live_s`` seconds with its incidents' onsets, every record
   produced when the wall clock reaches its event time. The incidents run on a shortened
   time scale (``time_scale``, see ``streams.tools.simulation.live``).
4. For each incident, the decisive record: the record after which an in-process replay of
   the same stream (``Pipeline``, the workers' partitions, every record in production
   order) opens the incident's warning. Latency = wall clock from producing that record
   to (a) the first version of the warning on its city's warnings topic, (b) the first
   firing alert with its ``warning_id`` at the webhook.

Settings are the product's (``TOCSIN_*`` environment variables apply, to the workers and
to the replay alike); the figures say which were used.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streams.bench.common import BenchError, bench_settings, broker
from streams.core.regions import RegionRegistry
from streams.core.settings import TocsinSettings
from streams.tools.broker import free_port
from streams.tools.live import (
    WARNING,
    Expected,
    LiveCity,
    live_run,
    prefixed_registry,
    quantiles,
    write_registry,
)
from streams.tools.services import alertmanager, ensure_binary
from streams.tools.simulation.live import LiveConfig, LiveWorld

ALERT = "alertmanager"


@dataclass
class LiveBenchConfig:
    seed: int = 1
    cities: int = 6
    partitions: int = 4
    live_s: float = 300.0
    history_days: float = 3.0
    time_scale: float = 120.0
    #: how long to wait for warnings after the tail (default: TOCSIN_REORDER_IDLE_S + 30 s)
    grace_s: float | None = None
    log: Callable[[str], None] = field(default=lambda msg: None)


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """One route straight to the bench's webhook: each warning its own group, sent at once."""
    return {
        "route": {"receiver": "bench", "group_by": ["warning_id"], "group_wait": "0s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "bench", "webhook_configs": [
            {"url": webhook_url, "send_resolved": False}]}],
    }


def run_live(cfg: LiveBenchConfig) -> dict[str, Any]:
    """Every live figure, measured in one run (see the module docstring)."""
    t_start = time.monotonic()
    if cfg.cities < 1 or cfg.live_s < 20 or cfg.time_scale < 1 or cfg.partitions < 1:
        raise BenchError("--live needs --cities >= 1, --live-s >= 20, --time-scale >= 1 and "
                         "--partitions >= 1")
    ensure_binary("prometheus-alertmanager", install=False)  # before anything starts
    base = TocsinSettings()
    registry = RegionRegistry.from_csv(base.region_registry)
    with tempfile.TemporaryDirectory(prefix="tocsin-live-") as tmp, broker() as bootstrap:
        workdir = Path(tmp)
        hook_port = free_port()
        am_config = workdir / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(alertmanager_config(
            f"http://127.0.0.1:{hook_port}/alerts")))
        with alertmanager(am_config, workdir, install=False) as am_url:
            cities = _cities(cfg, registry, bootstrap, workdir, am_url)
            res = asyncio.run(_run(cfg, cities, hook_port, workdir))
    res["seconds"] = time.monotonic() - t_start
    return res


def _cities(cfg: LiveBenchConfig, registry: RegionRegistry, bootstrap: str, workdir: Path,
            am_url: str) -> list[LiveCity]:
    out = []
    for i in range(cfg.cities):
        name = f"c{i + 1}"
        reg = prefixed_registry(registry, f"{name}-")
        s = bench_settings(bootstrap, cfg.partitions, workdir, alertmanager_url=am_url,
                           region_registry=write_registry(reg, workdir / f"{name}.csv"),
                           metrics_port=free_port(), metrics_addr="127.0.0.1")
        # onsets from 10 s into the window to 120 s (or 40% of a shorter window)
        onsets = (min(10.0, cfg.live_s * 0.05), min(120.0, cfg.live_s * 0.4))
        world = LiveWorld(LiveConfig(seed=cfg.seed * 100 + i, history_days=cfg.history_days,
                                     live_s=cfg.live_s, time_scale=cfg.time_scale,
                                     onsets_s=onsets), reg)
        out.append(LiveCity(name, world, s))
    return out


async def _run(cfg: LiveBenchConfig, cities: list[LiveCity], hook_port: int,
               workdir: Path) -> dict[str, Any]:
    expected: dict[str, Expected] = {}  # warning id -> incident
    runner = await _webhook(hook_port, expected)
    try:
        grace = cfg.grace_s if cfg.grace_s is not None else (
            cities[0].settings.reorder_idle_s + 30.0)
        n_live = await live_run(cities, workdir, expected, (WARNING, ALERT), grace, cfg.log)
    finally:
        await runner.cleanup()
    return _figures(cfg, cities, n_live)


async def _webhook(port: int, expected: dict[str, Expected]) -> Any:
    """The webhook Alertmanager posts to: the first firing alert of each warning id."""
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        now = time.perf_counter()
        body = await request.json()
        for alert in body.get("alerts", []):
            e = expected.get(alert.get("labels", {}).get("warning_id", ""))
            if e is not None and alert.get("status") == "firing":
                e.arrived.setdefault(ALERT, now)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/alerts", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _figures(cfg: LiveBenchConfig, cities: list[LiveCity], n_live: int) -> dict[str, Any]:
    every = [e for c in cities for e in c.expected]
    res: dict[str, Any] = {}
    for channel, key in ((WARNING, "live"), (ALERT, "alertmanager")):
        xs = [x for e in every if (x := e.latency(channel)) is not None]
        for q, v in quantiles(xs).items():
            res[f"{key}_{q}_s"] = v
        res[f"{key}_measured"] = len(xs)
    res["incidents_measured"] = res.pop("live_measured")
    # the worker released the warning before the replay's decisive record was produced
    # (e.g. its reorder buffer gave up waiting on idle partitions): a negative latency
    res["incidents_early"] = sum(1 for e in every if (x := e.latency(WARNING)) is not None
                                 and x < 0)
    res["incidents_expected"] = len(every)
    res["incidents_decisive"] = sum(e.decisive is not None for e in every)
    res["incidents_missed"] = [_missed(e, c) for c in cities for e in c.expected
                               if e.latency(WARNING) is None]
    res["per_incident"] = [_row(e) for e in every]
    res["unmatched_warnings"] = sum(len(c.unmatched) for c in cities)
    res["records_history"] = sum(len(c.history) for c in cities)
    res["records_live"] = n_live
    s = cities[0].settings
    res["settings"] = {
        "seed": cfg.seed, "cities": cfg.cities, "partitions": cfg.partitions,
        "live_s": cfg.live_s, "history_days": cfg.history_days,
        "time_scale": cfg.time_scale, "sensor_period_s": cities[0].world.cfg.sensor_period_s,
        "allowed_lateness_s": s.allowed_lateness_s, "reorder_idle_s": s.reorder_idle_s,
        "correlation_window_s": s.correlation_window_s,
        "fetch_max_wait_ms": s.fetch_max_wait_ms, "batch_within_s": s.batch_within_s,
        "alertmanager_route": alertmanager_config("(bench webhook)")["route"],
    }
    return res


def _missed(e: Expected, city: LiveCity) -> dict[str, Any]:
    other = city.other_ids.get(e.incident.region)
    if e.decisive is None:
        why = "the replay opened no warning for it during the tail"
    elif other is not None:
        why = f"the worker opened {other} in its region, not the replay's {e.warning_id}"
    else:
        why = "its warning did not reach tocsin.warnings in time"
    return {"incident": e.incident.id, "city": e.city, "scenario": e.incident.scenario,
            "region": e.incident.region, "why": why}


def _row(e: Expected) -> dict[str, Any]:
    onset = e.incident.start.timestamp()
    return {"incident": e.incident.id, "city": e.city, "scenario": e.incident.scenario,
            "region": e.incident.region, "warning_id": e.warning_id,
            "decisive_after_onset_s": None if e.decisive is None else e.decisive.t - onset,
            "live_s": e.latency(WARNING), "alertmanager_s": e.latency(ALERT)}
