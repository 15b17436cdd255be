"""Operator feedback on warnings: the decisions duty officers send, the lifecycle they
drive, and the evidence bar they adapt.

Pure Python, no Kafka. Times are epoch seconds of event time (the time of the decision),
never the wall clock, so that replaying the feedback topic gives the same result.

* :class:`Decision` -- one operator decision (acknowledge, confirm, dismiss, resolve) on
  one warning. A dismissal needs a reason (:class:`MissingReason` otherwise).
* :class:`WarningHistory` -- every decision per warning, in event-time order, duplicates
  ignored, and the lifecycle state they lead to. Decisions the lifecycle does not allow
  are kept, marked rejected, never raised.
* :class:`FeedbackBar` -- per (region, combination of signal kinds), how much stronger
  the evidence must be before that combination warns again: a dismissal raises the bar,
  a confirmation lowers it (never below the base), and both fade with a half-life.

>>> hist, bar = WarningHistory(), FeedbackBar()
>>> d = Decision("tw-r1-1", "dismiss", "op-7", 1_767_261_600.0, "factory test, known")
>>> entry = hist.record(d)
>>> entry.accepted, hist.state("tw-r1-1")
(True, 'dismissed')
>>> combo = combination(["env:water_cod", "complaint:odor"], "pollution")
>>> combo
'pollution|complaint:odor+env:water_cod'
>>> bar.learn(d, "r1", combo)
True
>>> bar.extra_score("r1", combo, d.at), bar.extra_score("r2", combo, d.at)
(2.0, 0.0)
>>> bar.extra_score("r1", combo, d.at + 7 * 86400)  # one half-life later
1.0
>>> bar.explain("r1", combo, d.at)
"bar raised by 2.0 (1 dismissal: 'factory test, known', by op-7, 2026-01-01 10:00 UTC); \
halves every 7 days"
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal, Protocol

FeedbackAction = Literal["acknowledge", "confirm", "dismiss", "resolve"]
LifecycleState = Literal["open", "acknowledged", "confirmed", "dismissed", "resolved"]

#: the actions, in the order used to break ties between decisions of the same time
ACTIONS: Final[tuple[FeedbackAction, ...]] = ("acknowledge", "confirm", "dismiss", "resolve")
_ACTION: Final[dict[str, FeedbackAction]] = {a: a for a in ACTIONS}
_RANK: Final[dict[str, int]] = {a: i for i, a in enumerate(ACTIONS)}

#: allowed lifecycle transitions: state -> action -> next state. Anything else is rejected.
#: Acknowledging is optional (an open warning may be confirmed, dismissed or resolved
#: directly); a confirmed warning may still be dismissed and a dismissed one confirmed
#: (the operator corrects a decision); a resolved warning is final.
TRANSITIONS: Final[Mapping[LifecycleState, Mapping[FeedbackAction, LifecycleState]]] = {
    "open": {"acknowledge": "acknowledged", "confirm": "confirmed",
             "dismiss": "dismissed", "resolve": "resolved"},
    "acknowledged": {"confirm": "confirmed", "dismiss": "dismissed", "resolve": "resolved"},
    "confirmed": {"dismiss": "dismissed", "resolve": "resolved"},
    "dismissed": {"confirm": "confirmed"},
    "resolved": {},
}
#: states in which a warning is closed (its history is forgotten after the retention)
CLOSED: Final[frozenset[str]] = frozenset({"dismissed", "resolved"})


class InvalidDecision(ValueError):
    """A decision that cannot be taken as sent; the message says what to send instead."""


class MissingReason(InvalidDecision):
    """A dismissal without a reason."""


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class Decision:
    """One operator decision on one warning.

    ``by`` is the operator id, ``at`` the event time of the decision (epoch seconds);
    ``reason`` is required (non-blank) for ``dismiss`` and optional otherwise.

    >>> Decision("tw-1", "dismiss", "op-7", 0.0)
    Traceback (most recent call last):
    ...
    detectors.fusion.feedback.MissingReason: dismissing tw-1 needs a reason: send reason='why it \
is a false alarm' (e.g. 'factory test, known'), so the next duty officer knows
    """

    warning_id: str
    action: FeedbackAction
    by: str
    at: float
    reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.warning_id, str) or not self.warning_id.strip():
            raise InvalidDecision("a decision needs the warning_id of the warning it is about")
        if not isinstance(self.action, str) or self.action not in _ACTION:
            raise InvalidDecision(
                f"unknown action {self.action!r} on {self.warning_id}: send one of "
                + ", ".join(ACTIONS))
        if not isinstance(self.by, str) or not self.by.strip():
            raise InvalidDecision(
                f"{self.action} on {self.warning_id} needs the operator id in 'by'")
        if isinstance(self.at, bool) or not isinstance(self.at, int | float) \
                or not math.isfinite(self.at):
            raise InvalidDecision(
                f"{self.action} on {self.warning_id} needs 'at', the time of the decision "
                f"in epoch seconds (got {self.at!r})")
        if self.reason is not None and not isinstance(self.reason, str):
            raise InvalidDecision(f"'reason' must be text (got {self.reason!r})")
        if self.action == "dismiss" and (self.reason is None or not self.reason.strip()):
            raise MissingReason(
                f"dismissing {self.warning_id} needs a reason: send reason='why it is a "
                "false alarm' (e.g. 'factory test, known'), so the next duty officer knows")

    @property
    def key(self) -> tuple[str, str, str, float]:
        """Identity for de-duplication: (warning_id, action, by, at)."""
        return (self.warning_id, self.action, self.by, float(self.at))

    @classmethod
    def from_mapping(cls, m: Mapping[str, object]) -> Decision:
        """A decision from a decoded message (``action`` case-insensitive, ``at`` a number
        or numeric string). Raises :class:`InvalidDecision` (or :class:`MissingReason`).

        >>> Decision.from_mapping({"warning_id": "tw-1", "action": "Confirm", "by": "op-2",
        ...                        "at": "1700000000"})
        Decision(warning_id='tw-1', action='confirm', by='op-2', at=1700000000.0, reason=None)
        """
        action = _ACTION.get(str(m.get("action", "")).strip().lower())
        if action is None:
            raise InvalidDecision(
                f"unknown action {m.get('action')!r}: send one of " + ", ".join(ACTIONS))
        raw_at = m.get("at")
        try:
            at = float(raw_at) if isinstance(raw_at, int | float | str) \
                and not isinstance(raw_at, bool) else math.nan
        except ValueError:
            at = math.nan
        if not math.isfinite(at):
            raise InvalidDecision(
                f"{action} needs 'at', the time of the decision in epoch seconds "
                f"(got {raw_at!r})")
        reason = m.get("reason")
        return cls(str(m.get("warning_id", "")), action, str(m.get("by", "")), at,
                   None if reason is None else str(reason))


def _order(d: Decision) -> tuple[float, int, str, str]:
    # event time first; ties broken by content, so the order never depends on arrival
    return (float(d.at), _RANK[d.action], d.by, d.reason or "")


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
    """Entries, final state and closing time of decisions sorted by :func:`_order`."""
    state: LifecycleState = "open"
    last: Decision | None = None
    entries = []
    for d in decisions:
        nxt = TRANSITIONS[state].get(d.action)
        if nxt is None:
            allowed = ", ".join(TRANSITIONS[state]) or "nothing (closed)"
            by = f" by {last.by} at {_ts(last.at)}" if last is not None else ""
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
        bisect.insort(w.decisions, d, key=_order)
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


# -- the evidence bar ----------------------------------------------------------------------
class _Kind(Protocol):
    @property
    def kind(self) -> str: ...


class IncidentLike(Protocol):
    """What :func:`combination_of` needs of an incident (e.g. ``IncidentVersion``)."""

    @property
    def scenario(self) -> str: ...

    @property
    def evidence(self) -> Iterable[_Kind]: ...


def combination(kinds: Iterable[str], scenario: str | None = None) -> str:
    """The canonical combination key of an incident: its scenario, ``|``, and the sorted
    distinct signal kinds joined by ``+``.

    >>> combination(["env:water_cod", "complaint:odor", "env:water_cod"])
    'complaint:odor+env:water_cod'
    """
    joined = "+".join(sorted({k.strip() for k in kinds if k.strip()}))
    return f"{scenario}|{joined}" if scenario else joined


def combination_of(incident: IncidentLike) -> str:
    """:func:`combination` of an incident version (its scenario and evidence kinds)."""
    return combination((f.kind for f in incident.evidence), incident.scenario)


#: how many (warning, action) pairs each key remembers to ignore replayed decisions
_SEEN_PER_KEY = 16
#: extra below which the bar is shown as back at base
_SHOWN = 0.05


@dataclass(slots=True)
class _Bar:
    extra: float
    t: float
    dismissals: int = 0
    confirmations: int = 0
    last_dismissal: Decision | None = None
    last_confirmation: Decision | None = None
    seen: dict[tuple[str, str], None] = field(default_factory=dict)


def _span(s: float) -> str:
    if s >= 86400:
        v, unit = s / 86400, "day"
    elif s >= 3600:
        v, unit = s / 3600, "hour"
    else:
        v, unit = s, "second"
    return f"{v:.3g} {unit}{'' if v == 1 else 's'}"


class FeedbackBar:
    """How much stronger the evidence for a (region, combination) must be because of
    operator feedback, in -log10 p units on top of the base threshold.

    A dismissal adds ``dismiss_step`` (the combined p-value must be ``dismiss_factor`` =
    10**dismiss_step times smaller), up to ``max_extra``; a confirmation takes
    ``confirm_step`` off, never below 0 (the base). The extra decays towards 0 with
    ``half_life_s`` of event time, so a dismissed false alarm does not come back within
    the hour but is forgotten after a few half-lives. Acknowledge and resolve change
    nothing. Learn only the decisions :class:`WarningHistory` accepted: then a warning
    dismissed by two officers counts once. Each key also ignores a (warning_id, action) it
    has already learned among its last 16 (replays).

    A decision older than the key's last update counts with the decay it would have had by
    then. ``extra_score`` at a time before the last update returns the value at that
    update (no un-decaying); a non-finite ``t`` means the last update time.

    At most ``max_keys`` keys are kept; when a new key would exceed it, the tenth closest
    to base now (ties: least recently updated) is dropped. Deterministic, pickle-able.

    >>> bar = FeedbackBar(dismiss_step=2.0, max_extra=3.0, half_life_s=3600.0)
    >>> for i in range(3):
    ...     _ = bar.learn(Decision(f"tw-{i}", "dismiss", "op-1", 0.0, "test"), "r1", "c")
    >>> bar.extra_score("r1", "c", 0.0), bar.extra_score("r1", "c", 3600.0)
    (3.0, 1.5)
    >>> _ = bar.learn(Decision("tw-9", "confirm", "op-2", 3600.0), "r1", "c")
    >>> bar.extra_score("r1", "c", 3600.0)
    0.5
    """

    def __init__(self, dismiss_step: float = 2.0, confirm_step: float = 1.0,
                 half_life_s: float = 7 * 86400.0, max_extra: float = 6.0,
                 max_keys: int = 10_000) -> None:
        if not (dismiss_step >= 0 and confirm_step >= 0):
            raise ValueError("dismiss_step and confirm_step must be >= 0")
        if not half_life_s > 0:
            raise ValueError("half_life_s must be > 0")
        if not (max_extra >= 0 and math.isfinite(max_extra)):
            raise ValueError("max_extra must be finite and >= 0")
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.dismiss_step = dismiss_step
        self.confirm_step = confirm_step
        self.half_life_s = half_life_s
        self.max_extra = max_extra
        self.max_keys = max_keys
        self._bars: dict[tuple[str, str], _Bar] = {}

    @property
    def dismiss_factor(self) -> float:
        """How many times smaller the p-value must be after one dismissal."""
        return float(10.0 ** self.dismiss_step)

    def _decay(self, dt: float) -> float:
        return 0.5 ** (dt / self.half_life_s) if dt > 0 else 1.0

    def _now(self, b: _Bar, t: float) -> float:
        return b.extra * self._decay(t - b.t) if math.isfinite(t) else b.extra

    def learn(self, decision: Decision, region: str, combination: str,
              t: float | None = None) -> bool:
        """Apply a decision about a warning of ``combination`` in ``region``, taking effect
        at event time ``t`` (default ``decision.at``). True if the bar changed."""
        if decision.action not in ("dismiss", "confirm"):
            return False
        when = float(decision.at) if t is None or not math.isfinite(t) else float(t)
        key = (region, combination)
        b = self._bars.get(key)
        if b is None:
            if decision.action == "confirm":
                return False  # already at base: nothing to lower
            if len(self._bars) >= self.max_keys:
                self._evict(when)
            b = self._bars[key] = _Bar(0.0, when)
        seen = (decision.warning_id, decision.action)
        if seen in b.seen:
            return False
        b.seen[seen] = None
        if len(b.seen) > _SEEN_PER_KEY:
            b.seen.pop(next(iter(b.seen)))
        if when >= b.t:
            b.extra, b.t, weight = self._now(b, when), when, 1.0
        else:
            weight = self._decay(b.t - when)
        before = b.extra
        if decision.action == "dismiss":
            b.extra = min(self.max_extra, b.extra + self.dismiss_step * weight)
            b.dismissals += 1
            if b.last_dismissal is None or _order(decision) >= _order(b.last_dismissal):
                b.last_dismissal = decision
        else:
            b.extra = max(0.0, b.extra - self.confirm_step * weight)
            b.confirmations += 1
            if b.last_confirmation is None or _order(decision) >= _order(b.last_confirmation):
                b.last_confirmation = decision
        return b.extra != before

    def _evict(self, t: float) -> None:
        n = max(1, self.max_keys // 10)
        victims = heapq.nsmallest(
            n, self._bars.items(), key=lambda kv: (self._now(kv[1], t), kv[1].t, kv[0]))
        for key, _ in victims:
            del self._bars[key]

    def extra_score(self, region: str, combination: str, t: float) -> float:
        """Extra -log10 p the evidence for this region and combination needs at event time
        ``t`` (0 without feedback); always in ``[0, max_extra]``."""
        b = self._bars.get((region, combination))
        return 0.0 if b is None else self._now(b, t)

    def explain(self, region: str, combination: str, t: float) -> str:
        """One short sentence for the duty officer: how far the bar is raised, and why."""
        b = self._bars.get((region, combination))
        if b is None:
            return "bar at base (no feedback)"
        why = []
        if b.dismissals and b.last_dismissal is not None:
            d = b.last_dismissal
            head = "1 dismissal:" if b.dismissals == 1 else f"{b.dismissals} dismissals, last:"
            why.append(f"{head} {d.reason!r}, by {d.by}, {_ts(d.at)}")
        if b.confirmations and b.last_confirmation is not None:
            c = b.last_confirmation
            head = ("1 confirmation" if b.confirmations == 1
                    else f"{b.confirmations} confirmations, last")
            why.append(f"{head} by {c.by}, {_ts(c.at)}")
        extra = self._now(b, t)
        if extra < _SHOWN:
            return f"bar back at base ({'; '.join(why)}; faded)"
        return (f"bar raised by {extra:.1f} ({'; '.join(why)}); "
                f"halves every {_span(self.half_life_s)}")

    def __len__(self) -> int:
        return len(self._bars)


__all__ = [
    "ACTIONS", "CLOSED", "TRANSITIONS", "Decision", "Entry", "FeedbackAction", "FeedbackBar",
    "IncidentLike", "InvalidDecision", "LifecycleState", "MissingReason", "WarningHistory",
    "combination", "combination_of",
]
