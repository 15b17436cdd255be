"""The detector contract and the tail probabilities shared by detectors.

The contract, stated once for every detector class in this package:

* ``explain_one(x, t) -> Score``: observation ``x`` at event time ``t`` (epoch seconds)
  judged against everything learned before it: the observed value, the expected one and
  the tail probability ``p_value`` in [0, 1]. For a level the reading is compared with
  the baseline; for counts, rates and an entity's record the windows or the record are
  taken **with** ``x`` counted. It never learns ``x`` and never changes the state (a cache
  left out of pickles and copies is allowed).
* ``score_one(x, t) -> float``: ``1 - p`` of ``explain_one(x, t)``, a calibrated anomaly
  likelihood in [0, 1], never NaN, never changing the state. Documented exceptions:
  :class:`~detectors.signals.sensor.SensorEnsemble` reports one excursion once (its
  ``score_one`` is 0 while a reading is no more surprising than the one already
  reported).
* ``learn_one(x, t) -> None``: learns ``x``; returns nothing.
* The pipeline calls ``explain_one`` (or ``score_one``) and then ``learn_one`` on each
  observation, in event-time order; so does the check suite (:mod:`detectors.checks`).
* What ``x`` is, per family:

  - a level (sensor reading, price): a float, NaN for a missing reading;
  - a station: a mapping of metric name to float;
  - a keyed detector: a tuple whose first item is the key, the rest the observation
    about it: ``(key, n)``, ``n`` events, for :class:`~detectors.signals.counts.CountSurge`
    (``n = 0`` asks about the counts as they stand); ``(key, failed)``, one trial, for
    :class:`~detectors.signals.rates.RateSurge` (``failed = None`` asks about the trials as they
    stand); ``(entity_id, kind[, failed])`` or an
    :class:`~detectors.signals.entity_risk.EntityEvent` for
    :class:`~detectors.signals.entity_risk.EntityRisk`.

* Event-time buckets (``CountSurge``, ``RateSurge``): ``explain_one(x, t)`` judges ``x``
  as if the watermark had reached ``t``; ``learn_one(x, t)`` moves the watermark to ``t``
  (closing buckets), counts ``x`` and, when the counts with ``x`` make a finding under
  :func:`detectors.policy.fired`, marks its bucket fired, so fired windows stay out of the
  baseline. ``advance(watermark)`` moves the watermark further (a source's watermark,
  shared by several detectors). ``accepts(x, t)`` says whether ``learn_one`` will count
  ``x``; an ``x`` too late for its bucket is not counted (``late_events`` counts it) and
  is explained with ``p = 1``. ``has_fired(key, t)`` says whether the key already made a
  finding in ``t``'s bucket: the pipeline reports one finding per key and bucket.
* Parameters are constructor arguments stored as attributes of the same name; every
  constructor takes a ``seed`` (used wherever randomness enters, accepted elsewhere).
* State is bounded (no growth with the number of observations) and pickle-able; a copy
  or a pickle round trip behaves as the original.
* Flat, quantised, missing (NaN) and irregularly spaced input must not produce NaN, an
  exception or a division by zero.

What counts as a finding (thresholds, weak evidence) is :mod:`detectors.policy`.
:mod:`detectors.checks` holds the generic check suite every detector passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from scipy.special import betainc, cython_special, gammainc

# the alert levels are policy (detectors.policy); imported here for Score.alert_level and
# for the modules that take them from here
from detectors.policy import RED_P, YELLOW_P

# scalar entry points of the same C routines as the scipy.special ufuncs (identical values,
# about a sixth of the cost per call on Python floats)
gammainc_scalar = cython_special.gammainc
betaln_scalar = cython_special.betaln

#: smallest p-value reported; keeps -log10(p) finite
P_FLOOR = 1e-300

#: a warning version's status (the wire schema's ``Warning.status`` mirrors it)
STATUSES = ("new", "update", "resolved", "cancelled")
#: the statuses that end a warning
CLOSED_STATUSES = frozenset({"resolved", "cancelled"})
#: every warning id starts with this, then its region
WARNING_ID_PREFIX = "tw-"


def warning_id(region: str, digest: str) -> str:
    """The id of a warning of ``region`` (``digest``: a stable hash of what opened it)."""
    return f"{WARNING_ID_PREFIX}{region}-{digest}"


def warning_region_of(wid: str, region: str) -> bool:
    """Whether Tocsin warning id ``wid`` names ``region`` (ids of other systems: True)."""
    return not wid.startswith(WARNING_ID_PREFIX) or wid.startswith(warning_id(region, ""))


@dataclass(frozen=True, slots=True)
class Finding:
    """One anomaly as the correlator sees it (times are epoch seconds, event time)."""

    anomaly_id: str
    source: str  # env | complaint | market
    department: str
    region: str
    kind: str  # e.g. "env:water_cod", "complaint:odor", "market:price:pork"
    signal: str  # kind plus instance, e.g. "env:water_cod:S-harbour-w"
    detector: str
    observed: float
    expected: float
    p_value: float
    t: float
    event_ids: tuple[str, ...] = ()
    via: str = ""  # set on a neighbour's copy: the region it was observed in
    city: bool = False  # the city-wide view's copy: never local evidence
    # notes on the risky market entities behind its events (streams/pipeline/entities.py):
    # shown in the warning's explanation, never used by the correlator's decisions
    entities: tuple[str, ...] = ()
    #: a count's window (seconds): ``observed`` events in it against ``expected``; 0 for a
    #: level (a reading or a price)
    window_s: float = 0.0

    @property
    def score(self) -> float:
        return -math.log10(max(self.p_value, P_FLOOR))

    @property
    def origin(self) -> str:
        """The region the anomaly was observed in."""
        return self.via or self.region


@dataclass(frozen=True, slots=True)
class Score:
    """What a detector says about one observation.

    ``score`` is ``-log10(p_value)``: higher = more anomalous, comparable across series.
    """

    observed: float
    expected: float
    p_value: float
    #: a count's window (seconds) the observed and expected counts are over; 0 for a level
    window_s: float = 0.0

    @property
    def score(self) -> float:
        return -math.log10(max(self.p_value, P_FLOOR))

    @property
    def likelihood(self) -> float:
        """Calibrated anomaly likelihood ``1 - p`` in [0, 1]."""
        return 1.0 - min(max(self.p_value, 0.0), 1.0)

    @property
    def alert_level(self) -> str | None:
        """``"red"`` below p = 0.01, ``"yellow"`` below 0.05, else ``None``
        (:func:`detectors.policy.alert_level`)."""
        if self.p_value < RED_P:
            return "red"
        if self.p_value < YELLOW_P:
            return "yellow"
        return None


class Detector(Protocol):
    """Any detector in this package (see the module docstring for the contract)."""

    def learn_one(self, x: Any, t: float, /) -> None: ...
    def score_one(self, x: Any, t: float, /) -> float: ...
    def explain_one(self, x: Any, t: float, /) -> Score: ...


NO_SCORE = Score(math.nan, math.nan, 1.0)


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return max(0.5 * math.erfc(z / math.sqrt(2.0)), P_FLOOR)


def poisson_sf(count: int, mu: float) -> float:
    """P(X >= count) for X ~ Poisson(mu)."""
    if count <= 0:
        return 1.0
    if mu <= 0:
        return P_FLOOR
    return max(float(gammainc(count, mu)), P_FLOOR)


def negbin_sf(count: int, mu: float, phi: float) -> float:
    """P(X >= count) for an over-dispersed count with mean ``mu`` and variance ``phi * mu``.

    ``phi <= 1`` falls back to Poisson; otherwise X is negative binomial with
    ``r = mu / (phi - 1)`` and success probability ``1 / phi``.
    """
    if count <= 0:
        return 1.0
    if mu <= 0:
        return P_FLOOR
    if phi <= 1.0 + 1e-9:
        return poisson_sf(count, mu)
    r = mu / (phi - 1.0)
    q = 1.0 - 1.0 / phi
    return max(float(betainc(count, r, q)), P_FLOOR)


def quasi_poisson_sf(count: int, mu: float, phi: float) -> float:
    """P(X >= count) for a quasi-Poisson count (mean ``mu``, variance ``phi * mu``).

    Counts and mean are scaled by ``phi`` and the Poisson tail is taken in its continuous
    form (regularised incomplete gamma), as in the Farrington / EARS family.
    """
    if count <= 0:
        return 1.0
    if mu <= 0:
        return P_FLOOR
    phi = max(phi, 1.0)
    return max(float(gammainc_scalar(count / phi, mu / phi)), P_FLOOR)


#: a pmf term below this is not carried by a recurrence (it could underflow): the terms
#: are then taken from the log-pmf one by one
TINY_TERM = 1e-200
_LOG_TINY_TERM = math.log(TINY_TERM)


def betabinom_lower(k: int, n: int, a: float, b: float, lb: float) -> tuple[float, float]:
    """``(P(X <= k - 1), P(X = k - 1))`` for X ~ BetaBinomial(n, a, b), ``1 <= k <= n + 1``;
    ``lb`` is ``betaln(a, b)``.

    The terms are scipy's (``betabinom.pmf``), the first from its log, B(a, n + b) / B(a, b),
    the others by the ratio of consecutive terms: one ``betaln`` a call instead of two a
    term. Should the first term be too small to carry the others, every term comes from
    its log.
    """
    log_t = betaln_scalar(a, n + b) - lb
    if log_t > _LOG_TINY_TERM:
        t = math.exp(log_t)
        total = t
        # term j + 1 / term j = (n - j) / (j + 1) * (a + j) / (b + n - 1 - j)
        x = float(n)
        y = 1.0
        u = a
        v = b + (n - 1)
        for _ in range(k - 1):
            t *= x / y * u / v
            total += t
            x -= 1.0
            y += 1.0
            u += 1.0
            v -= 1.0
        return total, t
    total = 0.0
    t = 0.0
    for m in range(k):
        combiln = -math.log(n + 1) - betaln_scalar(n - m + 1, m + 1)
        t = math.exp(combiln + betaln_scalar(m + a, n - m + b) - lb)
        total += t
    return total, t


def betabinom_sf(k: int, n: int, a: float, b: float) -> float:
    """P(X >= k) for X ~ BetaBinomial(n, a, b): ``scipy.stats.betabinom.sf(k - 1, n, a, b)``
    as scipy computes it (one minus the lower sum, clipped to [0, 1]), in a small fraction
    of the time. Agrees with scipy to within scipy's own rounding (about 1e-11 absolute
    for ``a + b`` in the thousands, where ``betaln`` loses digits)."""
    if not (a > 0.0 and b > 0.0 and n >= 0):
        return math.nan
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    lower, _ = betabinom_lower(k, n, a, b, betaln_scalar(a, b))
    return min(max(1.0 - lower, 0.0), 1.0)


def fisher_combine(p_values: list[float]) -> float:
    """Fisher's method: combined p of independent p-values (closed form for even dof)."""
    if not p_values:
        return 1.0
    x = -2.0 * sum(math.log(max(p, P_FLOOR)) for p in p_values)
    half = x / 2.0
    term = 1.0
    total = 1.0
    for i in range(1, len(p_values)):
        term *= half / i
        total += term
    # exp(-half) * total, computed in log space to avoid underflow
    log_p = -half + math.log(total)
    return max(math.exp(log_p), P_FLOOR)
