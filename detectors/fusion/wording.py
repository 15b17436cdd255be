"""How a warning reads to a duty officer: numbers without scientific notation, times to the
minute in the duty officer's zone, each signal with its unit, its usual level and how far
off it is in plain words, counts with their window, a neighbour's evidence named as such.

Pure functions of their arguments (no wall clock, no dict order): a warning version's text
depends only on the incident and the event times, so an early and an on-time firing of the
same version read the same (:mod:`detectors.fusion.ledger`). The statistics themselves
(p-values, scores) stay in the warning's evidence (``tocsin explain --detail``).

>>> from datetime import timedelta, timezone
>>> w = Wording({"water_cod": MetricWords("COD", "mg/L", "water")},
...             zone=timezone(timedelta(hours=8)))
>>> w.when(1772604000.123456)
'2026-03-04 14:00 +08:00'
>>> number(3.2e-7), number(1234567.0), number(27.0687), number(0.00417)
('nearly 0', '1234567', '27.1', '0.00417')
>>> usual_range(0.507)
'0-1'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from scipy.special import gammaincc, ndtri

from detectors.base import Finding

#: the CAP certainty of a version -> the word its headline starts with (one definition)
CERTAINTY_WORDS = {"Observed": "Confirmed", "Likely": "Likely", "Possible": "Possible",
                   "Unlikely": "Unlikely", "Unknown": "Possible"}
#: what a source's unusual signals are, in the audit rule's words
SOURCE_WORDS = {"env": "sensors", "complaint": "complaints", "market": "market reports"}
#: count kinds (after ``complaint:`` / ``market:``) whose name is not "<kind> complaints"
COUNT_WORDS = {"recall": ("recall", "recalls"),
               "license_violation": ("licence violation", "licence violations"),
               "inspection_fail": ("failed inspection", "failed inspections")}
#: signal lines shown in an explanation (the rest: ``tocsin explain --detail``)
MAX_SIGNALS = 5
#: the line that carries a version's recommended action
ACTION = "Recommended:"
_DT_MIN = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_DT_MAX = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class MetricWords:
    """How a sensor metric is named: its label (``COD``), canonical unit and category."""

    label: str
    unit: str = ""
    category: str = ""


@dataclass(frozen=True)
class Wording:
    """The names and units of the sensor metrics and the duty officer's time zone; the
    worker makes one from the signal catalogue and ``TOCSIN_TIMEZONE``."""

    metrics: Mapping[str, MetricWords] = field(default_factory=dict)
    zone: tzinfo = UTC

    @classmethod
    def of(cls, words: Mapping[str, tuple[str, str, str]], zone: tzinfo = UTC) -> Wording:
        """From the signal catalogue's ``words()`` (metric -> label, unit, category)."""
        return cls({m: MetricWords(*w) for m, w in sorted(words.items())}, zone)

    def when(self, t: float) -> str:
        """Event time ``t`` to the minute, in the zone, the zone named."""
        if not (math.isfinite(t) and _DT_MIN <= t <= _DT_MAX):
            return "an unknown time"
        d = datetime.fromtimestamp(math.floor(t / 60.0) * 60.0, self.zone)
        return f"{d:%Y-%m-%d %H:%M} {zone_label(d)}"

    def metric(self, name: str) -> MetricWords:
        return self.metrics.get(name) or MetricWords(name.replace("_", " "))

    def signal(self, g: Finding) -> str:
        """One signal of the evidence as a line: what, where, how much, against what."""
        text = self._what(g)
        return f"in neighbouring region {g.via}: {text}" if g.via else text

    def _what(self, g: Finding) -> str:
        parts = g.kind.split(":")
        if g.window_s > 0 or g.detector in ("count_surge", "rate_surge"):
            return count_line(parts, g.observed, g.expected, g.window_s)
        if parts[0] == "market" and len(parts) >= 3 and parts[1] == "price":
            return price_line(parts[2], g.observed, g.expected)
        if parts[0] == "env" and len(parts) >= 2:
            m = self.metric(parts[1])
            station = g.signal[len(g.kind) + 1:] if g.signal.startswith(g.kind + ":") else ""
            at = f" at {m.category + ' ' if m.category else ''}station {station}" if station \
                else ""
            unit = f" {m.unit}" if m.unit else ""
            return (f"{m.label}{at}: {number(g.observed)}{unit} "
                    f"{against(g.observed, g.expected, g.p_value, g.detector)}")
        return f"{g.kind}: {number(g.observed)} {against(g.observed, g.expected, g.p_value)}"


def zone_label(d: datetime) -> str:
    """The zone of ``d`` as a reader knows it: its abbreviation (``CST``, ``UTC``) when
    it has one, else its offset (``+08:00``)."""
    name = d.tzname() or ""
    if name.isalpha():
        return name
    off = d.utcoffset()
    mins = 0 if off is None else round(off.total_seconds() / 60.0)
    sign = "-" if mins < 0 else "+"
    return f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


def number(x: float) -> str:
    """``x`` for a reader: about three significant digits, never scientific notation
    (below 0.0001: "nearly 0")."""
    if not math.isfinite(x):
        return "n/a"
    a = abs(x)
    if a >= 100 or (x == round(x) and a < 1e15):
        return f"{x:.0f}"
    if a < 1e-4:
        return "nearly 0"
    digits = max(1, 2 - math.floor(math.log10(a)))
    text = f"{x:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def spreads(p: float) -> float:
    """How many normal spreads (standard deviations) away a reading as rare as tail
    probability ``p`` lies: the normal-equivalent of ``p``."""
    return float(-ndtri(min(max(p, 1e-300), 0.5)))


def against(observed: float, expected: float, p: float, detector: str = "") -> str:
    """``against a usual 17.3 (about 8x the normal spread)``."""
    if not math.isfinite(expected):
        return "(no usual level learned yet)"
    z = spreads(p)
    how = f"about {z:.0f}x" if z >= 2 else "within 2x"
    way = "rise" if observed >= expected else "fall"
    what = (f"a sustained {way} of {how} the normal spread" if detector == "sustained_shift"
            else f"{how} the normal spread")
    return f"against a usual {number(expected)} ({what})"


def hours(seconds: float) -> str:
    """A window for a reader: ``3 h``, ``30 min``, ``2 days``."""
    if not math.isfinite(seconds) or seconds <= 0:
        return "recently"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"{number(seconds / 3600)} h"
    return f"{number(seconds / 86400)} days"


def usual_range(mu: float) -> str:
    """The range a Poisson count of mean ``mu`` is in four times out of five (its 10% and
    90% points): ``0-1``, ``3`` (always three), ``none``."""
    if not math.isfinite(mu) or mu <= 0:
        return "none"
    lo, hi = _quantile(mu, 0.1), _quantile(mu, 0.9)
    if hi == 0:
        return "none"
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def _quantile(mu: float, q: float) -> int:
    """The smallest k with P(X <= k) >= q for X ~ Poisson(mu) (above a mean of 1000, its
    normal approximation)."""
    if mu > 1000.0:
        return max(0, round(mu + float(ndtri(q)) * math.sqrt(mu)))
    k = max(0, math.floor(mu - 6.0 * math.sqrt(mu)))
    while float(gammaincc(k + 1, mu)) < q and k < 2000:
        k += 1
    return k


def count_line(parts: list[str], observed: float, expected: float, window_s: float) -> str:
    """``17 odor complaints in 3 h; usually 0-1``."""
    n = round(observed) if math.isfinite(observed) else 0
    what = parts[1] if len(parts) > 1 else parts[0]
    one, many = COUNT_WORDS.get(what, (f"{what.replace('_', ' ')} "
                                       f"{'complaint' if parts[0] == 'complaint' else 'report'}",
                                       ""))
    many = many or one + "s"
    usual = usual_range(expected)
    within = f"in {hours(window_s)}" if window_s > 0 else "recently"  # (window unknown)
    return f"{n} {one if n == 1 else many} {within}; usually {usual}"


def price_line(commodity: str, observed: float, expected: float) -> str:
    """``price of pork up 38% against the usual 26.0 (now 35.9)``."""
    name = commodity.replace("_", " ")
    if not (math.isfinite(expected) and expected > 0 and math.isfinite(observed)):
        return f"price of {name} at {number(observed)} (no usual price learned yet)"
    change = (observed / expected - 1.0) * 100.0
    way = "up" if change >= 0 else "down"
    return (f"price of {name} {way} {abs(change):.0f}% against the usual "
            f"{number(expected)} (now {number(observed)})")


def departments(names: list[str] | tuple[str, ...]) -> str:
    """``ecology bureau and citizen hotline`` (sorted, underscores as spaces)."""
    words = [d.replace("_", " ") for d in sorted(names)]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def without_action(text: str) -> str:
    """``text`` without its recommended-action line (a withdrawn or closed warning)."""
    return "\n".join(line for line in text.split("\n") if not line.startswith(ACTION))


def audit_rule(n_departments: int, sources: list[str], region: str, window_s: float,
               neighbours: bool) -> str:
    """The fusion rule as it applied to one warning, in plain words: "warned because 2
    departments (complaints and sensors) reported unusual signals in harbour within 6 h
    ..."."""
    what = departments(sorted({SOURCE_WORDS.get(s, s) for s in sources}))
    near = " or next to it (a neighbour's signal counts weaker)" if neighbours else ""
    return (f"warned because {n_departments} departments ({what}) reported unusual "
            f"signals in {region}{near} within {hours(window_s)} of each other, more "
            "together than chance explains")


PLAIN = Wording()

__all__ = ["ACTION", "CERTAINTY_WORDS", "MAX_SIGNALS", "PLAIN", "MetricWords", "Wording",
           "against", "audit_rule", "count_line", "departments", "hours", "number",
           "price_line", "usual_range", "without_action", "zone_label"]
