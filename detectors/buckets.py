"""What the bucketed detectors (counts, rates) share: event-time buckets per key, and the
record of which buckets fired (one finding per key and bucket; fired windows stay out of
the baseline)."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any, ClassVar, Generic, Protocol, TypeVar


class KeyMarks(Protocol):
    fired: set[int]  # buckets that already produced a finding
    excluded: set[int]  # buckets inside a window that fired: kept out of the baseline


S = TypeVar("S", bound=KeyMarks)


class BucketedDetector(Generic[S]):
    """Base of :class:`~detectors.counts.CountSurge` and :class:`~detectors.rates.RateSurge`;
    subclasses set ``bucket_s``, ``scales`` and ``_keys``.

    Attributes named in ``_transient`` are caches derived from the rest of the state (and
    rebuilt on demand): they are left out of pickles and copies, so that a copy, a pickle
    round trip and the original give the same outputs and score_one leaves the pickled
    state as it was.
    """

    bucket_s: float
    scales: tuple[int, ...]
    _keys: dict[Hashable, S]
    _transient: ClassVar[tuple[str, ...]] = ()

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
        b = self.bucket_of(t)
        if b in st.fired:
            return False
        st.fired.add(b)
        st.excluded.update(range(b - max(self.scales) + 1, b + 1))
        return True

    @property
    def n_keys(self) -> int:
        return len(self._keys)


__all__ = ["BucketedDetector", "KeyMarks"]
