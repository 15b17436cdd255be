"""Limit pre-warnings on the wire: per sensor series whose metric has a regulatory limit, a
:class:`~detectors.signals.forecast.LimitForecast` learns each reading in event time and a
:class:`~detectors.signals.prewarning.PreWarning` turns its forecasts into versions, each
published as a :class:`~streams.core.schemas.Warning` of scenario ``limit_forecast``: one
department (the sensor's), urgency ``Expected``, certainty from the forecast's probability
of being past the limit at the horizon, the limit and its legal source, the projected
crossing and the lead time in its explanation and audit. They go straight to the
publisher, never to the correlator (they are not incidents). Held by the detect stage's
:class:`~streams.pipeline.detection.Detection` and checkpointed with it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from detectors.base import warning_id
from detectors.fusion.wording import Wording, number
from detectors.signals.forecast import LimitForecast
from detectors.signals.limits import Limit, catalogue_limits
from detectors.signals.prewarning import DETECTOR, SCENARIO, PreVersion, PreWarning
from streams.core.schemas import Audit, Evidence, SensorReading, Warning

if TYPE_CHECKING:
    from detectors.signals.catalogue import Catalogue
    from streams.pipeline.detection import Detection

#: the forecast's horizon (a pre-warning's lead is at most this)
HORIZON_S = 3 * 3600.0
#: the version of the pre-warning logic named in a warning's audit
VERSION = "1"


def default_limits() -> dict[str, Limit]:
    """The metric-wide limits of the packaged signal catalogue (the source stage uses the
    catalogue in force, ``TOCSIN_SIGNALS``)."""
    from streams.core.signals import packaged

    return catalogue_limits(packaged())


@dataclass(slots=True)
class _Series:
    forecast: LimitForecast
    life: PreWarning
    first_id: str = ""  # the reading that opened the current pre-warning


@dataclass
class PreWarnings:
    """The pre-warning series of one detection partition; :meth:`take` drains the warning
    versions made since the last call (never checkpointed: drained after every record)."""

    series: dict[tuple[str, str], _Series] = field(default_factory=dict)
    pending: list[Warning] = field(default_factory=list)

    def __getstate__(self) -> dict[str, Any]:
        return {"series": self.series}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.series = state["series"]
        self.pending = []

    def observe(self, r: SensorReading, t: float, limit: Limit, zone: tzinfo = UTC) -> None:
        """Learn reading ``r`` (event time ``t``) against ``limit``; queue any version
        (its explanation's times in ``zone``)."""
        key = (r.sensor_id, r.metric)
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = _Series(
                LimitForecast.from_limit(limit, horizon_s=HORIZON_S), PreWarning())
        s.forecast.learn_one(r.value, t)
        f = s.forecast.forecast(t)
        past = r.value > limit.limit if limit.direction == "above" else r.value < limit.limit
        v = s.life.step(f, past)
        if v is None:
            return
        if v.status == "new":
            s.first_id = r.reading_id
        self.pending.append(to_warning(v, r, limit, s.first_id, zone))

    def take(self) -> list[Warning]:
        out, self.pending = self.pending, []
        return out


class PreWarningViews:
    """The source stage's pre-warnings (mixed into
    :class:`~streams.pipeline.stages.SourceStage`, whose ``_detection`` it reads)."""

    _detection: dict[int, Detection]
    catalogue: Catalogue

    @property
    def limits(self) -> dict[str, Limit]:
        """The metric-wide limits of the signal catalogue in force (what the pre-warnings
        forecast against; region and station overrides are not applied yet)."""
        return catalogue_limits(self.catalogue)

    def take_prewarnings(self) -> list[Warning]:
        """The pre-warning versions made since the last call, every partition's."""
        out: list[Warning] = []
        for d in list(self._detection.values()):
            out.extend(d.prewarnings.take())
        return out


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def prewarning_id(region: str, sensor_id: str, metric: str, opened: float) -> str:
    """The stable id of the pre-warning of ``sensor_id``'s ``metric`` opened at ``opened``."""
    digest = hashlib.sha1(f"{SCENARIO}|{sensor_id}|{metric}|{opened:.0f}".encode())
    return warning_id(region, digest.hexdigest()[:16])


def explain(v: PreVersion, r: SensorReading, limit: Limit, zone: tzinfo = UTC) -> str:
    """One paragraph: station, reading, limit and source, crossing and lead time (times
    to the minute in ``zone``)."""
    f = v.forecast
    _when = Wording(zone=zone).when
    head = (f"Station {r.sensor_id} ({r.metric}) read {number(r.value)} {limit.unit} at "
            f"{_when(r.observed_at.timestamp())}; limit {number(limit.limit)} {limit.unit} "
            f"({limit.direction}; {limit.source}).")
    if v.status == "cancelled":
        return f"{head} Forecast withdrawn: the series is no longer projected to cross."
    if v.status == "resolved":
        return f"{head} Back on the safe side after crossing at {_when(v.crossed_at or 0)}."
    if v.crossed_at is not None:
        lead = (v.crossed_at - v.opened) / 60.0
        return (f"{head} Limit crossed at {_when(v.crossed_at)}, {lead:.0f} min after this "
                "pre-warning opened.")
    assert f.crossing_at is not None and f.crossing_in_s is not None
    return (f"{head} Forecast to cross at {_when(f.crossing_at)} (lead "
            f"{f.crossing_in_s / 60.0:.0f} min); probability past the limit in "
            f"{HORIZON_S / 3600.0:g} h: {f.p_exceed:.2f}.")


def to_warning(v: PreVersion, r: SensorReading, limit: Limit, first_id: str,
               zone: tzinfo = UTC) -> Warning:
    """The wire record of pre-warning version ``v`` made at reading ``r``."""
    f = v.forecast
    t = r.observed_at.timestamp()
    p_value = min(1.0, max(1e-12, 1.0 - f.p_exceed))  # the value stays on the safe side
    score = round(-math.log10(p_value), 3)
    params = {"limit": limit.limit, "horizon_s": HORIZON_S, "p_exceed": round(f.p_exceed, 4)}
    if f.crossing_at is not None and f.crossing_in_s is not None:
        params.update(crossing_at=f.crossing_at, lead_s=round(f.crossing_in_s, 1))
    if v.crossed_at is not None:
        params["crossed_at"] = v.crossed_at
    ids = [first_id] if first_id == r.reading_id or not first_id else [first_id, r.reading_id]
    expected = f.expected if math.isfinite(f.expected) else r.value
    return Warning(
        warning_id=prewarning_id(r.region, r.sensor_id, r.metric, v.opened),
        version=v.version, status=v.status, region=r.region, scenario=SCENARIO,
        severity="Moderate", urgency="Expected", certainty=v.certainty, score=score,
        departments=[r.department], first_seen=_dt(v.opened), last_seen=_dt(t),
        evidence=[Evidence(
            source="env", department=r.department, region=r.region,
            signal=f"env:{r.metric}:{r.sensor_id}", detector=DETECTOR, observed=r.value,
            expected=round(expected, 6), score=score, p_value=p_value,
            event_time=_dt(t), event_ids=[r.reading_id])],
        explanation=explain(v, r, limit, zone), sent_at=datetime.now(UTC),
        audit=Audit(
            template=SCENARIO,
            rule=(f"damped Holt forecast {HORIZON_S / 3600.0:g} h ahead crosses the "
                  f"{r.metric} limit {limit.limit:g} {limit.unit} ({limit.source}) before "
                  "any reading does"),
            detectors={DETECTOR: VERSION}, parameters=params, event_ids=ids),
    )


__all__ = ["HORIZON_S", "PreWarningViews", "PreWarnings", "catalogue_limits", "default_limits",
           "explain", "prewarning_id", "to_warning"]
