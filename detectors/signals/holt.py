"""The forecast model of :class:`~detectors.signals.forecast.LimitForecast`: a damped Holt
(level + trend) recursion in event time, its state, its one-step error variance, and the
check of past forecasts against the readings that fall due (see the class docstring of
LimitForecast for the model)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: weight of each new squared one-step error in the error variance (after the first ones)
ERR_WEIGHT = 0.05
#: readings are clipped to this magnitude (keeps squares finite)
MAX_ABS = 1e100
MAX_SQ = MAX_ABS * MAX_ABS
#: the level is clipped to this magnitude, the trend to MAX_ABS per step
MAX_LEVEL = 10 * MAX_ABS
#: gaps longer than this many steps are treated as this many (the state is forgotten anyway)
MAX_STEPS = 1e6


@dataclass(slots=True)
class _State:
    """Mutable: :meth:`LimitForecast.learn_one` updates it in place; scoring only reads it."""

    n: int = 0
    t: float = math.nan  # event time of the last reading
    x: float = math.nan  # last reading
    level: float = 0.0
    trend: float = 0.0  # per second
    err_var: float = 0.0  # variance of the one-step error, per step-equivalent
    h_var: float = 0.0  # variance of the realised horizon errors
    h_n: int = 0  # horizon errors realised so far
    # forecasts not yet due: (target t, value), in order of target time (readings are
    # learned in time order, so each new forecast's target is the latest)
    pending: list[tuple[float, float]] = field(default_factory=list)
    late: int = 0


class HoltModel:
    """The model half of :class:`~detectors.signals.forecast.LimitForecast` (which sets
    these attributes): the damped Holt update of a :class:`_State` and the horizon errors
    of the forecasts that fall due."""

    alpha: float
    beta: float
    damping: float
    step_s: float

    def _damped(self, dt: float) -> float:
        """``D(dt)``: how many seconds of the current trend accrue over ``dt`` seconds."""
        k = min(dt / self.step_s, MAX_STEPS)
        if self.damping >= 1.0:
            return k * self.step_s
        lam = -math.log(self.damping)
        return self.step_s * -math.expm1(-lam * k) / lam

    def _var_mult(self, k: float) -> float:
        """Holt's (additive, undamped) k-step error-variance multiplier, at least 1."""
        if k <= 1.0:
            return 1.0
        k = min(k, MAX_STEPS)
        a, b = self.alpha, self.beta
        return 1.0 + (k - 1.0) * (a * a + a * b * k + b * b * k * (2.0 * k - 1.0) / 6.0)

    def _advance(self, st: _State, x: float, t: float
                 ) -> tuple[int, float, float, float, float]:
        """``(n, t, level, trend, err_var)`` after reading ``x`` (finite, clipped) at ``t``
        (finite, not before ``st.t``); changes nothing."""
        n = st.n
        if n == 0:
            return 1, t, x, st.trend, st.err_var
        dt = t - st.t
        if dt == 0:
            return n + 1, st.t, st.level + self.alpha * (x - st.level), st.trend, st.err_var
        if n == 1:  # the first gap gives the first trend
            return 2, t, x, self._clip_trend((x - st.level) / max(dt, self.step_s)), st.err_var
        # the per-event path: _damped, _var_mult and _clip_trend inlined, and min / max
        # written as comparisons (the same values, NaN included)
        alpha, beta, step_s, damping = self.alpha, self.beta, self.step_s, self.damping
        k = dt / step_s
        if k > MAX_STEPS:
            k = MAX_STEPS
        a = -math.expm1(k * math.log1p(-alpha)) if alpha < 1.0 else 1.0
        b = -math.expm1(k * math.log1p(-beta)) if beta < 1.0 else 1.0
        if damping >= 1.0:
            damped = k * step_s
        else:
            lam = -math.log(damping)
            damped = step_s * -math.expm1(-lam * k) / lam
        pred = st.level + st.trend * damped
        err = x - pred
        level = pred + a * err
        if level > MAX_LEVEL:
            level = MAX_LEVEL
        elif level < -MAX_LEVEL:
            level = -MAX_LEVEL
        # damping shapes the projection only: a steady ramp keeps its full trend
        trend = b * (level - st.level) / dt + (1.0 - b) * st.trend
        bound = MAX_ABS / step_s
        if trend > bound:
            trend = bound
        elif trend < -bound:
            trend = -bound
        mult = 1.0 if k <= 1.0 else 1.0 + (k - 1.0) * (
            alpha * alpha + alpha * beta * k + beta * beta * k * (2.0 * k - 1.0) / 6.0)
        e2 = err * err / mult
        if e2 > MAX_SQ:
            e2 = MAX_SQ
        w = 1.0 / (n - 1)
        if w < ERR_WEIGHT:
            w = ERR_WEIGHT
        return n + 1, t, level, trend, st.err_var + w * (e2 - st.err_var)

    def _due(self, st: _State, x: float, t: float) -> tuple[float, int, int]:
        """``(h_var, h_n, due)``: the realised horizon-error variance and count once the
        forecasts that fell due at ``t`` are scored against ``x`` (those within ``step_s``
        of their target; older ones lapse), and how many fell due (a prefix of
        ``st.pending``). ``h_n`` is not yet capped. Changes nothing."""
        h_var, h_n = st.h_var, st.h_n
        due = 0
        step_s = self.step_s
        for target, value in st.pending:
            if target > t:
                break
            due += 1
            if t - target <= step_s:  # a reading close enough to its target
                e2 = min((x - value) ** 2, MAX_SQ)
                h_n += 1
                h_var += max(1.0 / h_n, ERR_WEIGHT) * (e2 - h_var)
        return h_var, h_n, due

    def _clip_trend(self, trend: float) -> float:
        bound = MAX_ABS / self.step_s
        return min(max(trend, -bound), bound)


__all__ = ["ERR_WEIGHT", "MAX_ABS", "MAX_LEVEL", "MAX_SQ", "MAX_STEPS", "HoltModel"]
