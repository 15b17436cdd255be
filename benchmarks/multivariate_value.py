"""Does the multivariate station detector add value over the per-series detectors?

Issue 19 point 5: wire ``detectors.signals.multivariate.StationDetector`` in where a station
reports several metrics *if* it adds measured value on the world zoo, else delete it.

For each zoo world (``streams.evaluation.world``; seeds never tuned on), this script
replays the world through the in-process pipeline (the per-series detectors' anomalies as
the worker finds them) and, beside it, runs one ``StationDetector`` per station that
reports two or more metrics, over the station's reading cycles (a cycle ends when a metric
repeats), flagging a cycle at the level policy's alpha once the station has learned 96
cycles. Then, per incident whose scenario involves sensors, in its region between its
start and one hour after its end: was it seen by the per-series detectors, by the station
detector, by the station detector alone, and which saw it first; and outside every
incident: flags per station-week of each.

    .venv/bin/python benchmarks/multivariate_value.py --seeds 5000-5011
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

# run as a script, benchmarks/ comes first on sys.path and holds a detectors.py: take it off
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from detectors import policy  # noqa: E402
from detectors.signals.multivariate import StationDetector  # noqa: E402
from streams.core.errors import ValidationFailure  # noqa: E402
from streams.core.settings import load_settings  # noqa: E402
from streams.core.signals import packaged  # noqa: E402
from streams.core.units import normalise_sensor  # noqa: E402
from streams.evaluation.replay_score import read_replay, run_pipeline  # noqa: E402
from streams.evaluation.world.generate import simulate_world  # noqa: E402
from streams.evaluation.world.incidents import incident_sources  # noqa: E402

LEARN_CYCLES = 96
GRACE_S = 3600.0


def _t(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def station_flags(path: Path) -> tuple[dict[str, list[float]], dict[str, str], float]:
    """region -> event times of flagged cycles; station -> region; station-weeks."""
    readings: dict[str, list[tuple[float, str, float]]] = defaultdict(list)
    region_of: dict[str, str] = {}
    for ln in read_replay(path):
        if ln.source != "env":
            continue
        try:
            r = json.loads(ln.raw)
            value, _ = normalise_sensor(r["metric"], float(r["value"]), r["unit"], packaged())
            readings[r["sensor_id"]].append((_t(r["observed_at"]), r["metric"], value))
            region_of[r["sensor_id"]] = r["region"]
        except (ValueError, KeyError, TypeError, ValidationFailure):
            continue  # the pipeline dead-letters it too
    flags: dict[str, list[float]] = defaultdict(list)
    weeks = 0.0
    for sid, rows in readings.items():
        rows.sort()
        if len({m for _, m, _ in rows}) < 2:
            continue
        weeks += (rows[-1][0] - rows[0][0]) / (7 * 86400.0)
        det, cycle, t0, n = StationDetector(), {}, rows[0][0], 0
        for t, metric, value in rows:
            if metric in cycle:
                if n >= LEARN_CYCLES and det.explain_one(cycle, t0).p_value < policy.ALPHA_LEVEL:
                    flags[region_of[sid]].append(t0)
                det.learn_one(cycle, t0)
                cycle, n = {}, n + 1
            if not cycle:
                t0 = t
            cycle[metric] = value
    return flags, region_of, weeks


def world(seed: int) -> dict[str, Any]:
    sim = simulate_world(seed)
    registry = sim.world.registry()
    logging.getLogger("streams.ingest.ingestor").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        sim.write(path)
        pipe, _ = run_pipeline(read_replay(path), load_settings(), registry)
        mv, _, station_weeks = station_flags(path)
    series: dict[str, list[float]] = defaultdict(list)
    for a in pipe.anomalies:
        if a.source == "env" and a.via is None and not a.city:
            series[a.region].append(a.event_time.timestamp())
    truth = sim.truth()
    out: dict[str, Any] = {"seed": seed, "incidents": 0, "series": 0, "mv": 0, "mv_only": 0,
                           "mv_first": 0, "lead_s": [], "station_weeks": station_weeks}
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for inc in truth:
        try:
            sources = incident_sources(inc["scenario"])
        except KeyError:  # a decoy (a sensor fault, a single-department blip): not one
            continue
        lo, hi = _t(inc["start"]), _t(inc["end"]) + GRACE_S
        spans[inc["region"]].append((lo, hi))
        if "env" not in sources:
            continue
        out["incidents"] += 1
        s = [x for x in series.get(inc["region"], ()) if lo <= x <= hi]
        m = [x for x in mv.get(inc["region"], ()) if lo <= x <= hi]
        out["series"] += bool(s)
        out["mv"] += bool(m)
        out["mv_only"] += bool(m) and not s
        if m and s and min(m) < min(s):
            out["mv_first"] += 1
            out["lead_s"].append(min(s) - min(m))

    def outside(flags: dict[str, list[float]]) -> int:
        return sum(1 for reg, ts in flags.items() for x in ts
                   if not any(lo <= x <= hi for lo, hi in spans.get(reg, ())))
    out["mv_false"], out["series_false"] = outside(mv), outside(series)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="5000-5011", help="a range lo-hi (inclusive)")
    args = ap.parse_args()
    lo, hi = (int(x) for x in args.seeds.split("-"))
    rows = [world(s) for s in range(lo, hi + 1)]
    tot = {k: sum(r[k] for r in rows) for k in ("incidents", "series", "mv", "mv_only",
                                               "mv_first", "mv_false", "series_false")}
    weeks = sum(r["station_weeks"] for r in rows)
    leads = [x for r in rows for x in r["lead_s"]]
    print(json.dumps({
        "worlds": len(rows), "sensor_incidents": tot["incidents"],
        "seen_by_series": tot["series"], "seen_by_station_detector": tot["mv"],
        "seen_only_by_station_detector": tot["mv_only"],
        "station_detector_first": tot["mv_first"],
        "median_lead_when_first_h": statistics.median(leads) / 3600 if leads else None,
        "station_detector_flags_outside_incidents_per_station_week":
            tot["mv_false"] / weeks if weeks else None,
        "series_anomalies_outside_incidents_per_station_week":
            tot["series_false"] / weeks if weeks else None,
    }, indent=2))


if __name__ == "__main__":
    main()
