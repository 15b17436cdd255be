"""Baselines that Tocsin's evaluation reports beside Tocsin itself.

Both produce :class:`streams.core.schemas.Warning` objects (one version each, status ``new``) so
``streams.evaluation.replay_score.score`` scores them exactly like Tocsin's warnings
(``tocsin eval replay --baseline single|naive``). Both are deterministic and use event time
only.

``single`` -- warn on any single anomaly
    Every anomaly that Tocsin's own detect stage finds (``Pipeline.anomalies`` after
    ``streams.evaluation.replay_score.run_pipeline``) becomes a warning; no correlation at all.
    Anomalies are taken in event-time order, and one warning is made per region + signal
    episode: an anomaly of the same region and signal at most 6 h after the previous one belongs
    to the same episode (no new warning). The warning's ``first_seen`` and ``last_seen`` are the
    event time of the episode's first anomaly; its one evidence item is that anomaly.

``naive`` -- hourly z-scores and Poisson tails, two departments within six hours
    Computed from the valid records themselves (``streams.ingest.ingestor.Ingestor``: schema,
    region registry, unit normalisation, exact re-deliveries dropped; dead letters
    ignored). Every record goes to the hour bucket ``floor(event time / 1 h)``. Series are
    kept per department as well (one department's counts are never mixed with another's):

    * sensor readings: the hourly mean of each (station, metric) series;
    * price reports: the hourly mean price of each (region, commodity, unit) series;
    * complaints: the hourly count of each (region, category) series;
    * market events: the hourly count of each (region, kind) series for ``recall``,
      ``license_violation`` and failed ``inspection`` (``inspection_fail``).

    A level series (hourly means; hours without readings are absent, not zero) flags an
    hour whose mean is more than 3 standard deviations from the mean of all its previous
    hourly means (sample standard deviation; only once it has 24 previous hourly means and
    their standard deviation is positive). A count series runs over every hour from its
    source's first to its last record hour (hours without events count as zero) and flags
    an hour whose count ``k`` has Poisson upper tail ``P(X >= k) < 0.01`` under the mean
    count of all its previous hours (only once it has 24 previous hours; the mean is
    floored at 0.5 / hours of history so an empty history gives a finite tail), with
    ``k >= 2`` for complaints and ``k >= 1`` for market kinds. A flag's time is the end of
    its hour bucket but not beyond the series' last record in that bucket, i.e. the event
    time of that last record.

    Flags are then taken per region in time order (ties by signal). While no warning is
    open, a flag that has a flag of another department at most 6 h before it (inclusive)
    opens a warning: its evidence is the latest flag of each department within those 6 h,
    ``first_seen`` the earliest of them and ``last_seen`` the opening flag's time. The
    warning stays open, absorbing every later flag of the region, until 12 h pass without a
    flag in the region; only then can the region get a new warning.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from detectors.base import P_FLOOR, normal_sf, poisson_sf
from detectors.fusion.versions import QUIET_S
from detectors.signals.catalogue import Catalogue
from streams.core.regions import RegionRegistry
from streams.core.schemas import (
    Anomaly,
    Complaint,
    Evidence,
    MarketEvent,
    SensorReading,
    Source,
    Warning,
)
from streams.evaluation.replay_score import ReplayLine
from streams.ingest.ingestor import Ingestor, Origin, Record
from streams.ingest.rejections import Rejection

BASELINES = ("tocsin", "single", "naive")

HOUR_S = 3600.0
SINGLE_EPISODE_GAP_S = 6 * 3600.0
Z_THRESHOLD = 3.0
ALPHA = 0.01
MIN_HISTORY = 24  # previous hourly values a series needs before it can flag
MIN_COMPLAINTS = 2
MIN_MARKET_COUNT = 1
PAIR_WINDOW_S = 6 * 3600.0



def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _score(p: float) -> float:
    return round(-math.log10(max(p, P_FLOOR)), 3)


def _warning(prefix: str, region: str, scenario: str, evidence: list[Evidence],
             first_seen: datetime, last_seen: datetime, explanation: str) -> Warning:
    key = "|".join([region, *(f"{e.signal}@{e.event_time.isoformat()}" for e in evidence)])
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    best = min((e.p_value for e in evidence), default=1.0)
    return Warning(
        warning_id=f"{prefix}-{region}-{digest}", version=1, status="new", region=region,
        scenario=scenario, severity="Minor", urgency="Immediate", certainty="Possible",
        score=_score(best), departments=sorted({e.department for e in evidence}),
        first_seen=first_seen, last_seen=last_seen, evidence=evidence, explanation=explanation,
    )


# -- single: any anomaly ----------------------------------------------------------------------
def single_warnings(anomalies: Iterable[Anomaly],
                    gap_s: float = SINGLE_EPISODE_GAP_S) -> list[Warning]:
    """One warning per region + signal episode of Tocsin's anomalies (see module doc).
    Weak supporting counts (``DetectParams.alpha_weak``: corroboration for the correlator,
    not anomalies) are left out."""
    from streams.pipeline.detection import DetectParams

    alpha = DetectParams().alpha_count
    ordered = sorted((a for a in anomalies if a.p_value < alpha or a.source == "env"
                      or a.detector != "count_surge"),
                     key=lambda a: (a.event_time, a.anomaly_id))
    last: dict[tuple[str, str], datetime] = {}
    out: list[Warning] = []
    for a in ordered:
        key = (a.region, a.signal)
        prev = last.get(key)
        last[key] = a.event_time
        if prev is not None and (a.event_time - prev).total_seconds() <= gap_s:
            continue
        ev = Evidence.model_validate(a.model_dump())
        out.append(_warning(
            "sb", a.region, "single_anomaly", [ev], a.event_time, a.event_time,
            f"Single anomaly in {a.region}: {a.kind} observed {a.observed:.3g} vs expected "
            f"{a.expected:.3g} (p={a.p_value:.1e}); baseline 'single', no correlation.",
        ))
    return out


# -- naive: ingest ----------------------------------------------------------------------------
@dataclass
class IngestSummary:
    """The valid, de-duplicated records of a replay file, in file order, with counts."""

    records: list[Record] = field(default_factory=list)
    received: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    bad_lines: int = 0
    #: every rejected line, in file order (``eval replay --dead-letters-out``)
    rejected: list[Rejection] = field(default_factory=list)


def ingest_replay(lines: Iterable[ReplayLine], registry: RegionRegistry,
                  dedup_window: int = 50_000, catalogue: Catalogue | None = None
                  ) -> IngestSummary:
    """Validate replay lines with the same ``Ingestor`` the pipeline uses (``catalogue``:
    the signal catalogue in force; None: the packaged one)."""
    ing = Ingestor(registry, dedup_window, catalogue=catalogue)
    out = IngestSummary()
    for ln in lines:
        if ln.source is None:
            out.bad_lines += 1
            out.rejected.append(Rejection.of_bad_line(ln.lineno, ln.error))
            continue
        out.received += 1
        res = ing.ingest(ln.source, ln.raw, Origin(f"replay:{ln.source}", 0, ln.lineno, ln.key))
        if res.duplicate:
            out.duplicates += 1
        elif res.dead is not None:
            out.dead_letters += 1
            out.rejected.append(Rejection.of_dead_letter(res.dead))
        elif res.record is not None:
            out.records.append(res.record)
    return out


# -- naive: flags -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Flag:
    """One hour of one series that the naive rule finds unusual."""

    t: float  # event time (seconds since the epoch)
    region: str
    department: str
    source: Source
    signal: str
    detector: str
    observed: float
    expected: float
    p_value: float
    event_id: str

    def evidence(self) -> Evidence:
        return Evidence(
            source=self.source, department=self.department, region=self.region,
            signal=self.signal, detector=self.detector,
            observed=self.observed, expected=self.expected, score=_score(self.p_value),
            p_value=self.p_value, event_time=_dt(self.t), event_ids=[self.event_id],
        )


@dataclass(slots=True)
class _Hour:
    total: float = 0.0
    n: int = 0
    last_t: float = -math.inf
    last_id: str = ""

    def add(self, x: float, t: float, event_id: str) -> None:
        self.total += x
        self.n += 1
        if (t, event_id) >= (self.last_t, self.last_id):
            self.last_t, self.last_id = t, event_id


# (source, department, region, signal); a price series' signal carries its unit too
_Series = tuple[Source, str, str, str]


def normal_two_sided(z: float) -> float:
    return 2.0 * normal_sf(abs(z))


def naive_flags(records: Iterable[Record]) -> list[Flag]:
    """The naive rule's flags over ``records`` (any order), sorted by (time, signal)."""
    levels: dict[_Series, dict[int, _Hour]] = defaultdict(dict)
    counts: dict[_Series, dict[int, _Hour]] = defaultdict(dict)
    count_source_span: dict[Source, tuple[int, int]] = {}
    for rec in records:
        t = rec.event_time.timestamp()
        b = math.floor(t / HOUR_S)
        src: Source = ("env" if isinstance(rec, SensorReading)
                       else "complaint" if isinstance(rec, Complaint) else "market")
        lo, hi = count_source_span.get(src, (b, b))
        count_source_span[src] = (min(lo, b), max(hi, b))
        series: dict[_Series, dict[int, _Hour]] | None = None
        x = 1.0
        if isinstance(rec, SensorReading):
            series, x = levels, rec.value
            signal = f"env:{rec.metric}:{rec.sensor_id}"
        elif isinstance(rec, Complaint):
            series, signal = counts, f"complaint:{rec.category}:{rec.region}"
        elif isinstance(rec, MarketEvent):
            if rec.kind == "price_report" and rec.price is not None:
                series, x = levels, rec.price
                signal = f"market:price:{rec.commodity}:{rec.region}:{rec.unit}"
            elif rec.kind == "inspection" and rec.passed is False:
                series, signal = counts, f"market:inspection_fail:{rec.region}"
            elif rec.kind in ("recall", "license_violation"):
                series, signal = counts, f"market:{rec.kind}:{rec.region}"
        if series is None:
            continue
        hours = series[(src, rec.department, rec.region, signal)]
        h = hours.get(b)
        if h is None:
            h = hours[b] = _Hour()
        h.add(x, t, rec.message_id)

    flags: list[Flag] = []
    for key, hours in levels.items():
        flags.extend(_level_flags(key, hours))
    for key, hours in counts.items():
        lo, hi = count_source_span[key[0]]
        flags.extend(_count_flags(key, hours, lo, hi))
    flags.sort(key=lambda f: (f.t, f.signal, f.region))
    return flags


def _level_flags(key: _Series, hours: dict[int, _Hour]) -> list[Flag]:
    src, dept, region, signal = key
    out: list[Flag] = []
    mean, m2 = 0.0, 0.0  # Welford over the n previous hourly means
    for n, b in enumerate(sorted(hours)):
        h = hours[b]
        x = h.total / h.n
        if n >= MIN_HISTORY:
            sd = math.sqrt(m2 / (n - 1))
            if sd > 0:
                z = (x - mean) / sd
                if abs(z) > Z_THRESHOLD:
                    out.append(Flag(min(h.last_t, (b + 1) * HOUR_S), region, dept, src, signal,
                                    "hourly_z", x, mean, normal_two_sided(z), h.last_id))
        d = x - mean
        mean += d / (n + 1)
        m2 += d * (x - mean)
    return out


def _count_flags(key: _Series, hours: dict[int, _Hour], lo: int, hi: int) -> list[Flag]:
    src, dept, region, signal = key
    min_count = MIN_COMPLAINTS if src == "complaint" else MIN_MARKET_COUNT
    out: list[Flag] = []
    total = 0  # events in the n previous hours
    for n, b in enumerate(range(lo, hi + 1)):
        h = hours.get(b)
        k = h.n if h is not None else 0
        if h is not None and n >= MIN_HISTORY and k >= min_count:
            mu = max(total / n, 0.5 / n)
            p = poisson_sf(k, mu)
            if p < ALPHA:
                out.append(Flag(min(h.last_t, (b + 1) * HOUR_S), region, dept, src, signal,
                                "poisson_tail", float(k), mu, p, h.last_id))
        total += k
    return out


# -- naive: warnings --------------------------------------------------------------------------
def naive_warnings_from_flags(flags: Sequence[Flag], window_s: float = PAIR_WINDOW_S,
                              quiet_s: float = QUIET_S) -> list[Warning]:
    """Two departments within ``window_s`` in one region open a warning (see module doc)."""
    by_region: dict[str, list[Flag]] = defaultdict(list)
    for f in sorted(flags, key=lambda f: (f.t, f.signal)):
        by_region[f.region].append(f)
    out: list[Warning] = []
    for region in sorted(by_region):
        rflags = by_region[region]
        open_last: float | None = None  # time of the last flag of the open warning
        lo = 0  # first flag within window_s before the current one
        for i, f in enumerate(rflags):
            while f.t - rflags[lo].t > window_s:
                lo += 1
            if open_last is not None:
                if f.t - open_last < quiet_s:
                    open_last = f.t
                    continue
                open_last = None
            latest: dict[str, Flag] = {}
            for g in rflags[lo : i + 1]:
                latest[g.department] = g
            if len(latest) < 2:
                continue
            chosen = sorted(latest.values(), key=lambda g: (g.t, g.signal))
            evidence = [g.evidence() for g in chosen]
            out.append(_warning(
                "nv", region, "naive_two_departments", evidence, _dt(chosen[0].t), _dt(f.t),
                f"Naive rule in {region}: flags of {', '.join(sorted(latest))} within "
                f"{window_s / 3600:g} h ("
                + "; ".join(f"{g.signal} {g.detector} p={g.p_value:.1e}" for g in chosen)
                + ").",
            ))
            open_last = f.t
    out.sort(key=lambda w: (w.first_seen, w.region))
    return out


def naive_warnings(records: Iterable[Record]) -> list[Warning]:
    """The ``naive`` baseline's warnings over valid records (see module doc)."""
    return naive_warnings_from_flags(naive_flags(records))
