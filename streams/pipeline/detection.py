"""Detect stage: route each valid record to its detectors, in event time, and emit findings.

The sensor path is :mod:`streams.pipeline.sensor_path`; this module holds the market
(prices, inspections) and count (complaints, market reports) paths."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from detectors import policy
from detectors.base import Score
from detectors.fusion.correlation import Finding
from detectors.signals.calendar import HolidayCalendar
from detectors.signals.catalogue import Catalogue
from detectors.signals.counts import CountSurge
from detectors.signals.limits import Limit
from detectors.signals.rates import RateSurge
from detectors.signals.robust import RobustBaseline
from detectors.signals.station_health import StationHealth
from streams.core.schemas import Complaint, MarketEvent, SensorReading
from streams.core.signals import packaged
from streams.pipeline.entities import EntityTracker
from streams.pipeline.prewarnings import PreWarnings
from streams.pipeline.prewarnings import PreWarningViews as PreWarningViews  # (the stage's)
from streams.pipeline.sensor_path import SensorPath
from streams.pipeline.sensor_path import _SensorState as _SensorState  # (was defined here)


def _packaged_directions() -> dict[str, str]:
    return packaged().directions()


@dataclass(frozen=True)
class DetectParams:
    """The detect stage's parameters; the thresholds default to :mod:`detectors.policy`
    (one definition)."""

    alpha_level: float = policy.ALPHA_LEVEL
    alpha_count: float = policy.ALPHA_COUNT
    alpha_shift: float = policy.ALPHA_SHIFT
    alpha_weak: float = policy.ALPHA_WEAK
    min_count: int = policy.MIN_COUNT
    level_window: int = 96
    level_min_history: int = 24
    sensor_learning: int = 96  # readings a sensor series learns from before it is scored
    price_min_history: int = 5  # a shop reports a price once or twice a day
    hold_max: int = 24  # anomalous readings kept out of the baseline before it adapts
    repeat_every: int = 4  # while anomalous, re-emit every n-th anomalous reading
    bucket_s: float = 3600.0
    lateness_s: float = 1800.0
    # working days, weekends and holidays of the count baselines (None: weekends in UTC,
    # no holidays; the pipeline passes TOCSIN_HOLIDAYS'). Not given to SustainedShift,
    # which takes one: measured, it cost 2 of 46 zoo and 2 of 36 dev incidents (docs/detectors.md)
    calendar: HolidayCalendar | None = None
    # metric -> which way is bad (up, down, both): the signal catalogue's (default: the
    # packaged one's; the pipeline passes TOCSIN_SIGNALS'); a metric not in it: up
    directions: Mapping[str, str] = field(default_factory=_packaged_directions)
    # entity risk (streams/pipeline/entities.py): the score (-log10 p) at which an entity's
    # warning opens, the half-life of its adverse events, the change of score worth a topic
    # record, and the most entities tracked per partition
    entity_level: float = 6.0
    entity_half_life_s: float = 30 * 86400.0
    entity_material: float = 0.5
    entity_max: int = 100_000
    # metric -> regulatory limit: the limit pre-warnings (streams.pipeline.prewarnings); None
    # or empty: none. The source stage passes the catalogue's (catalogue_limits)
    limits: dict[str, Limit] | None = None
    # the signal catalogue in force: when set, a series' limit is the one in force at its
    # station and region (their overrides before the metric-wide one; see _prewarn)
    catalogue: Catalogue | None = None
    # the duty officers' time zone: the times in pre-warnings' explanations
    zone: tzinfo = UTC


def is_weak(anomaly_id: str) -> bool:
    """True for a weak supporting count (see :func:`detectors.policy.is_weak`)."""
    return policy.is_weak(anomaly_id)


#: event ids kept per key as a finding's evidence: the last this many
RECENT_IDS = 25
#: separates the ids kept per key in one string (ids are ``schemas.Identifier``s: no
#: whitespace); one string instead of a deque of strings saves about 1.4 KB per key
_ID_SEP = " "


def _remember(ids: str | None, event_id: str) -> str:
    """``ids`` (the last ``RECENT_IDS`` event ids of a key, oldest first, in one string)
    with ``event_id`` added, and the oldest dropped if there are more than ``RECENT_IDS``."""
    if ids is None:
        return event_id
    if ids.count(_ID_SEP) >= RECENT_IDS - 1:
        ids = ids[ids.index(_ID_SEP) + 1:]
    return f"{ids}{_ID_SEP}{event_id}"


def _id_tuple(ids: str) -> tuple[str, ...]:
    return tuple(ids.split(_ID_SEP))


#: ``_CountCtx.weak`` packs (bucket, decade) into one int, ordered as the pairs are
#: (a decade is ``int(-log10 p)`` of a p in (0, 1): at most 323)
_DECADES = 1024
_NO_WEAK = -1 * _DECADES - 1  # (-1, -1)


@dataclass(slots=True)
class _LevelState:
    det: RobustBaseline
    run: int = 0
    # the two readings before the current one, older first (None: not yet seen); slots, not
    # a container (a deque of three is 624 bytes)
    before: float | None = None
    last: float | None = None


#: a price this many times the usual (or its inverse), to within ENTRY_TOLERANCE, is a
#: data-entry slip (a decimal point, a price per jin sent as per kg), not a price move
ENTRY_FACTORS = (10.0, 2.0, 100.0)
ENTRY_TOLERANCE = 0.03


def entry_error(x: float, det: RobustBaseline) -> bool:
    """Is price ``x`` a data-entry slip against ``det``'s usual level?"""
    if det.n < 3:
        return False
    med, _ = det.expected()
    if med <= 0 or x <= 0:
        return False
    r = x / med
    return any(abs(r / f - 1.0) <= ENTRY_TOLERANCE or abs(r * f - 1.0) <= ENTRY_TOLERANCE
               for f in ENTRY_FACTORS)


@dataclass(slots=True)
class _CountCtx:
    det: CountSurge
    recent_ids: dict[str, str] = field(default_factory=dict)  # key -> ids (see _remember)
    # key -> the last weak count reported, (bucket, decade) as bucket * _DECADES + decade
    weak: dict[str, int] = field(default_factory=dict)


class Detection(SensorPath):
    """Per-source detector banks. ``process`` scores a record before learning it."""

    def __init__(self, params: DetectParams | None = None) -> None:
        self.p = params or DetectParams()
        self._levels: dict[tuple[str, ...], _LevelState] = {}
        self._sensors: dict[tuple[str, str], _SensorState] = {}
        # one count detector per (source, kind), keyed by region: the pooled prior and the
        # hour-of-day shape are shared by the regions of one kind, never across kinds
        self._counts: dict[str, dict[str, _CountCtx]] = {"complaint": {}, "market": {}}
        self._rates = RateSurge(bucket_s=self.p.bucket_s, lateness_s=self.p.lateness_s)
        self._rate_ids: dict[str, str] = {}  # region -> failed trials' ids (see _remember)
        self.watermark: dict[str, float] = {}
        self.first_seen: dict[str, float] = {}
        self.late_events: dict[str, int] = {"env": 0, "complaint": 0, "market": 0}
        # latest (observed, expected) per (region, source, signal kind): for dashboards
        self.signals: dict[tuple[str, str, str], tuple[float, float]] = {}
        # common-mode reference: metric -> station -> (event time, sustained-shift z)
        self._peers: dict[str, dict[str, tuple[float, float]]] = {}
        # metric -> the peers' median z at the last reading (a city-wide condition if high)
        self.common_mode: dict[str, float] = {}
        # price reports set aside as data-entry errors (see entry_error)
        self.entry_errors = 0
        # sensor readings screened out as an instrument fault, by fault kind
        self.sensor_faults: dict[str, int] = {}
        # cadence, missing readings, silence, stuck values and faults per sensor series
        self.health = StationHealth()
        # per market entity (credit code): risk from its record, notes on its findings
        self.entities = EntityTracker(self.p)
        # limit pre-warnings of the sensor series (warning versions, drained per record)
        self.prewarnings = PreWarnings()

    # -- entry ----------------------------------------------------------------------------
    def process(self, source: str, rec: SensorReading | Complaint | MarketEvent) -> list[Finding]:
        """Findings of ``rec``; a market event or complaint also feeds entity risk."""
        return self.entities.detect(rec, self._detect(source, rec))

    def _detect(self, source: str, rec: SensorReading | Complaint | MarketEvent
                ) -> list[Finding]:
        t = rec.event_time.timestamp()
        wm = self.watermark.get(source)
        if wm is None:
            self.first_seen[source] = t
        if wm is None or t > wm:
            self.watermark[source] = t
        elif t < wm - self.p.lateness_s:
            # later than allowed: downstream has moved past this time (counted, not scored)
            self.late_events[source] += 1
            return []
        if isinstance(rec, SensorReading):
            return self._sensor(rec, t)
        if isinstance(rec, Complaint):
            return self._count("complaint", rec.department, rec.region,
                               f"complaint:{rec.category}", rec.complaint_id, t)
        return self._market(rec, t)

    # -- level signals ------------------------------------------------------------------
    def _level(
        self, key: tuple[str, ...], x: float, t: float, *, source: str, department: str,
        region: str, kind: str, signal: str, event_id: str, smooth: bool = True,
    ) -> list[Finding]:
        st = self._levels.get(key)
        if st is None:
            min_history = (self.p.price_min_history if source == "market"
                           else self.p.level_min_history)
            st = _LevelState(RobustBaseline(self.p.level_window, min_history))
            self._levels[key] = st
        # score the median of the last three readings (one stray reading is not an
        # anomaly), unless each reading is to be judged on its own
        before, last = st.before, st.last
        if not smooth and entry_error(x, st.det):
            self.entry_errors += 1  # a decimal slip or a per-jin price sent per kg
            return []
        s = st.det.explain_one(
            x if not smooth or before is None or last is None
            else sorted((before, last, x))[1], t)
        st.before = last
        st.last = x
        self.signals[(region, source, kind)] = (s.observed, s.expected)
        out: list[Finding] = []
        if s.p_value < self.p.alpha_level:
            if st.run % self.p.repeat_every == 0:
                out.append(self._finding(
                    f"{signal}@{event_id}", source, department, region, kind, signal,
                    "robust_baseline", s, t, (event_id,),
                ))
            st.run += 1
            if st.run > self.p.hold_max:
                st.det.learn_one(x, t)
        else:
            st.run = 0
            st.det.learn_one(x, t)
        return out

    def _market(self, e: MarketEvent, t: float) -> list[Finding]:
        if e.kind == "price_report":
            assert e.price is not None and e.commodity is not None
            kind = f"market:price:{e.commodity}"
            # one series per shop (its own price level; a region's shops differ) when the
            # report names it, each report judged on its own: shops report once or twice
            # a day, so a wave of a day has one or two reports per shop
            shop = e.entity_id
            key = (("price", e.commodity, e.unit or "", shop) if shop
                   else ("price", e.commodity, e.region, e.unit or ""))
            out = self._level(
                key, e.price, t, source="market", department=e.department, region=e.region,
                kind=kind, signal=f"{kind}:{e.region}", event_id=e.event_id,
                smooth=not shop)
            self._advance("market", t)
            return out
        if e.kind == "inspection":
            return self._inspection(e, t)
        return self._count("market", e.department, e.region, f"market:{e.kind}", e.event_id, t)

    def _inspection(self, e: MarketEvent, t: float) -> list[Finding]:
        self._advance("market", t)
        det = self._rates
        failed = not e.passed
        x = (e.region, failed)
        if not det.accepts(x, t) or not failed:
            det.learn_one(x, t)
            return []
        ids = self._rate_ids[e.region] = _remember(self._rate_ids.get(e.region), e.event_id)
        s = det.explain_one(x, t)
        first = (s.p_value < self.p.alpha_count and s.observed >= self.p.min_count
                 and not det.has_fired(e.region, t))
        det.learn_one(x, t)  # counts the trial; marks the bucket fired on a finding
        self.signals[(e.region, "market", "market:inspection_fail")] = (s.observed, s.expected)
        kind = "market:inspection_fail"
        signal = f"{kind}:{e.region}"
        bucket = det.bucket_of(t)
        if first:
            return [self._finding(
                f"{signal}@{bucket}", "market", e.department, e.region, kind, signal,
                "rate_surge", s, t, _id_tuple(ids),
            )]
        return []

    # -- count signals ------------------------------------------------------------------
    def _advance(self, source: str, t: float) -> None:
        wm = self.watermark.get(source, t)
        for ctx in self._counts[source].values():
            ctx.det.advance(wm)
        if source == "market":
            self._rates.advance(wm)

    def _count(
        self, source: str, department: str, region: str, kind: str, event_id: str, t: float
    ) -> list[Finding]:
        ctx = self._counts[source].get(kind)
        if ctx is None:
            ctx = self._counts[source][kind] = _CountCtx(
                CountSurge(bucket_s=self.p.bucket_s, lateness_s=self.p.lateness_s,
                           calendar=self.p.calendar))
            # a kind first seen now has had zero events since the source started
            ctx.det.advance(self.first_seen[source])
        det = ctx.det
        self._advance(source, t)
        key = region
        x = (key, 1)
        if not det.accepts(x, t):
            det.learn_one(x, t)  # counted in det.late_events
            self.late_events[source] += 1
            return []
        ids = ctx.recent_ids[key] = _remember(ctx.recent_ids.get(key), event_id)
        s = det.explain_one(x, t)
        # (before learn_one, which marks the bucket fired on a finding)
        first = (s.p_value < self.p.alpha_count and s.observed >= self.p.min_count
                 and not det.has_fired(key, t))
        det.learn_one(x, t)
        self.signals[(region, source, kind)] = (s.observed, s.expected)
        bucket = det.bucket_of(t)
        signal = f"{kind}:{region}"
        if first:
            return [self._finding(
                f"{signal}@{bucket}", source, department, region, kind, signal,
                "count_surge", s, t, _id_tuple(ids),
            )]
        # weak: below alpha_weak but no anomaly (not significant enough, or too few
        # events); not after this bucket's anomaly fired
        if 0.0 < s.p_value < self.p.alpha_weak and (
                s.p_value >= self.p.alpha_count or s.observed < self.p.min_count):
            decade = int(-math.log10(s.p_value))
            mark = bucket * _DECADES + decade
            if ctx.weak.get(key, _NO_WEAK) < mark:
                ctx.weak[key] = mark
                return [self._finding(
                    f"{signal}@{bucket}~{decade}", source, department, region, kind, signal,
                    "count_surge", s, t, _id_tuple(ids),
                )]
        return []

    @staticmethod
    def _finding(
        anomaly_id: str, source: str, department: str, region: str, kind: str, signal: str,
        detector: str, s: Score, t: float, event_ids: tuple[str, ...],
    ) -> Finding:
        return Finding(
            anomaly_id=anomaly_id, source=source, department=department, region=region,
            kind=kind, signal=signal, detector=detector, observed=s.observed,
            expected=s.expected, p_value=s.p_value, t=t, event_ids=event_ids,
            window_s=s.window_s,
        )

    @property
    def n_series(self) -> int:
        counts = sum(c.det.n_keys for by_kind in self._counts.values() for c in by_kind.values())
        return len(self._levels) + len(self._sensors) + counts + self._rates.n_keys
