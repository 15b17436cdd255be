"""The warning history: every operator decision per warning, in event-time order,
duplicates ignored, and the lifecycle state they lead to (:class:`WarningHistory`).
Importable from :mod:`detectors.fusion.feedback`."""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass, field

from detectors.fusion.decisions import (
    CLOSED,
    TRANSITIONS,
    Decision,
    LifecycleState,
    decision_order,
    utc_minute,
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One decision in a warning's history, with what it did to the lifecycle.

    ``state`` is the state after it (unchanged when rejected); ``rejected_because`` says
    why it was not applied (``None`` when accepted).
    """

    decision: Decision
    accepted: bool
    state: LifecycleState
    rejected_because: str | None = None

    @property
    def rejected(self) -> bool:
        return not self.accepted


def _replay(decisions: list[Decision]) -> tuple[tuple[Entry, ...], LifecycleState, float | None]:
    """Entries, final state and closing time of decisions sorted by :func:`decision_order`."""
    state: LifecycleState = "open"
    last: Decision | None = None
    entries = []
    for d in decisions:
        nxt = TRANSITIONS[state].get(d.action)
        if nxt is None:
            allowed = ", ".join(TRANSITIONS[state]) or "nothing (closed)"
            by = f" by {last.by} at {utc_minute(last.at)}" if last is not None else ""
            entries.append(Entry(d, False, state,
                                 f"cannot {d.action} a warning {state}{by}; allowed now: "
                                 f"{allowed}"))
        else:
            state, last = nxt, d
            entries.append(Entry(d, True, state))
    closed_at = float(last.at) if last is not None and state in CLOSED else None
    return tuple(entries), state, closed_at


@dataclass(slots=True)
class _Warning:
    decisions: list[Decision] = field(default_factory=list)
    keys: set[tuple[str, str, str, float]] = field(default_factory=set)
    entries: tuple[Entry, ...] = ()
    state: LifecycleState = "open"
    closed_at: float | None = None
    last_at: float = -math.inf


class WarningHistory:
    """Every decision on every warning, and the lifecycle state it leads to.

    Decisions are kept in event-time order (``at``; ties broken by action, operator and
    reason, so the order does not depend on arrival). A decision with the same
    (warning_id, action, by, at) as one already kept is a replay and is ignored. The
    lifecycle (see :data:`TRANSITIONS`) is replayed over the ordered history after each
    decision, so a late decision lands where it belongs; a decision the lifecycle does not
    allow (e.g. confirm after resolve) is kept, marked rejected with the reason.

    Memory is bounded. A warning closed (dismissed or resolved) at time ``c`` is forgotten
    once event time (the latest ``at`` seen, or :meth:`advance`) reaches
    ``c + retention_s``; until then :meth:`history` returns it. Decisions that arrive for
    a forgotten warning are late replays and are ignored (counted in ``late``). At most
    ``max_warnings`` warnings are kept: beyond that the tenth closed earliest (then, if
    needed, the open ones idle longest) are forgotten early. A warning keeps at most
    ``max_entries`` decisions; further ones are ignored (counted in ``dropped``).

    >>> h = WarningHistory(retention_s=3600.0)
    >>> _ = h.record(Decision("tw-1", "resolve", "op-1", 100.0))
    >>> e = h.record(Decision("tw-1", "confirm", "op-2", 200.0))
    >>> e.accepted, e.rejected_because
    (False, 'cannot confirm a warning resolved by op-1 at 1970-01-01 00:01 UTC; allowed now: \
nothing (closed)')
    >>> h.record(Decision("tw-1", "confirm", "op-2", 200.0)) is None  # replayed
    True
    >>> h.advance(100.0 + 3600.0), h.history("tw-1")
    (['tw-1'], ())
    """

    def __init__(self, retention_s: float = 14 * 86400.0, max_warnings: int = 100_000,
                 max_entries: int = 200) -> None:
        if not retention_s >= 0:
            raise ValueError("retention_s must be >= 0")
        if max_warnings < 1 or max_entries < 1:
            raise ValueError("max_warnings and max_entries must be >= 1")
        self.retention_s = retention_s
        self.max_warnings = max_warnings
        self.max_entries = max_entries
        self.watermark = -math.inf
        self.duplicates = 0
        self.late = 0
        self.dropped = 0
        self._warnings: dict[str, _Warning] = {}
        self._expiry: list[tuple[float, str]] = []  # (forget at, warning_id), lazily checked
        self._forgotten: dict[str, None] = {}  # bounded, oldest first

    def record(self, d: Decision) -> Entry | None:
        """Add a decision; its entry (accepted or rejected), or ``None`` when it is a
        duplicate, late for a forgotten warning, or over ``max_entries``."""
        if d.warning_id in self._forgotten:
            self.late += 1
            return None
        w = self._warnings.get(d.warning_id)
        if w is not None and d.key in w.keys:
            self.duplicates += 1
            return None
        if w is None:
            if len(self._warnings) >= self.max_warnings:
                self._evict()
            w = self._warnings[d.warning_id] = _Warning()
        if len(w.decisions) >= self.max_entries:
            self.dropped += 1
            return None
        w.keys.add(d.key)
        bisect.insort(w.decisions, d, key=decision_order)
        w.last_at = max(w.last_at, float(d.at))
        w.entries, w.state, closed_at = _replay(w.decisions)
        if closed_at is not None and closed_at != w.closed_at:
            heapq.heappush(self._expiry, (closed_at + self.retention_s, d.warning_id))
        w.closed_at = closed_at
        entry = next(e for e in w.entries if e.decision is d)
        self.advance(float(d.at))
        return entry

    def advance(self, t: float) -> list[str]:
        """Move event time to ``t``; forget warnings closed ``retention_s`` ago. Returns the
        ids forgotten."""
        if math.isfinite(t):
            self.watermark = max(self.watermark, t)
        out = []
        while self._expiry and self._expiry[0][0] <= self.watermark:
            due, wid = heapq.heappop(self._expiry)
            w = self._warnings.get(wid)
            if w is None or w.closed_at is None or w.closed_at + self.retention_s != due:
                continue  # reopened by a late decision, or closed again later
            self._forget(wid)
            out.append(wid)
        return out

    def _forget(self, wid: str) -> None:
        del self._warnings[wid]
        self._forgotten[wid] = None
        while len(self._forgotten) > self.max_warnings:
            self._forgotten.pop(next(iter(self._forgotten)))

    def _evict(self) -> None:
        n = max(1, self.max_warnings // 10)
        victims = heapq.nsmallest(n, self._warnings.items(), key=lambda kv: (
            kv[1].closed_at is None,
            kv[1].closed_at if kv[1].closed_at is not None else kv[1].last_at, kv[0]))
        for wid, w in victims:
            if w.closed_at is not None:
                self._forget(wid)  # closed: later decisions on it are late replays
            else:
                del self._warnings[wid]  # open: may come back and start again

    def history(self, warning_id: str) -> tuple[Entry, ...]:
        """The decisions on a warning in event-time order (empty when unknown/forgotten)."""
        w = self._warnings.get(warning_id)
        return w.entries if w is not None else ()

    def state(self, warning_id: str) -> LifecycleState | None:
        """The lifecycle state, or ``None`` when no decision on the warning is known (a
        published warning without feedback is open)."""
        w = self._warnings.get(warning_id)
        return w.state if w is not None else None

    def closed_at(self, warning_id: str) -> float | None:
        """When the warning was dismissed or resolved (``None`` while it is not)."""
        w = self._warnings.get(warning_id)
        return w.closed_at if w is not None else None

    def __contains__(self, warning_id: object) -> bool:
        return warning_id in self._warnings

    def __len__(self) -> int:
        return len(self._warnings)


__all__ = ["Entry", "WarningHistory"]
