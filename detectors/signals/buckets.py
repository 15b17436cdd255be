"""What the bucketed detectors (counts, rates) share: event-time buckets per key, and the
record of which buckets fired (one finding per key and bucket; fired windows stay out of
the baseline).

Memory: a key's buckets are packed in ``array('q')`` cells (the bucket, then its numbers:
8 bytes each, see :func:`find_cell`), not dicts and tuples of int objects; the marks are
tuples of ints, empty (the shared ``()``: no memory) for a key that has not fired lately,
and a window that fired is held as its last bucket, not as its buckets."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar


def find_cell(cells: array[int], b: int, width: int) -> int:
    """The index of bucket ``b``'s cell in ``cells`` (cells of ``width`` ints, the first the
    bucket, in bucket order), or -1. Searched from the newest: the usual bucket."""
    i = len(cells) - width
    while i >= 0:
        bb = cells[i]
        if bb <= b:
            return i if bb == b else -1
        i -= width
    return -1


def spread_open(cells: array[int], b: int, longest: int, by_age: list[list[int]]) -> list[int]:
    """The numbers of bucket ``b``'s cell in ``cells`` (cells of ``1 + len(by_age)`` ints,
    see :func:`find_cell`; zeros if there is none); the numbers of the other cells of the
    last ``longest`` buckets go to ``by_age[j][b - bucket]`` (the ``j``-th number)."""
    width = 1 + len(by_age)
    n = len(cells)
    if n == width and cells[0] == b:  # b is the only open bucket: the usual case
        return cells[1:].tolist()
    here = [0] * (width - 1)
    for i in range(0, n, width):
        age = b - cells[i]
        if age == 0:
            here = cells[i + 1:i + width].tolist()
        elif 0 < age < longest:
            for j, col in enumerate(by_age, i + 1):
                col[age] = cells[j]
    return here


def add_cell(cells: array[int], b: int, width: int) -> int:
    """The index of bucket ``b``'s cell in ``cells`` (see :func:`find_cell`), inserted in
    bucket order with zero numbers if it was not there."""
    i = len(cells) - width
    while i >= 0 and cells[i] > b:
        i -= width
    if i >= 0 and cells[i] == b:
        return i
    i += width
    cells[i:i] = array("q", (b, *(0,) * (width - 1)))
    return i


class KeyMarks(Protocol):
    fired: tuple[int, ...]  # open buckets that already produced a finding
    # the last buckets of the windows that fired, in bucket order (each the longest scale's
    # window, so bucket x is inside the one ending at e iff e - max(scales) < x <= e), until
    # no bucket still to join the baseline can be inside them: see in_fired_window
    fired_windows: tuple[int, ...]

    def copy(self) -> Self:
        """A copy that ``advance`` can change without touching this one."""
        ...


S = TypeVar("S", bound=KeyMarks)


class BucketedDetector(Generic[S]):
    """Base of :class:`~detectors.signals.counts.CountSurge` and
    :class:`~detectors.signals.rates.RateSurge`; subclasses set ``bucket_s``, ``scales``
    (sorted), ``lateness_s``, ``_closed_through`` (the last closed bucket, None before
    the first watermark) and ``_keys``, and define ``advance``.

    Attributes named in ``_transient`` are caches derived from the rest of the state (and
    rebuilt on demand): they are left out of pickles and copies, so that a copy, a pickle
    round trip and the original give the same outputs and score_one leaves the pickled
    state as it was.
    """

    bucket_s: float
    scales: tuple[int, ...]
    lateness_s: float
    _closed_through: int | None
    _keys: dict[Hashable, S]
    _memo: Any  # explain_one's last answer, for learn_one (a cache: see the subclasses)
    _transient: ClassVar[tuple[str, ...]] = ()

    @staticmethod
    def _check_buckets(bucket_s: float, scales: Sequence[int]) -> None:
        """Refuse a bucket length or window lengths (in buckets) that make no window."""
        if bucket_s <= 0 or not scales or min(scales) < 1:
            raise ValueError("bucket_s must be > 0 and scales >= 1")

    def advance(self, watermark: float) -> None:
        raise NotImplementedError

    def _would_close(self, t: float) -> bool:
        """Whether ``advance(t)`` would close a bucket (``t`` finite)."""
        closed = self._closed_through
        return closed is None or (
            math.floor((t - self.lateness_s) / self.bucket_s) - 1 > closed)

    def _at(self, t: float) -> Self:
        """This detector if ``advance(t)`` would change nothing, else a copy advanced to
        ``t``: what explain_one judges an observation at ``t`` against, without moving
        this detector's watermark. (A copy at most once per bucket closed when the caller
        advances or learns in event-time order.)"""
        if not self._would_close(t):
            return self
        twin = self._fork()
        twin.advance(t)
        return twin

    def _fork(self) -> Self:
        """A copy whose watermark can move without touching this detector, for less than
        a pickle round trip: the state, each key's copied, the caches rebuilt
        (subclasses copy whatever else ``advance`` changes in place)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__getstate__())
        twin._keys = {k: st.copy() for k, st in self._keys.items()}
        twin._reset_transient()
        return twin

    def _catch_up(self, twin: Self | None, t: float) -> None:
        """Move the watermark to ``t``: take the state of ``twin`` (the copy advanced to
        ``t`` that explain_one judged against) if there is one, else :meth:`advance`."""
        if twin is not None:
            self.__dict__.update(twin.__dict__)
        else:
            self.advance(t)

    def has_fired(self, key: Hashable, t: float) -> bool:
        """Whether ``key`` already made a finding in ``t``'s bucket (while it is open)."""
        st = self._keys.get(key)
        return st is not None and self.bucket_of(t) in st.fired

    def _reset_transient(self) -> None:
        """Empty the caches (subclasses: whenever the baseline changes)."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._transient:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_transient()

    def bucket_of(self, t: float) -> int:
        return math.floor(t / self.bucket_s)

    def mark_fired(self, key: Hashable, t: float) -> bool:
        """Remember that ``key`` fired in ``t``'s bucket; False if it already had."""
        st = self._keys.get(key)
        if st is None:
            return True
        self._memo = None  # (a copy explain_one kept does not have the mark)
        b = self.bucket_of(t)
        if b in st.fired:
            return False
        st.fired += (b,)
        # every bucket of the longest window ending at b is now kept out of the baseline
        ends = st.fired_windows
        i = bisect_left(ends, b)
        if i == len(ends) or ends[i] != b:
            st.fired_windows = (*ends[:i], b, *ends[i:])  # (kept in bucket order)
        return True

    @staticmethod
    def unfire(st: S, b: int) -> None:
        """Forget that bucket ``b`` fired (it has closed)."""
        fired = st.fired
        if b in fired:
            st.fired = () if len(fired) == 1 else tuple(x for x in fired if x != b)

    def in_fired_window(self, st: S, b: int) -> bool:
        """Whether the closed bucket ``b`` lies inside a window that fired (so stays out of
        the baseline). Callers ask of each bucket once, in bucket order, as it leaves the
        guard band, and then :meth:`forget_fired_windows` through it (or through a later
        bucket: those still to leave the guard band are after it)."""
        ends = st.fired_windows
        i = bisect_left(ends, b)  # the first window ending at b or after: b is inside one
        return i < len(ends) and ends[i] - self.scales[-1] < b  # iff inside this one

    def leaves_fired_window(self, st: S, b: int) -> bool:
        """:meth:`in_fired_window`, then :meth:`forget_fired_windows` through ``b``."""
        ends = st.fired_windows
        if not ends:
            return False
        i = bisect_left(ends, b)
        inside = i < len(ends) and ends[i] - self.scales[-1] < b
        if i < len(ends) and ends[i] == b:
            i += 1
        if i:
            st.fired_windows = ends[i:]
        return inside

    @staticmethod
    def forget_fired_windows(st: S, through: int) -> None:
        """Drop the windows that end at or before bucket ``through``: no bucket after it
        is inside them."""
        ends = st.fired_windows
        if ends and ends[0] <= through:
            st.fired_windows = ends[bisect_right(ends, through):]

    @property
    def n_keys(self) -> int:
        return len(self._keys)


__all__ = ["BucketedDetector", "KeyMarks", "add_cell", "find_cell", "spread_open"]
