"""Per-event cost and state size of every detector against its target.

    .venv/bin/python benchmarks/detectors.py [--json] [--events N] [--only NAME ...]
                                             [--params default|test] [--repeat R]

For every spec of :func:`detectors.checks.specs`: the detector (production parameters by
default) is driven over its family's seeded stream, score before learn, exactly as the
checks and the pipeline drive it; the cost is the wall time of those calls per event, the
state the pickled detector per series (per key or entity for keyed detectors), the largest
seen at ten checkpoints. The targets: O(1) detectors 5 us and 1 KB per series; ensembles
30 us and 2 KB. See benchmarks/README.md. Nothing here is
asserted; it prints figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# run as a script, this file's directory comes first on sys.path, and this file is called
# detectors.py: take it off so that ``detectors`` is the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from detectors.checks import DetectorSpec, drive, specs, state_bytes  # noqa: E402

#: (microseconds per event, pickled bytes per series)
TARGET_O1 = (5.0, 1024)
TARGET_ENSEMBLE = (30.0, 2048)


def measure(spec: DetectorSpec, events: int, params: str, repeat: int, seed: int = 0
            ) -> dict[str, Any]:
    stream = spec.stream(seed, events)
    step = max(len(stream) // 10, 1)
    best = float("inf")
    per_series = 0.0
    n_series = 1
    for _ in range(repeat):
        det = spec.build_default(seed) if params == "default" else spec.make(seed)
        elapsed = 0.0
        per_series = 0.0
        gc.collect()
        for start in range(0, len(stream), step):
            chunk = stream[start:start + step]
            t0 = time.perf_counter()
            for x, t, _ in chunk:
                drive(det, x, t)
            elapsed += time.perf_counter() - t0
            n_series = max(spec.n_series(det), 1)
            per_series = max(per_series, state_bytes(det) / n_series)
        best = min(best, elapsed)
    us = best / len(stream) * 1e6
    target_us, target_bytes = TARGET_O1 if spec.o1 else TARGET_ENSEMBLE
    return {
        "detector": spec.name,
        "kind": "O(1)" if spec.o1 else "ensemble",
        "params": params,
        "events": len(stream),
        "series": n_series,
        "us_per_event": round(us, 2),
        "target_us": target_us,
        "cost": "PASS" if us <= target_us else "OVER",
        "bytes_per_series": round(per_series),
        "target_bytes": target_bytes,
        "state": "PASS" if per_series <= target_bytes else "OVER",
        "note": spec.note,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Detector cost and state (Python {platform.python_version()}, "
                        f"{platform.machine()}, {os.cpu_count()} CPUs)")
    for col in ("detector", "kind", "events", "series", "µs/event", "target", "cost",
                "bytes/series", "target", "state"):
        right = col not in ("detector", "kind", "cost", "state")
        table.add_column(col, justify="right" if right else "left", no_wrap=True)

    def verdict(v: str) -> str:
        return f"[green]{v}[/green]" if v == "PASS" else f"[red]{v}[/red]"

    for r in rows:
        table.add_row(r["detector"], r["kind"], f"{r['events']:,}", str(r["series"]),
                      f"{r['us_per_event']:.2f}", f"{r['target_us']:.0f}", verdict(r["cost"]),
                      f"{r['bytes_per_series']:,}", f"{r['target_bytes']:,}",
                      verdict(r["state"]))
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=160)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--events", type=int, default=100_000, help="events per detector")
    ap.add_argument("--only", nargs="*", default=None, help="detector names to run")
    ap.add_argument("--params", choices=("default", "test"), default="default",
                    help="production parameters (default) or the checks' test parameters")
    ap.add_argument("--repeat", type=int, default=1, help="runs per detector; best time kept")
    args = ap.parse_args(argv)
    chosen = [s for s in specs() if not args.only or s.name in args.only]
    if args.only:
        unknown = set(args.only) - {s.name for s in chosen}
        if unknown:
            ap.error(f"unknown detector(s): {', '.join(sorted(unknown))}")
    rows = []
    for spec in chosen:
        if not args.json:
            print(f"{spec.name} ...", file=sys.stderr, flush=True)
        rows.append(measure(spec, args.events, args.params, max(args.repeat, 1)))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
