"""A count key's state (:class:`_KeyState`, kept per key by
:class:`~detectors.signals.counts.CountSurge`) and the scoring windows cached from it
(:class:`_Windows`)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class _KeyState:
    """One key's state (kept small: a detector may hold one per region and kind)."""

    closed_through: int  # last closed bucket index
    # the buckets not yet closed and their events, in bucket order, packed in int64 pairs:
    # bucket, count, bucket, count, ... (see ``open``)
    opened: array[int] = field(default_factory=lambda: array("q"))
    # the closed buckets still in the guard band, oldest first, packed in int64 pairs:
    # bucket, count, bucket, count, ... (see ``recent``)
    closed: array[int] = field(default_factory=lambda: array("q"))
    level_sum: float = 0.0  # decayed sum of de-seasonalised counts
    level_n: float = 0.0  # decayed number of buckets
    disp_sum: float = 0.0  # decayed sum of (count - expected)^2
    disp_n: float = 0.0  # decayed sum of expected
    fired: tuple[int, ...] = ()
    fired_windows: tuple[int, ...] = ()  # windows that fired (see buckets.KeyMarks)
    outlier_run: int = 0
    # per window scale longer than one bucket (``CountSurge._wide``), the decayed sums of
    # (window count - expected)^2 and of expected: sq, exp, sq, exp, ... (empty until the
    # first window is learned)
    wdisp: array[float] = field(default_factory=lambda: array("d"))

    @property
    def open(self) -> dict[int, int]:
        """Events by bucket, of the buckets not yet closed."""
        it = iter(self.opened)
        return dict(zip(it, it, strict=True))

    @property
    def recent(self) -> list[tuple[int, int]]:
        """(bucket, count) of the closed buckets in the guard band, oldest first."""
        it = iter(self.closed)
        return list(zip(it, it, strict=True))

    def copy(self) -> _KeyState:
        return _KeyState(self.closed_through, array("q", self.opened), array("q", self.closed),
                         self.level_sum, self.level_n, self.disp_sum, self.disp_n, self.fired,
                         self.fired_windows, self.outlier_run, array("d", self.wdisp))

    # pickled as plain values (small ints pickle in 2 to 5 bytes, an array's in 8)
    def __getstate__(self) -> tuple[Any, ...]:
        return (self.closed_through, tuple(self.opened), tuple(self.closed), self.level_sum,
                self.level_n, self.disp_sum, self.disp_n, self.fired, self.fired_windows,
                self.outlier_run, tuple(self.wdisp))

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        if len(state) == 10:  # pickled before the per-scale dispersion
            state = (*state, ())
        (self.closed_through, opened, closed, self.level_sum, self.level_n,
         self.disp_sum, self.disp_n, self.fired, self.fired_windows, self.outlier_run,
         wdisp) = state
        self.opened = array("q", opened)
        self.closed = array("q", closed)
        self.wdisp = array("d", wdisp)


@dataclass(slots=True)
class _Windows:
    """What the scoring windows ending at ``bucket`` take from a key's closed buckets and
    baseline; fixed until the next bucket closes (a cache: see ``CountSurge._windows``)."""

    bucket: int
    others: list[int]  # events in the window's buckets other than an open ``bucket``, per scale
    here: int  # events of ``bucket``, while it is open (learn_one keeps both up to date)
    closed_here: int  # events of ``bucket`` itself, if it is closed
    expected: list[float]  # expected events in the window, per scale
    scaled: list[float]  # expected / phi per scale (0 if nothing is expected)
    expected_here: float  # expected events in ``bucket``
    phi: float  # per-bucket dispersion as the tails take it (at least 1)
    # per scale, the negative binomial of the counts / phi: its size 1 / alpha (0: none,
    # the quasi-Poisson tail) and success probability (see CountSurge._alphas)
    sizes: list[float]
    probs: list[float]


__all__ = ["_KeyState", "_Windows"]
