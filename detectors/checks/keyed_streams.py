"""Seeded synthetic streams of keyed events: counts per key (``(key, 1)``), inspection
trials per key (``(key, failed)``) and market-regulation events about companies
(``(entity_id, kind, failed)``); each with its edge cases, a null version (nothing
injected) and a blatant anomaly after a null stretch."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TypeAlias

from detectors.checks.core import HOUR, T0, Stream
from detectors.checks.level_streams import irregular_times

# -- counts per key ------------------------------------------------------------------------------


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson(lam) draw (Knuth; a normal approximation above 50)."""
    if lam <= 0:
        return 0
    if lam > 50:  # normal approximation; exact enough for synthetic counts
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class _Surges:
    """When each of ``n_keys`` keys surges, bucket by bucket: a surge of ``length`` buckets
    (a range) starts with probability ``prob`` a bucket once ``warmup`` buckets have gone
    and ``gap`` buckets after the key's previous surge began."""

    def __init__(self, rng: random.Random, n_keys: int, warmup: int, prob: float,
                 length: tuple[int, int], gap: int) -> None:
        self.rng, self.warmup, self.prob, self.length, self.gap = rng, warmup, prob, length, gap
        self.left = [0] * n_keys
        self.last = [-gap] * n_keys

    def step(self, i: int, b: int) -> bool:
        """Whether key ``i`` surges in bucket ``b`` (called once per key and bucket)."""
        if self.left[i] > 0:
            self.left[i] -= 1
            return True
        if b >= self.warmup and b - self.last[i] >= self.gap and (
                self.rng.random() < self.prob):
            self.left[i] = self.rng.randint(*self.length) - 1
            self.last[i] = b
            return True
        return False


#: an event drawn in a bucket: ``(t, observation, label)`` (sorted by time, then observation)
Event: TypeAlias = tuple[float, tuple[object, ...], bool]


def _keyed_buckets(n: int, bucket_s: float, diurnal: float, surges: _Surges,
                   events: Callable[[int, float, float, bool], list[Event]]) -> Stream:
    """The first ``n`` events, bucket by bucket: ``events(i, bucket start, wave, surging)``
    draws key ``i``'s events of a bucket, ``wave`` the hour-of-day factor of its rate."""
    out: Stream = []
    b = 0
    while len(out) < n:
        bt = T0 + b * bucket_s
        wave = 1.0 + diurnal * math.sin(2 * math.pi * (b % 24) / 24.0)
        drawn: list[Event] = []
        for i in range(len(surges.left)):
            drawn.extend(events(i, bt, wave, surges.step(i, b)))
        drawn.sort()
        out.extend((x, t, y) for t, x, y in drawn)
        b += 1
    return out[:n]


def count_events(
    seed: int,
    n: int,
    *,
    rates: Sequence[float] = (0.5, 2.0, 5.0, 12.0),
    bucket_s: float = HOUR,
    warmup_buckets: int = 48,
    diurnal: float = 0.5,
    surge_prob: float = 0.04,
    surge_extra: tuple[float, float] = (6.0, 3.0),
    surge_len: tuple[int, int] = (1, 3),
    surge_gap: int = 24,
) -> Stream:
    """Events of ``len(rates)`` keys (``"k0"``, ...), Poisson per bucket at the key's rate
    times an hour-of-day wave, with injected surges: for 1-3 buckets a key gets
    ``max(surge_extra[0], surge_extra[1] * rate)`` extra events on average. Every event
    of a key inside one of its surge buckets is labelled. The observation is ``(key, 1)``."""
    rng = random.Random(seed)
    keys = [f"k{i}" for i in range(len(rates))]

    def events(i: int, bt: float, wave: float, surging: bool) -> list[Event]:
        lam = rates[i] * wave
        if surging:
            lam += max(surge_extra[0], surge_extra[1] * rates[i])
        return [(bt + rng.uniform(0.0, bucket_s), (keys[i], 1), surging)
                for _ in range(poisson(rng, lam))]

    surges = _Surges(rng, len(rates), warmup_buckets, surge_prob, surge_len, surge_gap)
    return _keyed_buckets(n, bucket_s, diurnal, surges, events)


def count_memory_stream(seed: int, n: int) -> Stream:
    """40 keys, from one event a week to a few an hour, with frequent surges: the per-key
    bookkeeping (open buckets, guard band, fired and excluded buckets) is exercised over
    thousands of buckets while the key set stays fixed, as the design assumes."""
    rates = [0.006, 0.02, 0.05, 0.1, 0.3, 0.6, 1.0, 2.0] * 5
    return count_events(seed, n, rates=rates, warmup_buckets=48, surge_prob=0.05,
                        surge_gap=6)


def _irregular_late(rng: random.Random, n: int, draw: Callable[[], object]) -> Stream:
    """``n`` unlabelled observations ``draw()`` at irregular times: a fifth at the time of
    the one before, a few after gaps of up to nine days, 5 % late by up to three hours."""
    out: Stream = []
    t = T0
    for _ in range(n):
        u = rng.random()
        t += 0.0 if u < 0.2 else (rng.uniform(HOUR, 9 * 24 * HOUR) if u > 0.97
                                  else rng.expovariate(1 / 900.0))
        late = rng.random() < 0.05
        x = draw()
        out.append((x, t - (rng.uniform(0, 3 * HOUR) if late else 0.0), False))
    return out


def count_edge_streams(seed: int, n: int = 1_500) -> dict[str, Stream]:
    """Flat counts, bursts at one instant, long gaps, late (out of order) events, a key
    seen once, batches of events and questions (``n`` = 0)."""
    rng = random.Random(seed)
    flat: Stream = []
    for b in range(n // 3):
        for k in ("a", "b", "c"):
            flat.append(((k, 1), T0 + b * HOUR + 60.0, False))
    burst: Stream = [(("a", 1), T0 + 100 * HOUR, False)] * 400
    burst += [(("a", 1), T0 + 100 * HOUR + d * 24 * HOUR, False) for d in range(1, 30)]
    burst += [(("b", 1), T0 + 140 * 24 * HOUR + i, False) for i in range(200)]
    irregular = _irregular_late(rng, n, lambda: (rng.choice("abcd"), 1))
    lone = [(("x", 1), T0 + 5.0, False)] + [(("y", 1), T0 + HOUR * (1 + 7 * i), False)
                                          for i in range(300)]
    batches: Stream = [((rng.choice("ab"), rng.choice((0, 0, 1, 3, 10))), T0 + 600.0 * i, False)
                       for i in range(n)]
    return {"flat": flat, "burst_and_gaps": burst, "irregular_late": irregular, "lone": lone,
            "batches_and_questions": batches}


def count_null(seed: int, n: int) -> Stream:
    """:func:`count_events` with no surge."""
    return count_events(seed, n, surge_prob=0.0)


def _next_bucket(stream: Stream) -> float:
    return (math.floor(stream[-1][1] / HOUR) + 1) * HOUR


def count_clear(seed: int, n: int = 2_000) -> Stream:
    """``n`` null events (about four days), then 30 events of ``k1`` (2 an hour as a rule)
    within one hour, labelled."""
    base = count_null(seed, n)
    start = _next_bucket(base)
    return base + [(("k1", 1), start + 60.0 * i, True) for i in range(30)]


# -- inspection trials per key ------------------------------------------------------------------


def inspection_events(
    seed: int,
    n: int,
    *,
    trials: Sequence[float] = (2.0, 4.0, 8.0, 12.0),
    fail_rates: Sequence[float] = (0.05, 0.1, 0.05, 0.1),
    bucket_s: float = HOUR,
    warmup_buckets: int = 48,
    surge_prob: float = 0.04,
    surge_rate: float = 0.35,
    surge_len: tuple[int, int] = (2, 6),
    surge_gap: int = 30,
) -> Stream:
    """Inspection outcomes ``(key, failed)`` of ``len(trials)`` keys: Poisson trials per
    bucket (with an hour-of-day wave, so the number of trials moves), each failing with
    the key's rate; during an injected surge (2-6 buckets) the failure rate rises by
    ``surge_rate``. Every trial of a key in one of its surge buckets is labelled."""
    rng = random.Random(seed)
    keys = [f"r{i}" for i in range(len(trials))]

    def events(i: int, bt: float, wave: float, surging: bool) -> list[Event]:
        p = min(fail_rates[i] + (surge_rate if surging else 0.0), 1.0)
        return [(bt + rng.uniform(0.0, bucket_s), (keys[i], rng.random() < p), surging)
                for _ in range(poisson(rng, trials[i] * wave))]

    surges = _Surges(rng, len(trials), warmup_buckets, surge_prob, surge_len, surge_gap)
    return _keyed_buckets(n, bucket_s, 0.6, surges, events)


def inspection_memory_stream(seed: int, n: int) -> Stream:
    """40 keys, from an inspection a week to several an hour, with frequent surges."""
    trials = [0.006, 0.02, 0.1, 0.3, 0.6, 1.0, 2.0, 4.0] * 5
    fails = [0.05, 0.1, 0.2, 0.05, 0.1, 0.05, 0.1, 0.15] * 5
    return inspection_events(seed, n, trials=trials, fail_rates=fails, warmup_buckets=48,
                             surge_prob=0.05, surge_rate=0.5, surge_gap=8)


def inspection_edge_streams(seed: int, n: int = 1_500) -> dict[str, Stream]:
    """All trials passing, all failing, exactly one in ten failing, bursts, long gaps, late
    trials, and questions (``failed`` None) among trials."""
    rng = random.Random(seed)
    all_pass = [(("a", False), T0 + 60.0 * i, False) for i in range(n)]
    all_fail = [(("a", True), T0 + 60.0 * i, False) for i in range(n)]
    flat = [(("a", i % 10 == 0), T0 + 360.0 * i, False) for i in range(n)]
    irregular = _irregular_late(rng, n, lambda: (rng.choice("abc"), rng.random() < 0.3))
    questions = [((rng.choice("ab"), rng.choice((True, False, None))), T0 + 600.0 * i, False)
                 for i in range(n)]
    return {"all_pass": all_pass, "all_fail": all_fail, "one_in_ten": flat,
            "irregular_late": irregular, "trials_and_questions": questions}


def inspection_null(seed: int, n: int) -> Stream:
    """:func:`inspection_events` with no surge."""
    return inspection_events(seed, n, surge_prob=0.0)


def inspection_clear(seed: int, n: int = 3_000) -> Stream:
    """``n`` null trials (about five days), then 12 trials of ``r3`` (1 in 10 fails as a
    rule) within one hour, 10 of them failing; labelled."""
    base = inspection_null(seed, n)
    start = _next_bucket(base)
    return base + [(("r3", i < 10), start + 60.0 * i, True) for i in range(12)]


# -- events about companies --------------------------------------------------------------------


def entity_events(
    seed: int,
    n: int,
    *,
    n_entities: int = 400,
    mean_gap_s: float = 600.0,
    warmup: int = 1_000,
    bad_prob: float = 0.003,
    bad_events: tuple[int, int] = (4, 10),
    bad_days: float = 10.0,
    new_entity_share: float = 0.0,
) -> Stream:
    """Market-regulation events ``(entity_id, kind, failed)`` about a population of
    companies: mostly inspections (8 % fail), some price reports, rare recalls and licence
    violations. After ``warmup`` events, with probability ``bad_prob`` per event a company
    turns bad: 4-10 adverse events (recalls, violations, failed inspections) spread over
    ``bad_days`` days. Every event of a bad company during its bad spell is labelled.
    With ``new_entity_share`` > 0 that share of the events concern a company never seen
    before (an unbounded key set)."""
    rng = random.Random(seed)
    t = T0
    out: Stream = []
    # pending adverse events of bad companies: (time, entity, kind, failed)
    queued: list[tuple[float, str, str, bool | None]] = []
    bad_until: dict[str, float] = {}
    fresh = 0
    while len(out) < n:
        t += rng.expovariate(1.0 / mean_gap_s)
        while queued and queued[0][0] <= t:
            tq, ent, kind, failed = queued.pop(0)
            out.append(((ent, kind, failed), tq, True))
        if new_entity_share and rng.random() < new_entity_share:
            ent = f"new{fresh}"
            fresh += 1
        else:
            ent = f"firm{rng.randrange(n_entities)}"
        u = rng.random()
        if u < 0.8:
            ev: tuple[str, str, bool | None] = (ent, "inspection", rng.random() < 0.08)
        elif u < 0.96:
            ev = (ent, "price_report", None)
        elif u < 0.98:
            ev = (ent, "license_violation", None)
        else:
            ev = (ent, "recall", None)
        out.append((ev, t, bad_until.get(ent, -math.inf) >= t))
        if len(out) > warmup and rng.random() < bad_prob and ent not in bad_until:
            end = t + bad_days * 86_400.0
            bad_until[ent] = end
            for _ in range(rng.randint(*bad_events)):
                kind = rng.choice(("recall", "license_violation", "inspection"))
                queued.append((rng.uniform(t, end), ent, kind,
                               True if kind == "inspection" else None))
            queued.sort()
    return out[:n]


def entity_memory_stream(seed: int, n: int) -> Stream:
    """Entity events where a third of the events concern a company never seen before: the
    key set is unbounded, which a capped detector must absorb by eviction."""
    return entity_events(seed, n, new_entity_share=0.33, bad_prob=0.01)


def entity_edge_streams(seed: int, n: int = 1_500) -> dict[str, Stream]:
    """Price reports only, passes only, one company with a storm of recalls at one
    instant, irregular and late times, unknown outcomes, and non-finite times."""
    rng = random.Random(seed)
    base = entity_events(seed, n, warmup=200, bad_prob=0.02)
    times = irregular_times([(0.0, t, y) for _, t, y in base], seed)
    irregular: Stream = [
        (x, t - (rng.uniform(0, 3 * 86_400.0) if rng.random() < 0.05 else 0.0), y)
        for (x, _, y), (_, t, _) in zip(base, times, strict=True)]
    return {
        "price_reports": [((f"firm{i % 50}", "price_report", None), T0 + 60.0 * i, False)
                          for i in range(n)],
        "all_pass": [((f"firm{i % 50}", "inspection", False), T0 + 60.0 * i, False)
                     for i in range(n)],
        "recall_storm": base[:300] + [(("firm1", "recall", None), T0 + 400 * 600.0, False)]
        * 500,
        "irregular_late": irregular,
        "unknown_outcome": [((f"firm{i % 50}", "inspection", None), T0 + 60.0 * i, False)
                            for i in range(n)],
        "nonfinite_time": [(x, math.nan if i % 10 == 9 else t, y)
                           for i, (x, t, y) in enumerate(base)],
    }


def entity_null(seed: int, n: int) -> Stream:
    """:func:`entity_events` where no company turns bad."""
    return entity_events(seed, n, bad_prob=0.0)


def entity_clear(seed: int, n: int = 3_000) -> Stream:
    """``n`` null events (about three weeks), then six recalls of ``firm7`` within two
    days, labelled."""
    base = entity_null(seed, n)
    last = base[-1][1]
    return base + [(("firm7", "recall", None), last + 8 * HOUR * (k + 1), True)
                   for k in range(6)]
