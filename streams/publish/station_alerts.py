"""Station-fault notices for operators: one Alertmanager alert per sensor series that is
faulty, silent or stuck (``detectors.signals.station_health``), from the worker's bounded
view of the series most in need of attention. The aggregated rule ``TocsinStationsSilent``
watches the same statuses from Prometheus."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

#: the alert name of a station-fault notice
STATION_ALERT = "TocsinStationFault"
#: the statuses that raise one
NOTIFIED = ("faulty", "silent", "stuck")


def station_alerts(rows: list[tuple[str, str, str, float]], *, runbook_url: str,
                   label: Any, now: datetime | None = None) -> dict[tuple[tuple[str, str], ...],
                                                                    dict[str, Any]]:
    """The alerts of ``rows`` ((station, metric, status, missing share), worst first) whose
    status is notified, by label set; ``label`` cleans a label value."""
    starts = (now or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    out = {}
    for station, metric, status, share in rows:
        if status not in NOTIFIED:
            continue
        labels = {"alertname": STATION_ALERT, "station": label(station),
                  "metric": label(metric), "status": status, "severity": "warning",
                  "department": "operations"}
        out[tuple(sorted(labels.items()))] = {
            "labels": labels,
            "annotations": {
                "summary": f"Sensor {station} ({metric}) is {status}",
                "description": f"Sensor {station} reports {metric} {status}; "
                               f"{share:.0%} of its expected readings are missing. Its "
                               "readings give no evidence until it reports soundly again.",
                "runbook_url": f"{runbook_url}#tocsinstationssilent"},
            "startsAt": starts,
        }
    return out


__all__ = ["NOTIFIED", "STATION_ALERT", "station_alerts"]
