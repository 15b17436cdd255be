"""Detection policy, stated once: which p-values make a finding, which are weak evidence,
and how a weak finding is told apart by its id.

Plain constants and functions (no imports from the rest of the package, so anything may
import them). A detector's ``explain_one`` gives a :class:`~detectors.base.Score`; these
rules say what the pipeline and the bucketed detectors (which keep fired windows out of
their baseline) make of it.

>>> fired(1e-3, 3), fired(1e-3, 1), fired(0.01, 9)
(True, False, False)
>>> weak(0.01, 9), weak(1e-3, 1), weak(1e-3, 3), weak(0.2, 9)
(True, True, False, False)
>>> level_fired(1e-6), level_fired(1e-4)
(True, False)
>>> is_weak("complaint:odor:harbour@491234~2"), is_weak("complaint:odor:harbour@491234")
(True, False)
>>> alert_level(0.003), alert_level(0.03), alert_level(0.3)
('red', 'yellow', None)
"""

from __future__ import annotations

#: p-value below which a level signal (a sensor reading, a price) is an anomaly
ALPHA_LEVEL = 1e-5
#: p-value below which a sustained sensor shift is reported (hourly while it lasts). Its
#: p-value is the larger of the Gaussian tail and the series' own learned tail
#: (detectors.signals.shift), so it is far less overconfident than a single reading's: the
#: correlator still asks support_p of it and open_p of the departments together
ALPHA_SHIFT = 1e-3
#: p-value below which a count or rate signal is an anomaly (with at least MIN_COUNT events)
ALPHA_COUNT = 2e-3
#: below this, and not an anomaly, a count is weak supporting evidence: for the correlator
#: only, reported once per order of magnitude per bucket and, unlike an anomaly, still
#: learned into the baseline
ALPHA_WEAK = 0.05
#: fewest events (failures, for a rate) in the winning window for a count anomaly
MIN_COUNT = 2

#: p-value below which a count/rate signal is reported red, and yellow (ESSENCE style)
RED_P = 0.01
YELLOW_P = 0.05


def level_fired(p: float) -> bool:
    """Whether a level signal with tail probability ``p`` is an anomaly."""
    return p < ALPHA_LEVEL


def fired(p: float, observed: float) -> bool:
    """Whether a count or rate signal (``p`` and the ``observed`` events of its winning
    window) is an anomaly. A bucketed detector keeps every window that fired out of its
    baseline (:meth:`~detectors.signals.counts.CountSurge.learn_one`)."""
    return p < ALPHA_COUNT and observed >= MIN_COUNT


def weak(p: float, observed: float) -> bool:
    """Whether a count signal is weak supporting evidence: below ``ALPHA_WEAK`` but no
    anomaly (not significant enough, or too few events)."""
    return 0.0 < p < ALPHA_WEAK and not fired(p, observed)


def is_weak(anomaly_id: str) -> bool:
    """True for a weak supporting count, whose id is ``signal@bucket~decade`` (the decade
    ``int(-log10 p)``), not an anomaly (``signal@bucket`` or ``signal@event_id``)."""
    return "~" in anomaly_id.rpartition("@")[2]


def alert_level(p: float) -> str | None:
    """``"red"`` below ``RED_P``, ``"yellow"`` below ``YELLOW_P``, else ``None``."""
    if p < RED_P:
        return "red"
    if p < YELLOW_P:
        return "yellow"
    return None


__all__ = [
    "ALPHA_COUNT",
    "ALPHA_LEVEL",
    "ALPHA_SHIFT",
    "ALPHA_WEAK",
    "MIN_COUNT",
    "RED_P",
    "YELLOW_P",
    "alert_level",
    "fired",
    "is_weak",
    "level_fired",
    "weak",
]
