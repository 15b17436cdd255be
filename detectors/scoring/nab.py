"""The Numenta Anomaly Benchmark scorer, written from the rules in NAB's documentation.

Windows, probation, the scaled sigmoid, the three application profiles, one threshold per
profile chosen over the whole corpus, and normalisation so the null detector scores 0 and a
perfect one 100. Pure Python, no Kafka.

>>> rows = 20
>>> f = ScoringFile("cat/f.csv", n=rows, windows=[(10, 14)])
>>> perfect = [0.0] * rows
>>> perfect[10] = 1.0                     # the earliest row of the only window
>>> round(score_corpus([f], [perfect])["standard"], 3)
100.0
>>> late = [0.0] * rows
>>> late[14] = 1.0                        # the last row of the window: worth much less
>>> round(score_corpus([f], [late])["standard"], 1)
73.4
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PROFILES: dict[str, tuple[float, float, float]] = {
    # name: (tp, fp, fn) weights
    "standard": (1.0, 0.11, 1.0),
    "reward_low_fp": (1.0, 0.22, 1.0),
    "reward_low_fn": (1.0, 0.11, 2.0),
}


def scaled_sigmoid(y: float) -> float:
    """``2 / (1 + e^(5y)) - 1`` for ``y <= 3``, else ``-1``."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_rows(n: int) -> int:
    """Rows at the start of a file of ``n`` rows that are not scored."""
    return int(min(math.floor(0.15 * n), 0.15 * 5000))


@dataclass(frozen=True)
class ScoringFile:
    """One data file: its row count and its anomaly windows as inclusive row ranges."""

    name: str
    n: int
    windows: Sequence[tuple[int, int]]  # [(L, R)], sorted, non-overlapping


def _row_parts(f: ScoringFile, tp: float, fp: float) -> tuple[list[int], list[float]]:
    """Per row: the window it is in (-1 if none) and what a detection there is worth."""
    max_tp = scaled_sigmoid(-1.0)
    win_of = [-1] * f.n
    value = [0.0] * f.n
    prev: tuple[int, int] | None = None
    wi = 0
    windows = list(f.windows)
    for i in range(f.n):
        while wi < len(windows) and windows[wi][1] < i:
            prev = windows[wi]
            wi += 1
        if wi < len(windows) and windows[wi][0] <= i <= windows[wi][1]:
            left, right = windows[wi]
            width = right - left + 1
            win_of[i] = wi
            value[i] = tp * scaled_sigmoid(-(right - i + 1) / width) / max_tp
        elif prev is None:
            value[i] = -fp
        else:
            left, right = prev
            width = right - left + 1
            value[i] = fp * scaled_sigmoid(abs(right - i) / max(width - 1, 1))
    return win_of, value


def score_corpus(
    files: Sequence[ScoringFile], scores: Sequence[Sequence[float]]
) -> dict[str, float]:
    """Normalised NAB score per profile (plus ``threshold_<profile>``)."""
    if len(files) != len(scores):
        raise ValueError("one score list per file")
    for f, s in zip(files, scores, strict=True):
        if len(s) != f.n:
            raise ValueError(f"{f.name}: {len(s)} scores for {f.n} rows")
    out: dict[str, float] = {}
    n_windows = sum(len(f.windows) for f in files)
    for profile, (tp, fp, fn) in PROFILES.items():
        # every scored row as (anomaly score, window key or None, value if detected)
        events: list[tuple[float, tuple[int, int] | None, float]] = []
        for fi, (f, s) in enumerate(zip(files, scores, strict=True)):
            win_of, value = _row_parts(f, tp, fp)
            for i in range(probation_rows(f.n), f.n):
                key = (fi, win_of[i]) if win_of[i] >= 0 else None
                events.append((float(s[i]), key, value[i]))
        events.sort(key=lambda e: -e[0])
        # sweep thresholds from high to low; a window counts its best (earliest) detection
        raw = -fn * n_windows
        best_in_window: dict[tuple[int, int], float] = {}
        best_raw, best_thr = raw, math.inf
        i = 0
        while i < len(events):
            thr = events[i][0]
            while i < len(events) and events[i][0] == thr:
                _, key, v = events[i]
                if key is None:
                    raw += v
                else:
                    cur = best_in_window.get(key)
                    if cur is None:
                        raw += v + fn
                        best_in_window[key] = v
                    elif v > cur:
                        raw += v - cur
                        best_in_window[key] = v
                i += 1
            if raw > best_raw:
                best_raw, best_thr = raw, thr
        perfect, null = tp * n_windows, -fn * n_windows
        out[profile] = 100.0 * (best_raw - null) / (perfect - null) if n_windows else 0.0
        out[f"threshold_{profile}"] = best_thr
    return out


__all__ = ["PROFILES", "ScoringFile", "probation_rows", "scaled_sigmoid", "score_corpus"]
