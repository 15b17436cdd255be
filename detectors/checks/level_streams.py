"""Seeded synthetic streams of levels: a univariate sensor-like series, a regulated metric
against its limit; each with its edge
cases, a null version (nothing injected) and a blatant anomaly after a null stretch."""

from __future__ import annotations

import math
import random
from typing import Literal

from detectors.checks.core import HOUR, T0, Stream

# -- univariate level ---------------------------------------------------------------------------


class _Anomalies:
    """Which injected anomaly a reading of a series carries: none in the first ``warmup``
    readings nor closer than ``min_gap`` readings to the previous one's start; else a
    ``"spike"`` (one reading) with probability ``spike_prob``, or a ``"long"`` one of
    ``long_len`` readings (the first ``"long"``, the rest ``"ongoing"``) with probability
    ``long_prob``; ``None``: no anomaly."""

    def __init__(self, rng: random.Random, warmup: int, min_gap: int, spike_prob: float,
                 long_prob: float, long_len: int) -> None:
        self.rng, self.warmup, self.min_gap = rng, warmup, min_gap
        self.spike_prob, self.long_prob, self.long_len = spike_prob, long_prob, long_len
        self.left = 0
        self.last = -min_gap

    def step(self, i: int) -> Literal["spike", "long", "ongoing"] | None:
        """The anomaly of reading ``i`` (called once per reading, in order)."""
        if self.left > 0:
            self.left -= 1
            return "ongoing"
        if i >= self.warmup and i - self.last >= self.min_gap:
            u = self.rng.random()
            if u < self.spike_prob:
                self.last = i
                return "spike"
            if u < self.spike_prob + self.long_prob:
                self.last = i
                self.left = self.long_len - 1
                return "long"
        return None


def level_series(
    seed: int,
    n: int,
    *,
    level: float = 10.0,
    noise: float = 1.0,
    step_s: float = 60.0,
    warmup: int = 400,
    spike_prob: float = 0.004,
    shift_prob: float = 0.002,
    spike_size: float = 5.0,
    shift_size: float = 4.0,
    shift_label: int = 1,
    min_gap: int = 60,
    season_period: int = 1440,
    season_amp: float = 0.5,
) -> Stream:
    """A univariate sensor-like series: ``level`` plus a slow daily wave and Gaussian noise,
    with injected spikes (one labelled point of ``spike_size`` noise sds, either sign) and
    level shifts (``shift_size`` sds, either sign; the first ``shift_label`` points of the
    new level are labelled: by default only the onset, since detectors differ by design in
    whether they re-alert on the readings after it, SensorEnsemble reporting an excursion
    once, and the readings after it are as much the new normal as an anomaly). No anomaly
    in the first ``warmup`` points, none closer than ``min_gap`` points to the previous one.
    Values never repeat (new values throughout)."""
    rng = random.Random(seed)
    out: Stream = []
    base = level
    anomalies = _Anomalies(rng, warmup, min_gap, spike_prob, shift_prob, shift_label)
    for i in range(n):
        t = T0 + i * step_s
        x = base + season_amp * noise * math.sin(2 * math.pi * i / season_period)
        x += rng.gauss(0.0, noise)
        kind = anomalies.step(i)
        if kind == "spike":
            x += rng.choice((-1.0, 1.0)) * spike_size * noise * rng.uniform(1.0, 1.5)
        elif kind == "long":
            # shift back towards ``level`` when far from it, so the level stays bounded
            off = base - level
            sign = -math.copysign(1.0, off) if abs(off) > shift_size * noise else (
                rng.choice((-1.0, 1.0)))
            delta = sign * shift_size * noise * rng.uniform(1.0, 1.5)
            base += delta
            x += delta
        out.append((x, t, kind is not None))
    return out


def with_nans(stream: Stream, seed: int, frac: float = 0.1) -> Stream:
    """Replace a share ``frac`` of the observations by NaN (missing readings)."""
    rng = random.Random(seed)
    return [(math.nan if rng.random() < frac else x, t, y) for x, t, y in stream]


def quantised(stream: Stream, step: float = 1.0) -> Stream:
    """Round every observation to a multiple of ``step`` (a coarse sensor)."""
    return [(round(x / step) * step, t, y) for x, t, y in stream]


def irregular_times(stream: Stream, seed: int) -> Stream:
    """Re-time a stream irregularly: gaps from 0 (duplicate timestamps) to several days."""
    rng = random.Random(seed)
    t = T0
    out: Stream = []
    for x, _, y in stream:
        u = rng.random()
        if u < 0.1:
            gap = 0.0
        elif u < 0.98:
            gap = rng.expovariate(1 / 60.0)
        else:
            gap = rng.uniform(HOUR, 5 * 24 * HOUR)
        t += gap
        out.append((x, t, y))
    return out


def flat_series(n: int, value: float = 0.0, jump_every: int = 500, jump: float = 1.0) -> Stream:
    """A constant series (zero MAD) with a lone jump every ``jump_every`` points."""
    return [
        (value + (jump if i % jump_every == jump_every - 1 else 0.0), T0 + 60.0 * i, False)
        for i in range(n)
    ]


def level_edge_streams(seed: int, n: int = 1_500) -> dict[str, Stream]:
    """Flat, quantised, NaN-containing and irregularly spaced univariate input."""
    base = level_series(seed, n, warmup=200)
    return {
        "flat": flat_series(n),
        "flat_nonzero": flat_series(n, value=5.0, jump=-5.0),
        "quantised": quantised(level_series(seed, n, noise=0.3, warmup=200), step=1.0),
        "nan": with_nans(base, seed, 0.2),
        "irregular": irregular_times(base, seed),
        "nan_then_values": [(math.nan, T0 + i, False) for i in range(300)] + base[:300],
    }



def level_null(seed: int, n: int) -> Stream:
    """:func:`level_series` with nothing injected."""
    return level_series(seed, n, spike_prob=0.0, shift_prob=0.0)


def level_clear(seed: int, n: int = 2_000) -> Stream:
    """``n`` null readings, then a spike of 15 noise sds (labelled), 100 null readings, and
    a level shift of 6 sds for 30 readings (labelled)."""
    base = level_null(seed, n + 131)
    out: Stream = [(x, t, False) for x, t, _ in base[:n]]
    x, t, _ = base[n]
    out.append((x + 15.0, t, True))
    out.extend((x, t, False) for x, t, _ in base[n + 1:n + 101])
    out.extend((x + 6.0, t, True) for x, t, _ in base[n + 101:])
    return out


# -- limit ---------------------------------------------------------------------------------------


def limit_series(
    seed: int,
    n: int,
    *,
    limit: float = 100.0,
    base: float = 40.0,
    noise: float = 3.0,
    step_s: float = 900.0,
    horizon_steps: int = 12,
    warmup: int = 200,
    episode_prob: float = 0.01,
) -> Stream:
    """A regulated metric (every ``step_s`` seconds) that idles around ``base`` with AR(1)
    noise and now and then ramps up for 10-50 steps to a peak between 60 and 150 % of
    ``limit``, holds, and comes back down; about half the episodes cross the limit.
    The label of a reading is the thing a limit pre-warning predicts: the reading
    ``horizon_steps`` later is past ``limit``."""
    rng = random.Random(seed)
    vals: list[float] = []
    noise_state = 0.0
    plan: list[float] = []  # the episode's noise-free path still to run
    for i in range(n + horizon_steps):
        noise_state = 0.7 * noise_state + rng.gauss(0.0, noise * math.sqrt(1 - 0.49))
        if not plan and i >= warmup and rng.random() < episode_prob:
            peak = limit * rng.uniform(0.6, 1.5)
            up, hold, down = rng.randint(10, 50), rng.randint(5, 20), rng.randint(10, 40)
            plan = ([base + (peak - base) * (k + 1) / up for k in range(up)] + [peak] * hold
                    + [peak - (peak - base) * (k + 1) / down for k in range(down)])
        level = plan.pop(0) if plan else base
        vals.append(level + noise_state)
    return [(vals[i], T0 + i * step_s, vals[i + horizon_steps] > limit) for i in range(n)]


def limit_edge_streams(seed: int, n: int = 1_500) -> dict[str, Stream]:
    """The univariate edge cases plus a series flat exactly at the limit and a ramp
    through it with NaN gaps and irregular times."""
    out = level_edge_streams(seed, n)
    out["flat_at_limit"] = flat_series(n, value=100.0, jump=5.0)
    ramp = limit_series(seed, n, episode_prob=0.05, warmup=50)
    out["ramp_nan_irregular"] = irregular_times(with_nans(ramp, seed, 0.1), seed)
    return out



def limit_null(seed: int, n: int) -> Stream:
    """:func:`limit_series` idling around its base: nothing approaches the limit."""
    return limit_series(seed, n, episode_prob=0.0)


def limit_clear(seed: int, n: int = 1_000) -> Stream:
    """``n`` idle readings, then a steady ramp from 40 to 150 (the limit is 100) over 60
    readings; labelled as :func:`limit_series` labels (past the limit 12 steps later)."""
    idle = limit_null(seed, n + 12)
    vals = [x for x, _, _ in idle[:n]] + [40.0 + 110.0 * (k + 1) / 60 for k in range(60)]
    vals += [150.0] * 12
    return [(vals[i], T0 + i * 900.0, vals[i + 12] > 100.0) for i in range(len(vals) - 12)]
