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

They live in :mod:`detectors.fusion.decisions`, :mod:`detectors.fusion.history` and
:mod:`detectors.fusion.bar`; import them from here.

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

from detectors.fusion.bar import FeedbackBar, IncidentLike, combination, combination_of
from detectors.fusion.decisions import (
    ACTIONS,
    CLOSED,
    TRANSITIONS,
    Decision,
    FeedbackAction,
    InvalidDecision,
    LifecycleState,
    MissingReason,
)
from detectors.fusion.history import Entry, WarningHistory

__all__ = [
    "ACTIONS", "CLOSED", "TRANSITIONS", "Decision", "Entry", "FeedbackAction", "FeedbackBar",
    "IncidentLike", "InvalidDecision", "LifecycleState", "MissingReason", "WarningHistory",
    "combination", "combination_of",
]
