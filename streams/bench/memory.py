"""Resident memory of N tracked series, for ``tocsin bench``.

``python -m streams.bench.memory N`` builds the detect stage's state for N sensor series
(the dominant and largest kind: one ``SensorEnsemble`` per sensor and metric) in steady
state — each built as the detect stage builds it (shared parameters), with its own copy of
the state of a series that has learned two weeks of 15-minute readings — and
prints ``{"series": N, "rss_mb": ..., "bytes_per_series": ...}``, where bytes per series is
the growth of the process's resident set divided by N (dict slots, object headers and
allocator overhead included)."""

from __future__ import annotations

import gc
import json
import math
import os
import pickle
import random
import sys
from array import array

from detectors.signals.calibration import TailCalibrator
from detectors.signals.sensor import SensorEnsemble
from detectors.signals.shift import FaultScreen, SustainedShift
from streams.pipeline.detection import Detection


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def warmed(seed: int = 1, days: int = 14) -> bytes:
    rng = random.Random(seed)
    det = SensorEnsemble(learning=96)
    t0 = 1_772_409_600.0
    for i in range(days * 96):
        t = t0 + 900.0 * i
        x = 40 + 10 * math.sin(2 * math.pi * (t % 86400) / 86400) + rng.gauss(0, 3)
        det.score_one(x, t)
        det.learn_one(x, t)
    return pickle.dumps(det)


def replicate(src: SensorEnsemble, learning: int) -> SensorEnsemble:
    """A new detector, constructed like the detect stage's, holding its own copy of
    ``src``'s learned state (arrays copied, floats new objects)."""
    det = SensorEnsemble(learning=learning)
    slots = [n for cls in type(src).__mro__ for n in getattr(cls, "__slots__", ())]
    for name in slots:
        if not name.startswith("_"):
            continue
        v = getattr(src, name)
        if isinstance(v, array | bytearray):
            v = v[:]
        elif isinstance(v, float):
            v = v + 0.0
        elif isinstance(v, TailCalibrator):
            v = pickle.loads(pickle.dumps(v))
        setattr(det, name, v)
    return det


def main(n: int) -> None:
    src = pickle.loads(warmed())
    d = Detection()
    learning = d.p.sensor_learning
    gc.collect()
    before = rss_bytes()
    for i in range(n):
        d.track_sensor(f"S-{i:07d}", "pm25", replicate(src, learning), SustainedShift(),
                       FaultScreen())
    gc.collect()
    after = rss_bytes()
    print(json.dumps({"series": n, "rss_mb": after / 2**20,
                      "bytes_per_series": (after - before) / n}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
