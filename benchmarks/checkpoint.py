"""Cost of a checkpoint: capture (snapshot + msgpack) and size for a partition holding N
sensor series and a full de-duplication window, the way the worker captures it
(``Checkpointer.capture``: ``streams.runtime.snapshot.capture`` +
``streams.runtime.checkpoint.encode``), and the time to read it back and restore it.

    .venv/bin/python benchmarks/checkpoint.py [--series 1000 10000 100000] [--json]

Prints figures, asserts nothing. While a checkpoint is captured no batch runs (the gate),
so the capture time is added to the latency of the events waiting at that moment, once
per TOCSIN_CHECKPOINT_INTERVAL_S."""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# this directory holds detectors.py: take it off sys.path so ``detectors`` is the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from detectors.signals.fault_screen import FaultScreen  # noqa: E402
from detectors.signals.shift import SustainedShift  # noqa: E402
from streams.bench.memory import replicate, warmed  # noqa: E402
from streams.ingest.ingestor import Deduplicator  # noqa: E402
from streams.pipeline.detection import Detection  # noqa: E402
from streams.runtime import snapshot  # noqa: E402
from streams.runtime.checkpoint import Assembler, PartitionSnapshot, encode  # noqa: E402


def state(series: int, dedup: int) -> tuple[dict[str, object], dict[str, object]]:
    """One partition's state as the worker holds it, and the externals it is captured with."""
    src = pickle.loads(warmed())
    d = Detection()
    for i in range(series):
        d.track_sensor(f"S-{i:07d}", "pm25", replicate(src, d.p.sensor_learning),
                       SustainedShift(), FaultScreen())
    window = Deduplicator(dedup)
    for i in range(dedup):
        window.check(f"reading-{i:09d}", hashlib.blake2b(str(i).encode(), digest_size=8)
                     .digest())
    ext = {"detect_params": d.p}
    return {"sources": {"detection": d, "dedup": {"env": window}}, "correlation": None,
            "cap_prev": {}}, ext


def measure(series: int, dedup: int) -> dict[str, float]:
    live, ext = state(series, dedup)
    t0 = time.perf_counter()
    snap = PartitionSnapshot(partition=0, gen=1, offsets={"tocsin.env.readings": 10**6},
                             state=snapshot.capture(live, ext))
    records = encode(snap, "bench", key=b"k" * 32)
    capture = time.perf_counter() - t0
    size = sum(len(v) for _, v in records)
    t0 = time.perf_counter()
    asm = Assembler("bench", key=b"k" * 32)
    for _, v in records:
        asm.add(v)
    back = asm.latest(0)
    assert back is not None
    snapshot.restore(back.state, ext)
    restore = time.perf_counter() - t0
    return {"series": series, "dedup_ids": dedup, "capture_s": round(capture, 4),
            "bytes": size, "bytes_per_series": round(size / max(series, 1), 1),
            "chunks": len(records), "restore_s": round(restore, 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, nargs="*", default=[1000, 10_000, 100_000])
    ap.add_argument("--dedup", type=int, default=50_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [measure(n, args.dedup) for n in args.series]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'series':>8} {'dedup ids':>9} {'capture s':>9} {'MB':>7} {'B/series':>9} "
          f"{'chunks':>6} {'restore s':>9}")
    for r in rows:
        print(f"{r['series']:>8} {r['dedup_ids']:>9} {r['capture_s']:>9.3f} "
              f"{r['bytes'] / 2**20:>7.1f} {r['bytes_per_series']:>9.0f} {r['chunks']:>6} "
              f"{r['restore_s']:>9.3f}")


if __name__ == "__main__":
    main()
