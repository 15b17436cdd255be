"""The evidence bar operators' feedback adapts: per (region, combination of signal kinds),
how much stronger the evidence must be before that combination warns again
(:class:`FeedbackBar`), and the combination key. Importable from
:mod:`detectors.fusion.feedback`."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from detectors.fusion.decisions import Decision, decision_order, utc_minute


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
            last = b.last_dismissal
            if last is None or decision_order(decision) >= decision_order(last):
                b.last_dismissal = decision
        else:
            b.extra = max(0.0, b.extra - self.confirm_step * weight)
            b.confirmations += 1
            last = b.last_confirmation
            if last is None or decision_order(decision) >= decision_order(last):
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

    def explain(self, region: str, combination: str, t: float,
                when: Callable[[float], str] = utc_minute) -> str:
        """One short sentence for the duty officer: how far the bar is raised, and why;
        ``when`` quotes a decision's time (the correlator's wording: the officer's zone)."""
        b = self._bars.get((region, combination))
        if b is None:
            return "bar at base (no feedback)"
        why = []
        if b.dismissals and b.last_dismissal is not None:
            d = b.last_dismissal
            head = "1 dismissal:" if b.dismissals == 1 else f"{b.dismissals} dismissals, last:"
            why.append(f"{head} {d.reason!r}, by {d.by}, {when(d.at)}")
        if b.confirmations and b.last_confirmation is not None:
            c = b.last_confirmation
            head = ("1 confirmation" if b.confirmations == 1
                    else f"{b.confirmations} confirmations, last")
            why.append(f"{head} by {c.by}, {when(c.at)}")
        extra = self._now(b, t)
        if extra < _SHOWN:
            return f"bar back at base ({'; '.join(why)}; faded)"
        return (f"bar raised by {extra:.1f} ({'; '.join(why)}); "
                f"halves every {_span(self.half_life_s)}")

    def __len__(self) -> int:
        return len(self._bars)


__all__ = ["FeedbackBar", "IncidentLike", "combination", "combination_of"]
