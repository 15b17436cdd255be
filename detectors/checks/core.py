"""What the checks share: the stream and spec types, the one driver, and small helpers.

A detector is driven one observation at a time exactly as the pipeline drives it (the
contract in :mod:`detectors.base`): ``score_one(x, t)`` (and ``explain_one(x, t)`` where a
check needs it) before ``learn_one(x, t)``, in the stream's (event-time) order. There is
no adapter per detector or family: keyed and bucketed detectors take the
same three calls.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.base import Score

#: one event of a labelled stream: (observation, event time in epoch seconds, is_anomaly)
Event = tuple[Any, float, bool]
Stream = list[Event]

#: a midnight UTC; synthetic streams start here
T0 = 1_772_409_600.0
HOUR = 3600.0


# -- the one driver ---------------------------------------------------------------------------


def drive(det: Any, x: Any, t: float) -> float:
    """Score ``x`` at ``t``, then learn it; the score."""
    out: float = det.score_one(x, t)
    det.learn_one(x, t)
    return out


def drive_explained(det: Any, x: Any, t: float) -> tuple[Any, Any]:
    """Explain and score ``x`` at ``t``, then learn it; ``(score, explanation)`` as
    returned (the checks judge their types)."""
    s = det.explain_one(x, t)
    v = det.score_one(x, t)
    det.learn_one(x, t)
    return v, s


def run(det: Any, stream: Sequence[Event]) -> list[float]:
    """Drive ``det`` over ``stream``; the scores, in order."""
    return [drive(det, x, t) for x, t, _ in stream]


# -- stream families and specs ------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A kind of input and the seeded streams of it the checks use.

    ``stream(seed, n)``: a labelled stream; ``edges(seed)``: flat, quantised, missing,
    irregular and other awkward streams, by name; ``null(seed, n)``: the same source with
    nothing injected (its first ``warmup`` events are not judged); ``clear(seed)``: a null
    stretch, then one blatant labelled anomaly; ``flagged(score)``: whether an explanation
    is a finding under :mod:`detectors.policy`; ``memory(seed, n)``: a long stream that
    keeps bringing new values (and, keyed, new buckets of a fixed key set).
    """

    name: str
    stream: Callable[[int, int], Stream]
    edges: Callable[[int], dict[str, Stream]]
    null: Callable[[int, int], Stream]
    clear: Callable[[int], Stream]
    flagged: Callable[[Score], bool]
    memory: Callable[[int, int], Stream] | None = None
    warmup: int = 1_000


def _one_series(det: Any) -> int:
    return 1


@dataclass(frozen=True)
class DetectorSpec:
    """How the generic checks build and judge one detector class.

    ``make(seed)`` builds it with small test parameters, ``make_default(seed)`` with its
    production ones (the benchmark's subject). ``families``: the inputs it takes (every
    check runs on each). ``max_state_bytes`` bounds the pickled detector after
    ``memory_events`` events of the first family's memory stream (``memory_series`` series
    or keys of it); ``n_series`` says how many series (keys, entities) a detector holds.
    ``calibrated``: its score is a probability (else the false-alarm rate is not judged
    and "flags" means out-ranking every null reading); ``max_false_alarm``: the share of
    null events past warm-up explained with ``p < NOMINAL_P`` it may reach (about
    ``NOMINAL_P`` for a calibrated detector). ``refractory``: ``score_one`` may be 0 where
    ``explain_one``'s p is small (an excursion already reported, SensorEnsemble).
    """

    name: str
    module: str
    make: Callable[[int], Any]
    families: tuple[Family, ...]
    auc_floor: float
    o1: bool
    max_state_bytes: int
    make_default: Callable[[int], Any] | None = None
    memory_events: int = 100_000
    memory_series: int = 1
    n_series: Callable[[Any], int] = _one_series
    check_events: int = 2_000  # stream length of the short checks
    auc_events: int = 6_000
    null_events: int = 6_000
    calibrated: bool = True
    max_false_alarm: float = 0.02
    refractory: bool = False
    note: str = ""

    @property
    def family(self) -> Family:
        """The first family: the stream of the single-stream checks and the benchmark."""
        return self.families[0]

    def stream(self, seed: int, n: int) -> Stream:
        return self.family.stream(seed, n)

    def edge_streams(self, seed: int) -> dict[str, Stream]:
        """Every family's edge streams, and the labelled streams of the families after
        the first, by ``family:name``."""
        out: dict[str, Stream] = {}
        for i, fam in enumerate(self.families):
            if i:
                out[f"{fam.name}:main"] = fam.stream(seed, self.check_events)
            out.update({f"{fam.name}:{k}": v for k, v in fam.edges(seed).items()})
        return out

    def build_default(self, seed: int) -> Any:
        return (self.make_default or self.make)(seed)

    def long_stream(self, seed: int, n: int) -> Stream:
        return (self.family.memory or self.family.stream)(seed, n)


#: the p-value whose rate the false-alarm check measures on null streams
NOMINAL_P = 0.01


# -- helpers ------------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Deep equality with NaN equal to NaN and types compared (1 == 1.0 is not the same)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(u, v) for u, v in zip(a, b, strict=True))
    if isinstance(a, set | frozenset):
        return bool(a == b)
    return bool(a == b)


def first_difference(a: Sequence[Any], b: Sequence[Any]) -> str:
    if len(a) != len(b):
        return f"{len(a)} outputs against {len(b)}"
    for i, (u, v) in enumerate(zip(a, b, strict=True)):
        if not same(u, v):
            return f"first difference at event {i}: {u!r} against {v!r}"
    return "no difference"


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Exact ROC-AUC (the Mann-Whitney U statistic over positives x negatives; ties count
    one half). NaN scores rank lowest."""
    if len(scores) != len(labels):
        raise ValueError("scores and labels differ in length")
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("need both positive and negative labels")
    keyed = sorted(
        (-math.inf if math.isnan(s) else s, bool(y)) for s, y in zip(scores, labels, strict=True)
    )
    rank_sum = 0.0
    i = 0
    while i < len(keyed):
        j = i
        while j + 1 < len(keyed) and keyed[j + 1][0] == keyed[i][0]:
            j += 1
        avg_rank = (i + j) / 2.0 + 1.0  # ranks are 1-based
        rank_sum += avg_rank * sum(1 for k in range(i, j + 1) if keyed[k][1])
        i = j + 1
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def state_bytes(det: Any) -> int:
    return len(pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL))


def is_unit(v: Any) -> bool:
    """A real float (not a bool, not a Score) that is finite and in [0, 1]."""
    return isinstance(v, float | int) and not isinstance(v, bool) and math.isfinite(v) and (
        0.0 <= v <= 1.0)


__all__ = [
    "HOUR",
    "NOMINAL_P",
    "T0",
    "DetectorSpec",
    "Event",
    "Family",
    "Stream",
    "drive",
    "drive_explained",
    "first_difference",
    "is_unit",
    "roc_auc",
    "run",
    "same",
    "state_bytes",
]
