"""A rate key's state (:class:`_RateState`, kept per key by
:class:`~detectors.signals.rates.RateSurge`) and the scoring windows cached from it
(:class:`_Windows`)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class _RateState:
    """One key's state (kept small: one per region)."""

    # the buckets not yet closed, in bucket order, packed in int64 triples: bucket, trials,
    # failures, bucket, ... (see ``open``)
    opened: array[int] = field(default_factory=lambda: array("q"))
    # the closed buckets with trials still in the guard band, oldest first, packed in int64
    # triples: bucket, trials, failures, bucket, ... (see ``recent``)
    closed: array[int] = field(default_factory=lambda: array("q"))
    n_sum: float = 0.0  # decayed trials in the baseline
    k_sum: float = 0.0  # decayed failures in the baseline
    fired: tuple[int, ...] = ()
    fired_windows: tuple[int, ...] = ()  # windows that fired (see buckets.KeyMarks)
    outlier_run: int = 0

    @property
    def open(self) -> dict[int, tuple[int, int]]:
        """(trials, failures) by bucket, of the buckets not yet closed."""
        it = iter(self.opened)
        return {b: (n, k) for b, n, k in zip(it, it, it, strict=True)}

    @property
    def recent(self) -> list[tuple[int, int, int]]:
        """(bucket, trials, failures) of the closed buckets in the guard band, oldest
        first."""
        it = iter(self.closed)
        return list(zip(it, it, it, strict=True))

    def copy(self) -> _RateState:
        return _RateState(array("q", self.opened), array("q", self.closed), self.n_sum,
                          self.k_sum, self.fired, self.fired_windows, self.outlier_run)

    # pickled as plain values (small ints pickle in 2 to 5 bytes, an array's in 8)
    def __getstate__(self) -> tuple[Any, ...]:
        return (tuple(self.opened), tuple(self.closed), self.n_sum, self.k_sum, self.fired,
                self.fired_windows, self.outlier_run)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (opened, closed, self.n_sum, self.k_sum, self.fired, self.fired_windows,
         self.outlier_run) = state
        self.opened = array("q", opened)
        self.closed = array("q", closed)


@dataclass(slots=True)
class _Windows:
    """The scoring windows of one key ending at ``bucket`` and the state of their tails
    (see ``RateSurge._tail``); a cache, valid until the next bucket closes or a late trial
    lands in one of the windows' other buckets."""

    bucket: int
    a: float  # the key's Beta baseline
    b: float
    lb: float  # betaln(a, b)
    rate: float  # a / (a + b)
    ab: float  # a + b
    # trials and failures in ``bucket`` (0 if it is closed: they are in the bases then);
    # learn_one keeps them up to date
    here_n: int
    here_k: int
    # per scale, a list: [0] trials and [1] failures in the window's other buckets (the
    # base of its tail's recurrences); [2] j = max(base failures, 1) - 1; [3] m, [4]
    # P(X_m <= j) and [5] P(X_m = j) for X_m ~ BetaBinomial(m, a, b), carried from
    # m = base trials up (m = -1: not started); [6] trials, [7] failures and [8] p at the
    # window's last evaluation (trials -1: none); [9] a + j and [10] b - j
    wins: list[list[Any]]
    best: int  # the window that won the last evaluation


__all__ = ["_RateState", "_Windows"]
