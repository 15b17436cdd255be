"""Event-time reorder buffer: releases items in event-time order once no earlier item can
still arrive.

Anomalies reach the correlator from many source partitions, and the interleaving of those
partitions differs between a live run and a replay. Every upstream stream (a source topic
partition) reports its watermark, the largest event time it has processed; an upstream
never emits an item older than its watermark minus ``lateness_s``. So everything strictly
older than ``min(watermarks) - lateness_s`` is final and is released sorted by
``(event time, key)``: the same sequence whatever the arrival order.

Streams named in ``expected`` hold the buffer back from its creation, before they first
report (a partition whose consumer starts late must not find its items already passed).
Streams that have not reported for ``idle_s`` of wall-clock time stop holding the others
back (a partition that went quiet must not stall every warning), and ``flush`` releases
everything, e.g. when all input has stopped.

>>> buf = EventTimeBuffer(lateness_s=10.0)
>>> buf.push(50.0, "b", "late-b")
>>> buf.push(40.0, "a", "early-a")
>>> buf.watermark("env/0", 55.0, wall=0.0)
>>> buf.release(wall=0.0)        # 55 - 10 = 45: only the item at 40 is final
[(40.0, 'early-a')]
>>> buf.watermark("env/0", 70.0, wall=0.0)
>>> buf.release(wall=0.0)
[(50.0, 'late-b')]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class EventTimeBuffer(Generic[T]):
    """Holds items until the minimum upstream watermark (minus lateness) passes them."""

    def __init__(self, lateness_s: float, idle_s: float = math.inf,
                 expected: Iterable[str] = (), wall: float = 0.0) -> None:
        if lateness_s < 0:
            raise ValueError("lateness_s must be >= 0")
        self.lateness_s = lateness_s
        self.idle_s = idle_s
        self._heap: list[tuple[float, str, int, T]] = []
        self._seq = 0
        # stream -> (watermark, wall clock of its last report)
        self._streams: dict[str, tuple[float, float]] = dict.fromkeys(
            expected, (-math.inf, wall))
        self.released_until = -math.inf
        self.late_items = 0  # items that arrived after their time had been released

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, t: float, key: str, item: T) -> None:
        """Add an item with event time ``t``; ``key`` breaks ties deterministically."""
        if t < self.released_until:
            self.late_items += 1
        self._seq += 1
        heapq.heappush(self._heap, (t, key, self._seq, item))

    def watermark(self, stream: str, t: float, wall: float) -> None:
        """Stream ``stream`` has processed everything up to event time ``t``."""
        cur = self._streams.get(stream)
        self._streams[stream] = (t if cur is None else max(cur[0], t), wall)

    def rebase(self, wall: float) -> None:
        """Restart the idle clocks at ``wall`` (state restored in another process, whose
        monotonic clock means nothing here): every stream counts as just heard from."""
        self._streams = {k: (wm, wall) for k, (wm, _) in self._streams.items()}

    def threshold(self, wall: float) -> float:
        """Items strictly older than this are final."""
        active = [wm for wm, seen in self._streams.values() if wall - seen <= self.idle_s]
        if not active:
            # all idle: the ones that reported have said how far they got
            active = [wm for wm, _ in self._streams.values() if wm > -math.inf]
            if not active:
                return -math.inf
        return min(active) - self.lateness_s

    def release(self, wall: float) -> list[tuple[float, T]]:
        """Pop every final item, oldest first."""
        limit = self.threshold(wall)
        # late items (older than what was already released) go out at once, in order
        limit = max(limit, self.released_until)
        out: list[tuple[float, T]] = []
        while self._heap and self._heap[0][0] < limit:
            t, _, _, item = heapq.heappop(self._heap)
            out.append((t, item))
        if limit > self.released_until:
            self.released_until = limit
        return out

    def held(self) -> list[tuple[float, T]]:
        """Every item held, oldest first (left held)."""
        return [(e[0], e[3]) for e in sorted(self._heap, key=lambda e: e[:3])]

    def flush(self) -> list[tuple[float, T]]:
        """Release everything held, oldest first."""
        out = self.held()
        self._heap.clear()
        if out:
            self.released_until = max(self.released_until, out[-1][0])
        return out


__all__ = ["EventTimeBuffer"]
