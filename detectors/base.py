"""The detector contract and the tail probabilities shared by detectors."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import betainc, gammainc

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
    return max(float(gammainc(count / phi, mu / phi)), P_FLOOR)


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
