"""The detect stage's sensor path: a reading screened for instrument faults, then scored
by the fast view (spikes, abrupt steps) and the slow one (a sustained shift beyond the
station's peers), never as evidence when only the station itself or the whole city shows
it. Mixed into :class:`~streams.pipeline.detection.Detection`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detectors.base import Finding, Score
from detectors.signals.sensor import SensorEnsemble
from detectors.signals.shift import FaultScreen, SustainedShift
from detectors.signals.station_faults import ColocatedSite
from detectors.signals.station_health import StationHealth
from streams.core.schemas import SensorReading
from streams.pipeline.prewarnings import PreWarnings

if TYPE_CHECKING:
    from streams.pipeline.detection import DetectParams


#: peers (stations of one metric) a common-mode reference needs, and how recent they must be
MIN_PEERS = 3
PEER_MAX_AGE_S = 3 * 3600.0
#: below this sustained-shift z a reading cannot be a finding (p > alpha_shift even on the
#: Gaussian tail): the peers' median is not looked up
PEER_NEED_Z = 2.0
#: a peer median at or above this z is a city-wide condition, not a local incident
COMMON_MODE_Z = 3.0


@dataclass(slots=True)
class _SensorState:
    det: SensorEnsemble  # the fast view: spikes and abrupt steps
    shift: SustainedShift  # the slow view: a sustained level shift
    faults: FaultScreen
    run: int = 0
    shift_bucket: int = -1  # the hour bucket of the last sustained-shift finding
    # the stations of this metric in this region (shared): a step or drift one shows alone
    site: ColocatedSite | None = None


class SensorPath:
    """The sensor series of a :class:`~streams.pipeline.detection.Detection` (its
    parameters, series and counters are the detection's attributes)."""

    p: DetectParams
    _sensors: dict[tuple[str, str], _SensorState]
    _peers: dict[str, dict[str, tuple[float, float]]]
    common_mode: dict[str, float]
    signals: dict[tuple[str, str, str], tuple[float, float]]
    sensor_faults: dict[str, int]
    health: StationHealth
    prewarnings: PreWarnings

    if TYPE_CHECKING:
        @staticmethod
        def _finding(
            anomaly_id: str, source: str, department: str, region: str, kind: str,
            signal: str, detector: str, s: Score, t: float, event_ids: tuple[str, ...],
        ) -> Finding: ...

    def _sensor(self, r: SensorReading, t: float) -> list[Finding]:
        x = r.value
        st = self._sensors.get((r.sensor_id, r.metric))
        if st is None:
            st = self._sensors[r.sensor_id, r.metric] = _SensorState(
                SensorEnsemble(learning=self.p.sensor_learning),
                SustainedShift(direction=self.p.directions.get(r.metric, "up")),
                FaultScreen())
        fault = st.faults.kind(x, t)
        st.faults.learn_one(x, t)
        self.health.learn_one(r.sensor_id, r.metric, x, t, fault)
        if fault is not None:  # an instrument fault: for operators, never evidence
            self.sensor_faults[fault] = self.sensor_faults.get(fault, 0) + 1
            return []
        fast = st.det.explain_one(x, t)
        expected, z = st.shift.look(x, t)
        st.det.learn_one(x, t)
        st.shift.learn_one(x, t)
        need = z >= PEER_NEED_Z or fast.p_value < self.p.alpha_level  # does it stand out?
        common = self._common_mode(r.metric, r.sensor_id, t, z, need)
        self.signals[(r.region, "env", f"env:{r.metric}")] = (fast.observed, expected)
        if st.faults.faulty(t):
            return []
        self._prewarn(r, t)
        # a step or a drift this station shows and its co-located twins do not, or a drift
        # slower than any incident: a fault for operators, never evidence
        site: ColocatedSite | None = getattr(st, "site", None)  # (None: pickled before)
        if site is None:
            site = st.site = self._site(r.region, r.metric)
        # (the peers' median only when they are enough to be a reference)
        ref = common if len(self._peers.get(r.metric, ())) > MIN_PEERS else math.nan
        local = (site.observe(r.sensor_id, x - expected, t, ref)
                 if st.shift.warmed_up() and expected == expected else site.kind(r.sensor_id))
        if local is not None:
            self.sensor_faults[local] = self.sensor_faults.get(local, 0) + 1
            return []
        kind = f"env:{r.metric}"
        signal = f"{kind}:{r.sensor_id}"
        out: list[Finding] = []
        # the slow view: the shift beyond what the station's peers show at the same time,
        # reported once an hour for as long as it lasts
        p_local = st.shift.p_of(z - max(0.0, common)) if z >= PEER_NEED_Z else 1.0
        bucket = int(t // 3600.0)
        if p_local < self.p.alpha_shift and bucket != st.shift_bucket:
            st.shift_bucket = bucket
            s = Score(x, expected, p_local)
            out.append(self._finding(f"{signal}/shift@{bucket}", "env", r.department, r.region,
                                     kind, signal, "sustained_shift", s, t, (r.reading_id,)))
        # the fast view: a spike or an abrupt step in the bad direction, not city-wide
        direction = self.p.directions.get(r.metric, "up")
        bad = (direction == "both" or (x > fast.expected) == (direction == "up"))
        if fast.p_value >= self.p.alpha_level or not bad or common >= COMMON_MODE_Z:
            st.run = 0
            return out
        st.run += 1
        if (st.run - 1) % self.p.repeat_every:
            return out
        out.append(self._finding(f"{signal}@{r.reading_id}", "env", r.department, r.region,
                                 kind, signal, "sensor_ensemble", fast, t, (r.reading_id,)))
        return out

    def _prewarn(self, r: SensorReading, t: float) -> None:
        """The limit pre-warning of ``r``'s series, if its metric has a limit (its versions
        go to the publisher, never to the correlator)."""
        if self.p.catalogue is not None:  # a station's or region's override first
            found = self.p.catalogue.limits_for(r.metric, r.region, r.sensor_id)
            limit = found[0] if len(found) == 1 else None  # (two-sided: not forecast)
        else:
            limit = self.p.limits.get(r.metric) if self.p.limits else None
        if limit is not None:
            self.prewarnings.observe(r, t, limit, self.p.zone)

    def _common_mode(self, metric: str, sensor: str, t: float, z: float,
                     need: bool = True) -> float:
        """The median sustained-shift z of the other stations of ``metric`` that reported
        within ``PEER_MAX_AGE_S`` (0 with fewer than ``MIN_PEERS``, or when not ``need``ed);
        records ``z``."""
        peers = self._peers.setdefault(metric, {})
        if not need:
            peers[sensor] = (t, z)
            return 0.0
        zs = sorted(pz for sid, (pt, pz) in peers.items()
                    if sid != sensor and t - pt <= PEER_MAX_AGE_S)
        peers[sensor] = (t, z)
        if len(zs) < MIN_PEERS:
            return 0.0
        n = len(zs)
        med = zs[n // 2] if n % 2 else 0.5 * (zs[n // 2 - 1] + zs[n // 2])
        self.common_mode[metric] = med
        return med

    def _site(self, region: str, metric: str) -> ColocatedSite:
        """The co-located stations of ``metric`` in ``region`` (new if none yet; a scan,
        once per station)."""
        for other in self._sensors.values():
            site: ColocatedSite | None = getattr(other, "site", None)
            if site is not None and site.region == region and site.metric == metric:
                return site
        return ColocatedSite(region, metric)

    def track_sensor(self, sensor_id: str, metric: str, det: SensorEnsemble,
                     shift: SustainedShift, faults: FaultScreen) -> None:
        """Hold ``det``, ``shift`` and ``faults`` as the series of ``sensor_id``'s ``metric``
        (the memory benchmark builds series in steady state without feeding readings)."""
        self._sensors[(sensor_id, metric)] = _SensorState(det, shift, faults)


__all__ = ["COMMON_MODE_Z", "MIN_PEERS", "PEER_MAX_AGE_S", "PEER_NEED_Z", "SensorPath"]
