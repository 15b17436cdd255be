"""``tocsin eval nab``: read a NAB corpus, run a detector over every file (each point scored
before it is learned), score with :mod:`detectors.scoring.nab` and write NAB-layout result CSVs."""

from __future__ import annotations

import bisect
import csv
import gzip
import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from detectors.scoring.nab import ScoringFile, score_corpus
from streams.core.errors import TocsinError


class NabError(TocsinError):
    """The NAB data or labels could not be read."""


class UnivariateDetector(Protocol):
    def score_one(self, x: float, t: float) -> float: ...
    def learn_one(self, x: float, t: float) -> None: ...


@dataclass
class NabFile:
    name: str  # "<category>/<file>.csv"
    timestamps: list[datetime]
    values: list[float]
    windows: list[tuple[int, int]]

    def scoring(self) -> ScoringFile:
        return ScoringFile(self.name, len(self.values), self.windows)


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s.strip())


def window_rows(timestamps: list[datetime], windows: list[list[str]]) -> list[tuple[int, int]]:
    """Map ``[[start, end], ...]`` timestamps to inclusive row ranges."""
    out = []
    for start, end in windows:
        left = bisect.bisect_left(timestamps, _ts(start))
        right = bisect.bisect_right(timestamps, _ts(end)) - 1
        if left <= right:
            out.append((left, right))
    return out


def load_corpus(data: Path, labels: Path) -> list[NabFile]:
    try:
        windows: dict[str, list[list[str]]] = json.loads(labels.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise NabError(f"cannot read NAB labels {labels}: {e}; pass --labels "
                       "labels/combined_windows.json") from e
    files = []
    for name in sorted(windows):
        path = data / name
        if not path.is_file():
            raise NabError(f"{path} is listed in {labels} but missing; check --data")
        ts: list[datetime] = []
        vals: list[float] = []
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                ts.append(_ts(row["timestamp"]))
                vals.append(float(row["value"]))
        files.append(NabFile(name, ts, vals, window_rows(ts, windows[name])))
    if not files:
        raise NabError(f"no files listed in {labels}")
    return files


def load_reference(ref_dir: Path, files: list[NabFile]) -> list[list[float]]:
    """Published scores (``reference/<detector>``) aligned with ``files``."""
    out = []
    for f in files:
        with gzip.open(ref_dir / f"{f.name}.gz", "rt", newline="") as fh:
            scores = [float(r["anomaly_score"]) for r in csv.DictReader(fh)]
        if len(scores) != len(f.values):
            raise NabError(f"{f.name}: reference has {len(scores)} rows, data {len(f.values)}")
        out.append(scores)
    return out


def run_detector(files: list[NabFile], factory: Callable[[], UnivariateDetector]
                 ) -> tuple[list[list[float]], dict[str, float]]:
    """Score every point before learning it; also measure cost and state size."""
    all_scores = []
    events = 0
    elapsed = 0.0
    state_bytes = []
    for f in files:
        det = factory()
        scores = []
        t0 = time.perf_counter()
        for ts, x in zip(f.timestamps, f.values, strict=True):
            t = ts.timestamp()
            scores.append(det.score_one(x, t))
            det.learn_one(x, t)
        elapsed += time.perf_counter() - t0
        events += len(f.values)
        state_bytes.append(len(pickle.dumps(det)))
        all_scores.append(scores)
    return all_scores, {
        "us_per_event": 1e6 * elapsed / max(events, 1),
        "bytes_per_series": max(state_bytes) if state_bytes else 0,
    }


def write_results(out: Path, files: list[NabFile], scores: list[list[float]],
                  detector: str = "tocsin") -> None:
    """NAB's results layout: ``out/<category>/<detector>_<file>.csv``."""
    for f, s in zip(files, scores, strict=True):
        category, fname = f.name.split("/", 1)
        path = out / category / f"{detector}_{fname}"
        path.parent.mkdir(parents=True, exist_ok=True)
        inside = [0] * len(f.values)
        for left, right in f.windows:
            for i in range(left, right + 1):
                inside[i] = 1
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value", "anomaly_score", "label"])
            for ts, x, a, lab in zip(f.timestamps, f.values, s, inside, strict=True):
                w.writerow([ts.strftime("%Y-%m-%d %H:%M:%S"), x, a, lab])


def evaluate(files: list[NabFile], scores: list[list[float]]) -> dict[str, Any]:
    res = score_corpus([f.scoring() for f in files], scores)
    return {**{k: round(v, 3) for k, v in res.items() if not k.startswith("threshold")},
            "thresholds": {k.removeprefix("threshold_"): v for k, v in res.items()
                           if k.startswith("threshold")},
            "files": len(files)}
