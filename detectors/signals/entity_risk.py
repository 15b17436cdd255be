"""Entity risk: how unusual is a company's record of recalls, licence violations and
failed inspections, compared with the population of companies?

Keyed by entity (the unified social credit code of a company), in event time.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from scipy.special import cython_special

from detectors.base import P_FLOOR, Score

#: default weight of one adverse event of each kind (a failed inspection for ``inspection``)
DEFAULT_WEIGHTS: Mapping[str, float] = {"recall": 3.0, "license_violation": 2.0, "inspection": 1.0}
#: market event kinds that say nothing about risk: accepted, and only register the entity
NEUTRAL_KINDS = frozenset({"price_report"})
#: other spellings accepted for a kind
ALIASES: Mapping[str, str] = {"licence_violation": "license_violation"}
#: decayed adverse weight below which an entity counts as risk-free when choosing evictions
NEGLIGIBLE = 0.01

# the scalar entry point of scipy.special.gammainc's C routine: the same values, without
# the ufunc's per-call overhead (about 0.5 us on Python floats)
_gammainc = cython_special.gammainc


@dataclass(frozen=True, slots=True)
class EntityEvent:
    """One market-regulation event about a company.

    ``kind`` is ``recall``, ``license_violation`` (or ``licence_violation``),
    ``inspection`` or ``price_report``; ``failed`` is the outcome of an inspection
    (``None`` if unknown; ignored for other kinds).
    """

    entity_id: str
    kind: str
    failed: bool | None = None


EntityEventLike: TypeAlias = EntityEvent | tuple[str, str] | tuple[str, str, bool | None]


class EntityRisk:
    """Per-company risk from repeated recalls, licence violations and failed inspections.

    Each adverse event adds its kind's weight (``weights``, default recall 3, licence
    violation 2, failed inspection 1) to the company's *adverse weight*, which decays
    exponentially in event time with ``half_life_s`` (default 30 days); a passed
    inspection takes ``pass_credit`` off it (never below 0). Price reports, and
    inspections of unknown outcome, change nothing but register the company. Any other
    kind raises ``ValueError``.

    The adverse weight of a company is compared with the population of all companies
    seen: the mean and variance of the adverse weight of the *other* companies (pooled,
    decayed the same way, shrunk towards a prior of ``prior_entities`` companies with
    mean ``prior_mean`` and dispersion ``prior_phi``) give a quasi-Poisson (mean ``mu``,
    variance ``phi * mu``, ``1 <= phi <= max_phi``), and the upper tail probability of the
    company's weight under it is the p-value. ``score_one(x, t)`` returns ``1 - p``, the
    calibrated likelihood in [0, 1] that the company is riskier than the population, for
    its record *including* the event ``x`` (without learning it); :meth:`explain_one`
    returns the whole :class:`~detectors.base.Score` (observed weight, population mean,
    p-value) and :meth:`risk` the likelihood of a company's current record.

    Memory is bounded: at most ``max_entities`` companies are tracked (one weight and one
    time each, about 50 bytes pickled). When a new company would exceed the cap, the
    tenth of the tracked companies with the lowest current adverse weight (weights below
    ``NEGLIGIBLE`` count as 0; ties go to the least recently updated) is dropped. Dropped
    companies stay in the population sums (their weight keeps decaying there); one that
    comes back starts again from zero and is counted a second time in the population size.

    Events may arrive late (before the latest time seen): they are added with the decay
    they would have had by now. A non-finite ``t`` is taken as the latest time seen.
    ``seed`` is accepted for the common detector signature; nothing here is random.

    >>> det = EntityRisk(half_life_s=30 * 86400)
    >>> t0 = 1_700_000_000.0
    >>> for i in range(200):                          # a population of inspected firms
    ...     det.learn_one((f"firm{i}", "inspection", i % 10 == 0), t0 + 3600 * i)
    >>> t1 = t0 + 3600 * 200
    >>> det.score_one(("firm7", "inspection", False), t1)   # passed: nothing to see
    0.0
    >>> for k in range(3):                            # three recalls in three weeks
    ...     det.learn_one(EntityEvent("firm7", "recall"), t1 + 7 * 86400 * k)
    >>> det.risk("firm7", t1 + 14 * 86400) > 0.999
    True
    >>> det.risk("firm7", t1 + 365 * 86400) < 0.5      # a year later it has decayed
    True
    >>> det.explain_one(("firm7", "recall"), t1 + 14 * 86400).p_value < 1e-4
    True
    """

    def __init__(
        self,
        half_life_s: float = 30 * 86400.0,
        weights: Mapping[str, float] | None = None,
        pass_credit: float = 0.5,
        max_entities: int = 100_000,
        prior_mean: float = 0.1,
        prior_entities: float = 20.0,
        prior_phi: float = 2.0,
        max_phi: float = 50.0,
        seed: int = 0,
    ) -> None:
        if not (math.isfinite(half_life_s) and half_life_s > 0):
            raise ValueError(f"half_life_s must be a positive number, got {half_life_s!r}")
        w = dict(DEFAULT_WEIGHTS if weights is None else weights)
        bad = {k: v for k, v in w.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"weights must be finite and >= 0, got {bad}")
        if not (math.isfinite(pass_credit) and pass_credit >= 0):
            raise ValueError(f"pass_credit must be finite and >= 0, got {pass_credit!r}")
        if max_entities < 1:
            raise ValueError(f"max_entities must be >= 1, got {max_entities!r}")
        if not (prior_mean > 0 and prior_entities > 0 and prior_phi >= 1 and max_phi >= 1):
            raise ValueError("need prior_mean > 0, prior_entities > 0, prior_phi >= 1 and "
                             "max_phi >= 1")
        self.half_life_s = half_life_s
        self.weights = w
        self.pass_credit = pass_credit
        self.max_entities = max_entities
        self.prior_mean = prior_mean
        self.prior_entities = prior_entities
        self.prior_phi = prior_phi
        self.max_phi = max_phi
        self.seed = seed
        # entity -> (adverse weight at time t_e, t_e)
        self._entities: dict[str, tuple[float, float]] = {}
        self._t: float | None = None  # latest event time seen: the population sums' time
        self._sum = 0.0  # sum over the population of adverse weights, at self._t
        self._sq = 0.0  # sum of their squares, at self._t
        self._n = 0  # population size (tracked and dropped companies)
        self.evicted = 0

    # -- helpers ----------------------------------------------------------------------
    def _kinds(self) -> list[str]:
        return sorted({*self.weights, *NEUTRAL_KINDS, *ALIASES})

    def _fields(self, x: EntityEventLike) -> tuple[str, str, bool | None]:
        """``(entity_id, kind, failed)`` of ``x``, the kind in its canonical spelling; no
        :class:`EntityEvent` is built for a plain tuple (the hot path)."""
        if type(x) is tuple and len(x) == 3:
            entity_id, kind, failed = x
        else:
            ev = x if isinstance(x, EntityEvent) else EntityEvent(*x)
            entity_id, kind, failed = ev.entity_id, ev.kind, ev.failed
        canon = ALIASES.get(kind, kind)
        if canon not in self.weights and canon not in NEUTRAL_KINDS:
            raise ValueError(
                f"unknown event kind {kind!r} for entity {entity_id!r}; "
                f"known kinds: {', '.join(self._kinds())}")
        return entity_id, canon, failed

    def _decay(self, dt: float) -> float:
        """Factor by which a weight shrinks over ``dt >= 0`` seconds."""
        return 1.0 if dt == 0.0 else 2.0 ** (-dt / self.half_life_s)

    def _now(self, t: float) -> float:
        """The time everything is evaluated at: ``t``, or the latest time seen if later."""
        last = self._t
        if last is None:
            return t if -math.inf < t < math.inf else 0.0
        return t if last <= t < math.inf else last

    def _weight_at(self, entity_id: str, now: float) -> float:
        rec = self._entities.get(entity_id)
        return 0.0 if rec is None else rec[0] * self._decay(now - rec[1])

    def _after(self, w_old: float, kind: str, failed: bool | None, t: float,
               now: float) -> float:
        """Adverse weight of the entity at ``now`` once the event (``kind``, ``failed``)
        at ``t`` is added."""
        if kind in NEUTRAL_KINDS:
            return w_old
        if kind == "inspection":
            if failed is None:
                return w_old
            if not failed:
                age = self._decay(now - t) if math.isfinite(t) else 1.0
                return max(w_old - self.pass_credit * age, 0.0)
        age = self._decay(now - t) if math.isfinite(t) else 1.0
        return w_old + self.weights[kind] * age

    def _pop_at(self, now: float) -> tuple[float, float]:
        """Population (sum, sum of squares) of adverse weights at ``now``."""
        if self._t is None:
            return 0.0, 0.0
        d = self._decay(now - self._t)
        return self._sum * d, self._sq * d * d

    def _p_value(self, tracked: bool, w_old: float, w_new: float, now: float
                 ) -> tuple[float, float]:
        """(population mean ``mu``, tail p-value of ``w_new``) for an entity whose weight
        (already in the population sums if ``tracked``) is ``w_old``."""
        s, sq = self._pop_at(now)
        n_rest = self._n - (1 if tracked else 0)
        s_rest = max(s - w_old, 0.0)
        sq_rest = max(sq - w_old * w_old, 0.0)
        k, m0 = self.prior_entities, self.prior_mean
        n = n_rest + k
        mu = (s_rest + k * m0) / n
        if w_new <= 0.0:  # P(X >= 0) = 1 whatever the dispersion
            return mu, 1.0
        second = (sq_rest + k * (m0 * m0 + self.prior_phi * m0)) / n
        phi = min(max((second - mu * mu) / mu, 1.0), self.max_phi)
        # P(X >= w_new), X quasi-Poisson: counts scaled by phi, continuous Poisson tail
        tail = float(_gammainc(w_new / phi, mu / phi))
        return mu, min(max(tail, P_FLOOR), 1.0)

    def _score(self, entity_id: str, w_old: float, w_new: float, now: float) -> Score:
        mu, p = self._p_value(entity_id in self._entities, w_old, w_new, now)
        return Score(w_new, mu, p)

    def _evaluate(self, x: EntityEventLike, t: float) -> tuple[float, float, float]:
        """(``w_new``, ``mu``, p-value) of event ``x`` at ``t``; changes no state."""
        entity_id, kind, failed = self._fields(x)
        now = self._now(t)
        rec = self._entities.get(entity_id)
        w_old = 0.0 if rec is None else rec[0] * self._decay(now - rec[1])
        w_new = self._after(w_old, kind, failed, t, now)
        mu, p = self._p_value(rec is not None, w_old, w_new, now)
        return w_new, mu, p

    # -- contract ---------------------------------------------------------------------
    def explain_one(self, x: EntityEventLike, t: float) -> Score:
        """Observed adverse weight of the entity with ``x`` added, the population's mean,
        and the tail p-value. Changes no state."""
        return Score(*self._evaluate(x, t))

    def score_one(self, x: EntityEventLike, t: float) -> float:
        """Likelihood in [0, 1] that the entity's record with ``x`` is riskier than the
        population's. Changes no state."""
        return 1.0 - self._evaluate(x, t)[2]

    def risk(self, entity_id: str, t: float) -> float:
        """Likelihood in [0, 1] for the entity's record as it stands at ``t``."""
        now = self._now(t)
        w = self._weight_at(entity_id, now)
        return self._score(entity_id, w, w, now).likelihood

    def assess(self, entity_id: str, t: float) -> Score:
        """The whole :class:`~detectors.base.Score` of the entity's record as it stands at
        ``t`` (observed adverse weight, population mean, p-value). Changes no state."""
        now = self._now(t)
        w = self._weight_at(entity_id, now)
        return self._score(entity_id, w, w, now)

    def __contains__(self, entity_id: object) -> bool:
        """Whether the entity is tracked now (seen, and not evicted since)."""
        return entity_id in self._entities

    def learn_one(self, x: EntityEventLike, t: float) -> None:
        """Add event ``x`` at event time ``t`` to its entity's record."""
        entity_id, kind, failed = self._fields(x)
        now = self._now(t)
        s, sq = self._pop_at(now)
        entities = self._entities
        rec = entities.get(entity_id)
        w_old = 0.0 if rec is None else rec[0] * self._decay(now - rec[1])
        w_new = self._after(w_old, kind, failed, t, now)
        if rec is None:
            if len(entities) >= self.max_entities:
                self._evict(now)
            self._n += 1
        entities[entity_id] = (w_new, now)
        self._sum = max(s + w_new - w_old, 0.0)
        self._sq = max(sq + w_new * w_new - w_old * w_old, 0.0)
        self._t = now

    def _evict(self, now: float) -> None:
        def rank(item: tuple[str, tuple[float, float]]) -> tuple[float, float]:
            w = item[1][0] * self._decay(now - item[1][1])
            return (0.0 if w < NEGLIGIBLE else w, item[1][1])

        batch = max(1, self.max_entities // 10)
        for key, _ in heapq.nsmallest(batch, self._entities.items(), key=rank):
            del self._entities[key]
        self.evicted += batch

    @property
    def n_entities(self) -> int:
        """Number of entities tracked now (at most ``max_entities``)."""
        return len(self._entities)


__all__ = ["DEFAULT_WEIGHTS", "EntityEvent", "EntityRisk"]
