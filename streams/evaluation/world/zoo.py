"""The world zoo: Tocsin and the ``naive`` and ``single`` baselines on many random worlds,
each scored with ``streams.evaluation.replay_score.score`` (``tocsin eval zoo``)."""

from __future__ import annotations

import logging
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from streams.evaluation.world.draw import check_params
from streams.evaluation.world.model import HOUR

METHODS = ("tocsin", "naive", "single")
MAX_WORLDS = 10_000


@dataclass(frozen=True)
class ZooConfig:
    worlds: int
    seed_base: int = 1000
    effect_scale: float = 1.0
    days: float = 14.0
    jobs: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.worlds <= MAX_WORLDS:
            raise ValueError(f"--worlds must be between 1 and {MAX_WORLDS}, got {self.worlds}")
        if not 1 <= self.jobs <= 64:
            raise ValueError(f"--jobs must be between 1 and 64, got {self.jobs}")
        check_params(self.days, self.effect_scale)

    def seeds(self) -> list[int]:
        return list(range(self.seed_base, self.seed_base + self.worlds))


def _f1(recall: float, precision: float) -> float:
    return 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0


def _method_row(report: dict[str, Any]) -> dict[str, Any]:
    """One method's figures on one world (``score``'s conventions: recall 1 without
    incidents, precision 1 without warnings)."""
    delays = [p["delay_s"] / HOUR for p in report["per_incident"] if p["delay_s"] is not None]
    by_scenario: dict[str, list[int]] = {}
    for p in report["per_incident"]:
        if p["cross_department"]:
            n_det = by_scenario.setdefault(p["scenario"], [0, 0])
            n_det[0] += 1
            n_det[1] += int(p["detected"])
    return {
        "recall": report["recall"], "precision": report["precision"],
        "f1": _f1(report["recall"], report["precision"]),
        "median_delay_h": statistics.median(delays) if delays else None,
        "detected": report["detected"], "warnings": report["warnings"],
        "false_warnings": report["false_warnings"], "decoys_warned": report["noise_warned"],
        "delays_h": delays, "by_scenario": by_scenario,
    }


def run_world(seed: int, days: float = 14.0, effect_scale: float = 1.0) -> dict[str, Any]:
    """Draw, simulate and score one world (top level: runs in worker processes too)."""
    from streams.core.settings import load_settings
    from streams.evaluation.baselines import ingest_replay, naive_warnings, single_warnings
    from streams.evaluation.replay_score import TruthIncident, read_replay, run_pipeline, score
    from streams.evaluation.world.generate import simulate_world

    t0 = time.perf_counter()
    sim = simulate_world(seed, days, effect_scale)
    registry = sim.world.registry()
    settings = load_settings()
    truth = [TruthIncident.model_validate(t) for t in sim.truth()]
    # without TOCSIN_PSEUDONYM_KEY the ingest warns that pseudonyms use a random key: true,
    # and irrelevant to scoring
    ingest_log = logging.getLogger("streams.ingest.ingestor")
    level = ingest_log.level
    ingest_log.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="tocsin-zoo-") as tmp:
            path = Path(tmp) / "events.jsonl"
            sim.write(path)
            pipe, _ = run_pipeline(read_replay(path), settings, registry)
            ing = ingest_replay(read_replay(path), registry, settings.dedup_window,
                                pipe.sources.catalogue)
    finally:
        ingest_log.setLevel(level)
    warnings = {"tocsin": pipe.warnings, "naive": naive_warnings(ing.records),
                "single": single_warnings(pipe.anomalies)}
    row: dict[str, Any] = {
        "seed": seed, "regions": len(sim.world.regions), "days": days,
        "incidents": len(sim.world.incidents()), "decoys": len(sim.world.decoys()),
        "events": len(sim.lines),
    }
    for m, ws in warnings.items():
        row[m] = _method_row(score(ws, truth, registry))
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def _run_one(args: tuple[int, float, float]) -> dict[str, Any]:
    return run_world(*args)


def run_worlds(cfg: ZooConfig, progress: Callable[[dict[str, Any]], None] | None = None
               ) -> list[dict[str, Any]]:
    jobs = [(s, cfg.days, cfg.effect_scale) for s in cfg.seeds()]
    rows: list[dict[str, Any]] = []
    if cfg.jobs == 1:
        results: Iterable[dict[str, Any]] = map(_run_one, jobs)
        for row in results:
            rows.append(row)
            if progress:
                progress(row)
        return rows
    with ProcessPoolExecutor(max_workers=cfg.jobs, mp_context=get_context("spawn")) as ex:
        for row in ex.map(_run_one, jobs):
            rows.append(row)
            if progress:
                progress(row)
    return rows


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _pooled(rows: list[dict[str, Any]], m: str) -> dict[str, Any]:
    incidents = sum(r["incidents"] for r in rows)
    detected = sum(r[m]["detected"] for r in rows)
    warnings = sum(r[m]["warnings"] for r in rows)
    false = sum(r[m]["false_warnings"] for r in rows)
    delays = [d for r in rows for d in r[m]["delays_h"]]
    weeks = sum(r["regions"] * r["days"] / 7.0 for r in rows)
    return {
        "incidents": incidents, "detected": detected, "recall": _ratio(detected, incidents),
        "warnings": warnings, "false_warnings": false,
        "precision": _ratio(warnings - false, warnings),
        "median_delay_h": statistics.median(delays) if delays else None,
        "false_per_10_region_weeks": 10.0 * false / weeks,
        "decoys_warned": sum(r[m]["decoys_warned"] for r in rows),
    }


def summarise(cfg: ZooConfig, rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The zoo's report: per world, pooled per method, and the comparisons."""
    empty = [r for r in rows if r["incidents"] == 0]
    empty_weeks = sum(r["regions"] * r["days"] / 7.0 for r in empty)
    scenarios: dict[str, dict[str, int]] = {}
    for r in rows:
        for m in METHODS:
            for sc, (n, det) in r[m]["by_scenario"].items():
                entry = scenarios.setdefault(sc, {"incidents": 0, **dict.fromkeys(METHODS, 0)})
                entry[m] += det
                if m == METHODS[0]:
                    entry["incidents"] += n
    worst = min(rows, key=lambda r: (r["tocsin"]["f1"], r["seed"]))
    return {
        "config": {"worlds": cfg.worlds, "seed_base": cfg.seed_base, "days": cfg.days,
                   "effect_scale": cfg.effect_scale, "jobs": cfg.jobs},
        "worlds": [{k: v for k, v in r.items() if k not in METHODS}
                   | {m: {k: v for k, v in r[m].items() if k not in ("delays_h", "by_scenario")}
                      for m in METHODS} for r in rows],
        "overall": {m: _pooled(rows, m) for m in METHODS},
        "by_scenario": dict(sorted(scenarios.items())),
        "tocsin_ge_naive_share": sum(
            r["tocsin"]["recall"] >= r["naive"]["recall"]
            and r["tocsin"]["precision"] >= r["naive"]["precision"] for r in rows) / len(rows),
        "no_incident_worlds": len(empty),
        "false_per_10_region_weeks_no_incident": {
            m: (10.0 * sum(r[m]["false_warnings"] for r in empty) / empty_weeks
                if empty else None) for m in METHODS},
        "worst_world": {"seed": worst["seed"], "f1": worst["tocsin"]["f1"],
                        "recall": worst["tocsin"]["recall"],
                        "precision": worst["tocsin"]["precision"],
                        "incidents": worst["incidents"],
                        "warnings": worst["tocsin"]["warnings"]},
        "seconds": round(seconds, 1),
    }


def run_zoo(cfg: ZooConfig, progress: Callable[[dict[str, Any]], None] | None = None
            ) -> dict[str, Any]:
    t0 = time.perf_counter()
    rows = run_worlds(cfg, progress)
    return summarise(cfg, rows, time.perf_counter() - t0)


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"
