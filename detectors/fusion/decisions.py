"""Operator decisions on warnings: the actions, the lifecycle they drive
(:data:`TRANSITIONS`), one :class:`Decision` and the order of decisions. All importable
from :mod:`detectors.fusion.feedback`, the exceptions' public home."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

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

    # named by their public home (tracebacks, pickles), where callers import them from
    __module__ = "detectors.fusion.feedback"


class MissingReason(InvalidDecision):
    """A dismissal without a reason."""

    __module__ = "detectors.fusion.feedback"


def utc_minute(t: float) -> str:
    """``t`` (epoch seconds) as the minute in UTC, as decisions are quoted to operators."""
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


def decision_order(d: Decision) -> tuple[float, int, str, str]:
    """The sort key of decisions: event time, then action, operator and reason."""
    # event time first; ties broken by content, so the order never depends on arrival
    return (float(d.at), _RANK[d.action], d.by, d.reason or "")


__all__ = ["ACTIONS", "CLOSED", "TRANSITIONS", "Decision", "FeedbackAction", "InvalidDecision",
           "LifecycleState", "MissingReason", "decision_order", "utc_minute"]
