"""Records on the wire: ids, time formats, arrival order, late records, verbatim
re-deliveries and deliberately malformed lines (the replay format: one JSON object per line
with ``source``)."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from streams.evaluation.world.catalog import UTC_OFFSET_H

TIME_FIELD = {"env": "observed_at", "complaint": "received_at", "market": "occurred_at"}
ID_FIELD = {"env": "reading_id", "complaint": "complaint_id", "market": "event_id"}
_LOCAL = timezone(timedelta(hours=UTC_OFFSET_H))
MALFORMED_KINDS = ("bad_json", "missing_id", "unknown_region", "naive_time", "bad_enum",
                   "bad_value", "unit_typo", "bad_credit_code")


def format_time(t: float, style: int) -> str:
    """0: ``...Z``; 1: ``...Z`` with milliseconds; 2: local time with ``+08:00``."""
    if style == 2:
        return datetime.fromtimestamp(round(t), _LOCAL).isoformat()
    dt = datetime.fromtimestamp(round(t, 3) if style == 1 else round(t), UTC)
    if style == 1:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Wire:
    """Collects one world's lines; ``lines()`` gives them in arrival order."""

    rng: random.Random
    prefix: dict[str, str]
    late_rate: float = 0.03
    duplicate_rate: float = 0.002
    malformed_rate: float = 0.001
    _events: list[tuple[float, int, str]] = field(default_factory=list)
    _n: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    malformed: list[str] = field(default_factory=list)  # the malformed lines' kinds

    def emit(self, source: str, t: float, payload: dict[str, Any], *, style: int = 0,
             arrival: float | None = None) -> None:
        """``payload`` without id and time: both are set here (event time ``t``)."""
        rng = self.rng
        self._n[source] += 1
        rec = {"source": source, ID_FIELD[source]: f"{self.prefix[source]}{self._n[source]:07d}",
               **payload, TIME_FIELD[source]: format_time(t, style)}
        arr = (t + rng.uniform(0.0, 60.0)) if arrival is None else arrival
        if arrival is not None and arr - t > 300:
            self.counts["late"] += 1
        elif rng.random() < self.late_rate:
            arr += rng.uniform(300.0, 10800.0)
            self.counts["late"] += 1
        self.counts[source] += 1
        if rng.random() < self.malformed_rate:
            kind, line = corrupt(rng, source, rec)
            self.malformed.append(kind)
            self._push(arr, line)
            return
        line = json.dumps(rec, ensure_ascii=False)
        self._push(arr, line)
        if rng.random() < self.duplicate_rate:
            self.counts["duplicates"] += 1
            self._push(arr + rng.uniform(1.0, 900.0), line)

    def _push(self, arrival: float, line: str) -> None:
        self._events.append((arrival, len(self._events), line))

    def lines(self) -> list[str]:
        return [line for _, _, line in sorted(self._events)]

    def __len__(self) -> int:
        return len(self._events)


def corrupt(rng: random.Random, source: str, rec: dict[str, Any]) -> tuple[str, str]:
    """One way a producer gets a record wrong; the ingest must refuse every one of them."""
    kind = rng.choice(MALFORMED_KINDS)
    rec = dict(rec)
    if kind == "bad_json":
        line = json.dumps(rec, ensure_ascii=False)
        return kind, line[: max(5, len(line) // 2)]
    if kind == "missing_id":
        del rec[ID_FIELD[source]]
    elif kind == "unknown_region":
        rec["region"] = "zz-nowhere"
    elif kind == "naive_time":
        rec[TIME_FIELD[source]] = rec[TIME_FIELD[source]].replace("Z", "")[:19]
    elif kind == "bad_enum":
        field_, value = {"env": ("metric", "PM2.5"), "complaint": ("channel", "fax"),
                         "market": ("kind", "price_check")}[source]
        rec[field_] = value
    elif kind == "bad_value" and source == "env":
        rec["value"] = "n/a"
    elif kind == "bad_value" and source == "market":
        rec["price"], rec["commodity"], rec["unit"] = -1.0, "pork", "CNY/kg"
    elif kind == "unit_typo" and source == "env":
        rec["unit"] = "ug/m^3"
    elif kind == "unit_typo" and source == "market":
        rec.update(kind="price_report", commodity="pork", price=20.0, unit="CNY/kilo")
    elif kind == "bad_credit_code" and source == "market":
        rec["entity_id"] = "91310000MA1FL0000A"
    else:  # no such field on this source: an empty department
        kind, rec["department"] = "empty_department", ""
    return kind, json.dumps(rec, ensure_ascii=False)
