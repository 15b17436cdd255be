"""The detector contract and the tail probabilities shared by detectors.

The contract (river style), stated once for every detector in this package:

* ``score_one(x, t)`` says how anomalous observation ``x`` at event time ``t`` (epoch
  seconds) is **before** it is learned, and never changes the detector's state. Higher =
  more anomalous. Detectors whose output feeds one shared threshold return a
  **calibrated** anomaly likelihood in ``[0, 1]`` (``1 - p`` of a tail probability), never
  NaN; bucketed count/rate detectors return a :class:`Score` (observed, expected, p-value).
* ``learn_one(x, t)`` updates the state with ``x``.
* Parameters are constructor arguments stored as attributes of the same name; a ``seed``
  argument is taken wherever randomness enters (and accepted, unused, elsewhere).
* State is bounded (no growth with the number of observations) and pickle-able.
* Flat, quantised, missing (NaN) and irregularly spaced input must not produce NaN or a
  division by zero.

:mod:`detectors.checks` holds the generic check suite every detector passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from scipy.special import betainc, cython_special, gammainc

# scalar entry points of the same C routines as the scipy.special ufuncs (identical values,
# about a sixth of the cost per call on Python floats)
gammainc_scalar = cython_special.gammainc
betaln_scalar = cython_special.betaln

#: p-value below which a count/rate signal is reported red, and yellow (ESSENCE style)
RED_P = 0.01
YELLOW_P = 0.05

#: smallest p-value reported; keeps -log10(p) finite
P_FLOOR = 1e-300


@dataclass(frozen=True, slots=True)
class Score:
    """What a detector says about one observation.

    ``score`` is ``-log10(p_value)``: higher = more anomalous, comparable across series.
    """

    observed: float
    expected: float
    p_value: float

    @property
    def score(self) -> float:
        return -math.log10(max(self.p_value, P_FLOOR))

    @property
    def likelihood(self) -> float:
        """Calibrated anomaly likelihood ``1 - p`` in [0, 1]."""
        return 1.0 - min(max(self.p_value, 0.0), 1.0)

    @property
    def alert_level(self) -> str | None:
        """``"red"`` below p = 0.01, ``"yellow"`` below 0.05, else ``None``."""
        if self.p_value < RED_P:
            return "red"
        if self.p_value < YELLOW_P:
            return "yellow"
        return None


class Detector(Protocol):
    """Any detector in this package (see the module docstring for the contract)."""

    def learn_one(self, x: Any, t: float) -> Any: ...
    def score_one(self, x: Any, t: float) -> Any: ...


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
