"""Limit pre-warning: forecast a sensor metric a few hours ahead and warn before it crosses
its regulatory limit. The forecast's model (damped Holt) is in :mod:`.holt`; the limits
config (metric -> limit, unit, direction, regulation) and its loader in :mod:`.limits`,
both exported here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeAlias

from detectors.base import P_FLOOR, Score
from detectors.signals.holt import (
    ERR_WEIGHT,
    MAX_ABS,
    MAX_LEVEL,
    MAX_SQ,
    MAX_STEPS,
    HoltModel,
    _State,
)
from detectors.signals.limits import DIRECTIONS, Direction, Limit, load_limits

#: at most this many forecasts wait for their horizon (their errors give the variance)
MAX_PENDING = 32
#: realised horizon errors worth as much as the model's error variance
H_PRIOR = 10.0
H_COUNT_CAP = 1_000_000
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class Forecast:
    """What :meth:`LimitForecast.forecast` projects from event time ``t``.

    ``expected`` is the forecast value at ``t + horizon_s``; ``p_exceed`` the probability
    that the value then is past the limit. ``crossing_in_s`` is the lead time (seconds
    after ``t``) until the projection crosses the limit and ``crossing_at`` that time, or
    both ``None`` when there is no pre-warning: not enough data yet, the last reading or
    the level already past the limit, or no crossing within the horizon.
    """

    t: float
    expected: float
    crossing_in_s: float | None
    crossing_at: float | None
    limit: float
    p_exceed: float

    @property
    def warning(self) -> bool:
        return self.crossing_in_s is not None


_Memo: TypeAlias = tuple[float, float, float, tuple[int, float, float, float, float],
                         tuple[float, int, int]]


class LimitForecast(HoltModel):
    """Damped Holt (level + trend) forecast in event time, against a limit.

    Smoothing weights ``alpha`` (level) and ``beta`` (trend) and the ``damping`` are
    stated per ``step_s`` seconds (default 900 s, a 15-minute sensor) and adapted to the
    actual gap ``dt`` between readings: a gap of ``k = dt / step_s`` steps uses
    ``1 - (1 - alpha) ** k``, so irregular and missing readings are handled without
    resampling. The trend is per second; the forecast ``h`` seconds ahead is
    ``level + trend * D(h)`` with ``D(h) = integral_0^h damping ** (u / step_s) du``.
    Damping shapes the projection (one-step and horizon) only, not the trend recursion,
    so a steady ramp is tracked with its full slope and the projected crossing time of a
    ramp errs on the early side by a few percent.

    Forecast error: the one-step errors, each divided by Holt's error-variance multiplier
    for its gap, give an online variance, scaled to the horizon by the multiplier for
    ``horizon_s / step_s`` steps; and the forecasts themselves are checked when they fall
    due (at most ``MAX_PENDING`` wait, so the state stays bounded): the variance of those
    realised horizon errors takes over from the model's as they accumulate (equal weight
    after ``H_PRIOR`` of them). The standard deviation never falls below ``rel_floor``
    times the larger of ``|limit|`` and ``|level|``, so a flat series divides by no zero.
    ``score_one(x, t)`` is the probability under this Gaussian forecast error that the
    value ``horizon_s`` after ``t`` is past ``limit`` (above it, or below it with
    ``direction="below"``), with ``x`` taken into account but not learned; 0 until
    ``min_points`` readings have been learned.

    :meth:`forecast` also solves for the time the projection crosses the limit: a
    pre-warning (``crossing_in_s``, the lead time) is given while the last reading and the
    level are still on the safe side and the crossing is within ``horizon_s``.

    Readings with a non-finite value or time are ignored; readings older than the last
    one are dropped (counted in ``late_events``); a reading at the same time as the last
    one is blended into the level. ``seed`` is accepted for the common detector signature.

    >>> det = LimitForecast(limit=100.0, horizon_s=3 * 3600)
    >>> t0 = 1_700_000_000.0
    >>> for i in range(24):                           # flat at 40: nothing to report
    ...     det.learn_one(40.0 + (i % 2), t0 + 900 * i)
    >>> f = det.forecast(t0 + 900 * 23)
    >>> f.crossing_in_s is None, f.p_exceed < 1e-6
    (True, True)
    >>> for i in range(24, 48):                       # then rising 2 per 15 minutes
    ...     det.learn_one(40.0 + 2.0 * (i - 23), t0 + 900 * i)
    >>> f = det.forecast(t0 + 900 * 47)               # at 88: 100 is 1.5 h away
    >>> f.warning, round(f.crossing_in_s / 3600, 1)
    (True, 1.6)
    >>> det.score_one(90.0, t0 + 900 * 48) > 0.75
    True
    >>> s = det.explain_one(90.0, t0 + 900 * 48)     # p: the value stays below the limit
    >>> s.p_value < 0.25 and s.expected > 100.0
    True
    """

    def __init__(
        self,
        limit: float,
        horizon_s: float = 10800.0,
        alpha: float = 0.3,
        beta: float = 0.15,
        damping: float = 0.98,
        min_points: int = 8,
        step_s: float = 900.0,
        direction: Direction = "above",
        rel_floor: float = 0.005,
        seed: int = 0,
    ) -> None:
        if not math.isfinite(limit):
            raise ValueError(f"limit must be a finite number, got {limit!r}")
        if not (math.isfinite(horizon_s) and horizon_s > 0):
            raise ValueError(f"horizon_s must be > 0, got {horizon_s!r}")
        if not (0.0 < alpha <= 1.0 and 0.0 <= beta <= 1.0 and 0.0 < damping <= 1.0):
            raise ValueError("need 0 < alpha <= 1, 0 <= beta <= 1 and 0 < damping <= 1")
        if min_points < 2:
            raise ValueError(f"min_points must be >= 2, got {min_points!r}")
        if not (math.isfinite(step_s) and step_s > 0):
            raise ValueError(f"step_s must be > 0, got {step_s!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
        if not (math.isfinite(rel_floor) and rel_floor > 0):
            raise ValueError(f"rel_floor must be > 0, got {rel_floor!r}")
        self.limit = limit
        self.horizon_s = horizon_s
        self.alpha = alpha
        self.beta = beta
        self.damping = damping
        self.min_points = min_points
        self.step_s = step_s
        self.direction = direction
        self.rel_floor = rel_floor
        self.seed = seed
        self._st = _State()
        # the update score_one last computed: (x, t, clipped x, _advance's result, _due's
        # result); derived data, never pickled, dropped by every learn_one
        self._memo: _Memo | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_memo"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._memo = None

    @classmethod
    def from_limit(cls, limit: Limit, **params: Any) -> LimitForecast:
        """A forecaster for a :class:`Limit` from :func:`load_limits`."""
        return cls(limit=limit.limit, direction=limit.direction, **params)

    # -- the limit --------------------------------------------------------------------
    def _past(self, v: float) -> bool:
        return v > self.limit if self.direction == "above" else v < self.limit

    def _p_exceed(self, n: int, last_t: float, level: float, trend: float, err_var: float,
                  h_var: float, h_n: int, t: float) -> tuple[float, float, float]:
        """``(origin, expected, p_exceed)`` of the projection from ``t`` for a state with
        these fields (``n >= min_points``). The per-event path: ``_damped`` and
        ``_var_mult`` inlined, min / max written as comparisons (the same values)."""
        origin = t if last_t <= t < math.inf else last_t  # t, or the last reading's time
        horizon, step_s, damping = self.horizon_s, self.step_s, self.damping
        ahead = origin + horizon - last_t
        k = ahead / step_s
        if k > MAX_STEPS:
            k = MAX_STEPS
        if damping >= 1.0:
            damped = k * step_s
        else:
            lam = -math.log(damping)
            damped = step_s * -math.expm1(-lam * k) / lam
        expected = level + trend * damped
        a, b = self.alpha, self.beta
        mult = 1.0 if k <= 1.0 else 1.0 + (k - 1.0) * (
            a * a + a * b * k + b * b * k * (2.0 * k - 1.0) / 6.0)
        model_var = err_var * mult
        if h_n:  # realised horizon errors, scaled to ``ahead``, outweigh the model
            w = h_n / (h_n + H_PRIOR)
            scale = mult / self._var_mult(horizon / step_s)
            model_var = w * h_var * scale + (1.0 - w) * model_var
        limit = self.limit
        size = abs(level)
        if not size > abs(limit):
            size = abs(limit)
        floor = self.rel_floor * size
        if floor < 1e-12:
            floor = 1e-12
        sd = math.sqrt(model_var + floor * floor)
        z = (limit - expected) / sd
        if self.direction != "above":
            z = -z
        p = 0.5 * math.erfc(z / _SQRT2)  # normal_sf(z)
        if p < P_FLOOR:
            p = P_FLOOR
        return origin, expected, 1.0 if p > 1.0 else p

    def _project(self, st: _State, t: float) -> Forecast:
        if st.n < self.min_points:
            return Forecast(t, st.level if st.n else math.nan, None, None, self.limit, 0.0)
        origin, expected, p = self._p_exceed(st.n, st.t, st.level, st.trend, st.err_var,
                                             st.h_var, st.h_n, t)
        crossing_at = None
        if not (self._past(st.x) or self._past(st.level)):
            s = self._crossing(st)
            if s is not None and st.t + s <= origin + self.horizon_s:
                crossing_at = max(st.t + s, origin)
        lead = None if crossing_at is None else crossing_at - origin
        return Forecast(origin, expected, lead, crossing_at, self.limit, p)

    def _crossing(self, st: _State) -> float | None:
        """Seconds after the last reading at which the projection reaches the limit."""
        sign = 1.0 if self.direction == "above" else -1.0
        gap = sign * (self.limit - st.level)  # > 0: still on the safe side
        speed = sign * st.trend
        if speed <= 0:
            return None
        need = gap / speed  # seconds of undamped trend
        if self.damping >= 1.0:
            return need
        lam = -math.log(self.damping)
        u = need * lam / self.step_s
        if u >= 1.0:
            return None  # the damped trend levels off before the limit
        return -self.step_s * math.log1p(-u) / lam

    # -- contract ---------------------------------------------------------------------
    def learn_one(self, x: float, t: float) -> None:
        """Update level, trend and error variance with reading ``x`` at event time ``t``."""
        memo, self._memo = self._memo, None
        if not (math.isfinite(x) and math.isfinite(t)):
            return
        st = self._st
        if st.n and t < st.t:
            st.late += 1
            return
        if memo is not None and memo[0] is x and memo[1] is t:
            # score_one(x, t) just computed this update from this state: reuse it
            _, _, x, advanced, (h_var, h_n, due) = memo
        else:
            x = min(max(x, -MAX_ABS), MAX_ABS)
            advanced = self._advance(st, x, t)
            h_var, h_n, due = self._due(st, x, t) if st.n else (st.h_var, st.h_n, 0)
        first = st.n == 0
        st.n, st.t, st.level, st.trend, st.err_var = advanced
        st.x = x
        if first:
            return
        pending = st.pending
        if due:
            del pending[:due]
        st.h_var, st.h_n = h_var, min(h_n, H_COUNT_CAP)
        # one forecast per horizon_s / MAX_PENDING seconds at most: bounded state
        horizon = self.horizon_s
        if st.n >= self.min_points and (
                not pending or t - (pending[-1][0] - horizon) >= horizon / MAX_PENDING):
            pending.append((t + horizon, st.level + st.trend * self._damped(horizon)))

    def _evaluate(self, x: float, t: float) -> tuple[float, float]:
        """``(expected, p_exceed)``: the forecast value ``horizon_s`` after ``t`` and the
        probability that the value then is past the limit, given the readings so far and
        ``x``; ``(level or NaN, 0)`` before ``min_points`` readings. Changes no state (the
        update it computes is kept aside, outside the state, for a ``learn_one`` of the
        same reading next)."""
        st = self._st
        if not (math.isfinite(x) and math.isfinite(t)) or (st.n and t < st.t):
            n, last_t, level, trend, err_var = st.n, st.t, st.level, st.trend, st.err_var
            h_var, h_n = st.h_var, st.h_n
        else:
            clipped = min(max(x, -MAX_ABS), MAX_ABS)
            advanced = self._advance(st, clipped, t)
            pending = st.pending
            due = (self._due(st, clipped, t) if st.n and pending and pending[0][0] <= t
                   else (st.h_var, st.h_n, 0))
            self._memo = (x, t, clipped, advanced, due)
            n, last_t, level, trend, err_var = advanced
            h_var, h_n = due[0], min(due[1], H_COUNT_CAP)
        if n < self.min_points:
            return (level if n else math.nan), 0.0
        _, expected, p = self._p_exceed(n, last_t, level, trend, err_var, h_var, h_n, t)
        return expected, p

    def score_one(self, x: float, t: float) -> float:
        """Probability in [0, 1] that the value ``horizon_s`` after ``t`` is past the limit,
        given the readings so far and ``x``. Changes no state."""
        return self._evaluate(x, t)[1]

    def explain_one(self, x: float, t: float) -> Score:
        """``x``, the forecast value ``horizon_s`` after ``t`` and the probability that the
        value then is **not** past the limit (so ``score_one`` is ``1 - p``). Changes no
        state."""
        expected, p_exceed = self._evaluate(x, t)
        return Score(x, expected, 1.0 - p_exceed)

    def forecast(self, t: float) -> Forecast:
        """The projection from event time ``t`` (at least the last reading's time)."""
        return self._project(self._st, t)

    @property
    def n(self) -> int:
        """Readings learned (late ones excluded)."""
        return self._st.n

    @property
    def late_events(self) -> int:
        return self._st.late


__all__ = ["DIRECTIONS", "ERR_WEIGHT", "H_COUNT_CAP", "H_PRIOR", "MAX_ABS", "MAX_LEVEL",
           "MAX_PENDING", "MAX_SQ", "MAX_STEPS", "Direction", "Forecast", "Limit",
           "LimitForecast", "load_limits"]
