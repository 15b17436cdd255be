"""Entity risk in the detect stage: per market entity (a company's unified social credit
code), a risk score from its recalls, licence violations, failed inspections and the
complaints that name it (:class:`~detectors.signals.entity_risk.EntityRisk`, event time).

An :class:`EntityTracker` lives in each partition's
:class:`~streams.pipeline.detection.Detection` (so it is checkpointed with it) and turns
what it learns into

* :class:`~streams.core.schemas.EntityRiskRecord` records for the compacted topic
  ``tocsin.entities.risk`` (keyed by entity code), whenever an entity's score changes by
  ``entity_material`` or more since its last record, and a last record when it falls back
  below ``ENTITY_MIN_SCORE``;
* :class:`~streams.core.schemas.Warning` versions of scenario ``entity_risk`` to the
  market regulator: new when the score reaches ``entity_level``, update at each further
  adverse event while open, resolved when the score has decayed below ``entity_level - 1``.
* notes on the risky entities behind a finding's events (``Finding.entities``), which
  the warnings rendered from it name in their explanation.

:meth:`EntityTracker.take` (through :class:`EntityViews`, mixed into the source stage)
hands the records and warnings to the worker, which publishes them with the correlator's.

Nothing personal leaves it: an entity is named by its code only (never the business name,
which for a sole trader is a person's name), complaints only by their ids.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from detectors.base import Finding, Score, warning_id
from detectors.signals.entity_risk import DEFAULT_WEIGHTS, EntityRisk
from streams.core.schemas import (
    Audit,
    Complaint,
    EntityRiskRecord,
    Evidence,
    MarketEvent,
    SensorReading,
    Status,
    Warning,
)
from streams.pipeline.records import DETECTOR_VERSIONS

if TYPE_CHECKING:
    from streams.pipeline.detection import Detection, DetectParams

#: the scenario of an entity's warning (single department: market regulation)
ENTITY_SCENARIO = "entity_risk"
#: the signal kind a complaint naming an entity counts as, and its weight
COMPLAINT_KIND = "complaint"
WEIGHTS = {**DEFAULT_WEIGHTS, COMPLAINT_KIND: 0.5}
#: below this score (-log10 p) an entity is not worth a topic record or a place in the view
ENTITY_MIN_SCORE = 1.0
#: adverse events kept per entity as evidence (the latest)
MAX_EVENTS = 20
#: event time between two sweeps of the open and published entities (their risk decays)
SWEEP_S = 3600.0
#: entities named in one market warning's evidence, and the window of "also had"
MAX_NOTES = 3
NOTE_WINDOW_S = 30 * 86400.0
#: the resolved level is this many decades below the warning level
HYSTERESIS = 1.0
#: adverse kinds as they are named in explanations
KIND_NAMES = {"recall": "recall", "license_violation": "licence violation",
              "inspection": "failed inspection", COMPLAINT_KIND: "complaint"}


def score_of(s: Score) -> float:
    """``-log10 p``, rounded (as in every other score on the wire)."""
    return round(-math.log10(max(s.p_value, 1e-300)), 3)


@dataclass(slots=True)
class _Entity:
    region: str
    department: str
    events: tuple[tuple[str, float, str], ...] = ()  # (kind, t, event id), oldest first
    published: float | None = None  # score of the last topic record


@dataclass(slots=True)
class _Open:
    warning_id: str
    version: int
    first_seen: float
    n_events: int  # adverse events when the last version was published


@dataclass
class EntityStep:
    """What one record (or a sweep) produced."""

    records: list[EntityRiskRecord] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)

    def extend(self, other: EntityStep) -> None:
        self.records.extend(other.records)
        self.warnings.extend(other.warnings)


class EntityTracker:
    """Entity risk of one partition; ``p`` (the detect stage's parameters) is supplied by
    the worker, never snapshotted."""

    def __init__(self, p: DetectParams) -> None:
        self.p = p
        self.det = EntityRisk(half_life_s=p.entity_half_life_s, weights=WEIGHTS,
                              max_entities=p.entity_max)
        self._entities: dict[str, _Entity] = {}  # entities with an adverse record
        self._open: dict[str, _Open] = {}
        self._swept = -math.inf
        self._out = EntityStep()  # output not yet taken (never snapshotted)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_out"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._out = EntityStep()

    def detect(self, rec: SensorReading | Complaint | MarketEvent, found: list[Finding]
               ) -> list[Finding]:
        """Learn ``rec`` (a market event or complaint; its output kept for :meth:`take`)
        and return its findings ``found`` with notes on the risky entities behind their
        events (:meth:`notes`)."""
        if isinstance(rec, SensorReading):
            return found
        t = rec.event_time.timestamp()
        self._out.extend(self.observe(rec, t))
        return [replace(f, entities=tuple(n)) if (n := self.notes(f.event_ids, t)) else f
                for f in found]

    def take(self) -> EntityStep:
        """The topic records and warnings produced since the last call."""
        out, self._out = self._out, EntityStep()
        return out

    # -- input -----------------------------------------------------------------------------
    def observe(self, rec: MarketEvent | Complaint, t: float) -> EntityStep:
        """Learn ``rec`` if it names an entity; then re-assess what has decayed."""
        out = EntityStep()
        entity = rec.entity_id
        if entity is not None:
            if isinstance(rec, Complaint):
                kind, failed, eid = COMPLAINT_KIND, None, rec.complaint_id
            else:
                kind, failed, eid = rec.kind, (None if rec.passed is None else not rec.passed), \
                    rec.event_id
            self.det.learn_one((entity, kind, failed), t)
            adverse = kind in WEIGHTS and (kind != "inspection" or failed is True)
            e = self._entities.get(entity)
            if adverse or e is not None:
                if e is None:
                    e = self._entities[entity] = _Entity(rec.region, rec.department)
                if isinstance(rec, MarketEvent):  # a complaint's department is the hotline's
                    e.region, e.department = rec.region, rec.department
                if adverse:
                    e.events = (*e.events, (kind, t, eid))[-MAX_EVENTS:]
                out.extend(self._assess(entity, e, t, adverse))
            self._prune()
        if t - self._swept >= SWEEP_S:
            self._swept = t
            out.extend(self.sweep(t))
        return out

    def sweep(self, t: float) -> EntityStep:
        """Re-assess the entities with an open warning or a published score at ``t``."""
        out = EntityStep()
        for entity in sorted({*self._open, *(k for k, e in self._entities.items()
                                              if e.published is not None)}):
            e = self._entities.get(entity)
            if e is not None:
                out.extend(self._assess(entity, e, t, False))
        return out

    def _prune(self) -> None:
        """Forget the records of entities the detector has evicted (bounded memory)."""
        cap = self.det.max_entities
        if len(self._entities) > cap + cap // 10:
            for k in [k for k in self._entities if k not in self.det and k not in self._open]:
                del self._entities[k]

    # -- output ----------------------------------------------------------------------------
    def _assess(self, entity: str, e: _Entity, t: float, adverse: bool) -> EntityStep:
        out = EntityStep()
        s = self.det.assess(entity, t)
        score = score_of(s)
        w = self._lifecycle(entity, e, s, score, t, adverse)
        if w is not None:
            out.warnings.append(w)
        last = e.published
        if ((last is None and score >= ENTITY_MIN_SCORE)
                or (last is not None and (abs(score - last) >= self.p.entity_material
                                          or score < ENTITY_MIN_SCORE or w is not None))):
            out.records.append(self._record(entity, e, s, score, t))
            e.published = None if score < ENTITY_MIN_SCORE else score
        return out

    def _lifecycle(self, entity: str, e: _Entity, s: Score, score: float, t: float,
                   adverse: bool) -> Warning | None:
        status: Status
        level = self.p.entity_level
        o = self._open.get(entity)
        if o is None:
            if score < level or not adverse:
                return None
            digest = hashlib.blake2b(f"{ENTITY_SCENARIO}|{entity}|{t!r}".encode(),
                                     digest_size=6).hexdigest()
            o = self._open[entity] = _Open(warning_id(e.region, digest), 0, t, 0)
            status = "new"
        elif score < level - HYSTERESIS:
            del self._open[entity]
            status = "resolved"
        elif adverse:  # rising: a further adverse event while open
            status = "update"
        else:
            return None
        o.version += 1
        o.n_events = len(e.events)
        return self._warning(entity, e, o, s, score, t, status)

    def _warning(self, entity: str, e: _Entity, o: _Open, s: Score, score: float, t: float,
                 status: Status) -> Warning:
        level = self.p.entity_level
        ids = [eid for _, _, eid in e.events]
        when = datetime.fromtimestamp(t, UTC)
        return Warning(
            warning_id=o.warning_id, version=o.version, status=status,
            region=e.region, scenario=ENTITY_SCENARIO,
            severity="Severe" if score >= 2 * level else "Moderate",
            urgency="Expected", certainty="Likely", score=score,
            departments=[e.department],
            first_seen=datetime.fromtimestamp(o.first_seen, UTC), last_seen=when,
            evidence=[Evidence(
                source="market", department=e.department, region=e.region,
                signal=f"entity:{entity}", detector="entity_risk", observed=round(s.observed, 3),
                expected=round(s.expected, 3), score=score, p_value=s.p_value,
                event_time=when, event_ids=ids)],
            explanation=self.explain(entity, e, s, score, t, status),
            sent_at=datetime.now(UTC),  # as the correlator's warnings: when it is sent
            audit=Audit(template=ENTITY_SCENARIO,
                        rule="entity risk score (-log10 p of its decayed adverse weight "
                        "against the population) >= level opens, < level - 1 resolves",
                        detectors={"entity_risk": DETECTOR_VERSIONS["entity_risk"]},
                        parameters={"level": level, "half_life_s": self.p.entity_half_life_s},
                        event_ids=sorted(ids)),
        )

    def explain(self, entity: str, e: _Entity, s: Score, score: float, t: float,
                status: Status = "update") -> str:
        """One sentence on the entity's record (its code only, never its name)."""
        counts = self.counts(entity, t)
        what = ", ".join(f"{n} {KIND_NAMES.get(k, k)}{'s' if n > 1 else ''}"
                         for k, n in counts.items()) or "no adverse events"
        days = self.p.entity_half_life_s / 86400
        head = ("Risk has decayed below the level" if status == "resolved"
                else "Repeated adverse record")
        return (f"{head} at entity {entity} ({e.region}): {what} in its record (events lose "
                f"half their weight every {days:g} days); adverse weight {s.observed:.2f} "
                f"against {s.expected:.2f} typical, risk score {score:.1f} (level "
                f"{self.p.entity_level:g}).")

    def counts(self, entity: str, t: float, within_s: float | None = None) -> dict[str, int]:
        """Adverse events of the entity kept as evidence, by kind (within ``within_s``
        before ``t`` if given)."""
        e = self._entities.get(entity)
        out: dict[str, int] = {}
        for kind, te, _ in (() if e is None else e.events):
            if within_s is None or t - te <= within_s:
                out[kind] = out.get(kind, 0) + 1
        return out

    def _record(self, entity: str, e: _Entity, s: Score, score: float, t: float
                ) -> EntityRiskRecord:
        o = self._open.get(entity)
        return EntityRiskRecord(
            entity_id=entity, region=e.region, score=score, risk=round(s.likelihood, 6),
            weight=round(s.observed, 3), expected=round(s.expected, 3),
            counts=self.counts(entity, t), above_level=o is not None,
            warning_id=None if o is None else o.warning_id,
            event_time=datetime.fromtimestamp(t, UTC))

    # -- views -----------------------------------------------------------------------------
    def top(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` entities of highest published score, highest first."""
        scored = ((k, e.published) for k, e in self._entities.items() if e.published is not None)
        return [(k, v) for k, v in heapq.nlargest(n, scored, key=lambda kv: kv[1])
                if v is not None]

    def notes(self, event_ids: tuple[str, ...], t: float) -> list[str]:
        """What the entities behind ``event_ids`` (a finding's evidence) have on record:
        one sentence for each of the ``MAX_NOTES`` riskiest with two or more of these
        events or a published score, e.g. "3 of the failed inspections are at entity X,
        which also had 1 recall in the last 30 days (risk score 7.2)"."""
        ids = set(event_ids)
        found: list[tuple[float, str]] = []
        for k, e in self._entities.items():
            mine = [kind for kind, _, eid in e.events if eid in ids]
            if not mine or (len(mine) < 2 and e.published is None):
                continue
            kind = max(set(mine), key=mine.count)
            n = mine.count(kind)
            name = KIND_NAMES.get(kind, kind)
            head = (f"{n} of the {name}s are at entity {k}" if n > 1
                    else f"the {name} at entity {k}")
            others = {kk: c for kk, c in self.counts(k, t, NOTE_WINDOW_S).items()
                      if kk != kind}
            also = ", ".join(f"{c} {KIND_NAMES.get(kk, kk)}{'s' if c > 1 else ''}"
                             for kk, c in others.items())
            score = score_of(self.det.assess(k, t))
            tail = f", which also had {also} in the last 30 days" if also else ""
            found.append((score, f"{head}{tail} (risk score {score:.1f})"))
        return [note for _, note in sorted(found, reverse=True)[:MAX_NOTES]]

    @property
    def n_open(self) -> int:
        return len(self._open)


def top_of(trackers: list[EntityTracker], n: int) -> list[tuple[str, float]]:
    """The ``n`` riskiest entities of ``trackers`` (code, score), highest first."""
    best: dict[str, float] = {}
    for tr in trackers:
        for k, v in tr.top(n):
            best[k] = max(v, best.get(k, v))
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


class EntityViews:
    """What a :class:`~streams.pipeline.stages.SourceStage` offers of its partitions'
    entity risk (mixed into it)."""

    _detection: dict[int, Detection]

    def entity_top(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` riskiest entities over every partition (code, score), highest first."""
        return top_of([d.entities for d in list(self._detection.values())], n)

    def take_entities(self) -> EntityStep:
        """Every partition's topic records and entity_risk warnings since the last call."""
        out = EntityStep()
        for d in list(self._detection.values()):
            out.extend(d.entities.take())
        return out
