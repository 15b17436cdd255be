"""Station health as metrics (``detectors.signals.station_health``): sensor series per
status, readings missing, and a bounded view of the series most in need of attention."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from detectors.signals.station_health import STATUSES

#: series listed in tocsin_station_attention (the worst; a bounded view, never all)
MAX_ATTENTION = 20


class StationMetrics:
    """The station-health series of one worker's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.series = Gauge(
            "tocsin_sensor_series", "Sensor series (a station's metric) by health status: "
            "ok, silent (no reading for 3 cadences while others report), stuck (the same "
            "value 8 times running), faulty (last reading screened out), learning.",
            ["status"], registry=registry)
        self.expected = Counter(
            "tocsin_sensor_readings_expected", "Sensor readings expected from each "
            "series' learned cadence (received + missing).", registry=registry)
        self.missing = Counter(
            "tocsin_sensor_readings_missing", "Sensor readings that should have come "
            "by a series' learned cadence and did not.", registry=registry)
        self.attention = Gauge(
            "tocsin_station_attention", f"The {MAX_ATTENTION} sensor series most in need "
            "of attention (worst status first, then most missing): the share of their "
            "expected readings missing.",
            ["station", "metric", "status"], registry=registry)
        self._seen = (0, 0)

    def observe(self, summary: dict[str, int], received: int, missing: int,
                attention: list[tuple[str, str, str, float]]) -> None:
        """``summary``: series per status; ``received``/``missing``: cumulative sensor
        readings; ``attention``: (station, metric, status, missing share), worst first."""
        for status in STATUSES:
            self.series.labels(status).set(summary.get(status, 0))
        r0, m0 = self._seen
        if received >= r0 and missing >= m0:
            self.expected.inc((received - r0) + (missing - m0))
            self.missing.inc(missing - m0)
        self._seen = (received, missing)
        self.attention.clear()
        for station, metric, status, share in attention[:MAX_ATTENTION]:
            self.attention.labels(station, metric, status).set(round(share, 4))


__all__ = ["MAX_ATTENTION", "StationMetrics"]
