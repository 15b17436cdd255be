"""City-wide (common-mode) conditions: a signal kind anomalous in many regions at once.

Haze over the whole city, a holiday price rise or a hotline backlog lifts a signal in every
region together. That is not a local incident: :class:`CityView` sees it (fed with a copy
of every anomaly of the city), local findings of that kind are then set aside, and the
condition itself is reported once, as one city-wide condition with its own id and
versions: a *notice* while one department shows it, a *warning* once kinds of two or more
departments are city-wide at the same time.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Protocol

from detectors.fusion.wording import PLAIN, Wording

HOUR = 3600.0
#: a condition's level: one department shows it, or several
NOTICE, WARNING = "notice", "warning"


class _Anomaly(Protocol):
    """What the city view reads of an anomaly (``correlation.Finding`` has it)."""

    @property
    def kind(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def t(self) -> float: ...


@dataclass(frozen=True, slots=True)
class ConditionVersion:
    """One published version of a city-wide condition."""

    condition_id: str
    version: int
    status: str  # new | update | resolved
    level: str  # notice | warning
    kinds: tuple[str, ...]  # the signal kinds city-wide in it (ever, while open)
    departments: tuple[str, ...]
    regions: tuple[str, ...]  # regions that showed them
    first_seen: float
    last_seen: float
    explanation: str


@dataclass(slots=True)
class _Condition:
    condition_id: str
    first_seen: float
    last_seen: float
    version: int = 0
    kinds: dict[str, str] = field(default_factory=dict)  # kind -> department
    regions: set[str] = field(default_factory=set)
    level: str = NOTICE


class CityView:
    """Which signal kinds are anomalous in many regions at once, and the city-wide
    condition they make. Fed with every anomaly of the city, in event time.

    A kind is city-wide at ``t`` when anomalies of it came from at least ``min_regions``
    distinct regions within the last ``window_s`` (``market_window_s`` for market kinds).
    While any kind is city-wide one condition is open; it publishes ``new`` when the first
    kind becomes city-wide, ``update`` when another kind joins or the level rises from
    notice to warning, and ``resolved`` once no kind has been city-wide for ``quiet_s``.
    Versions collect in :attr:`pending` until :meth:`take` (the correlator holding the view
    decides who publishes them).

    >>> v = CityView(min_regions=3)
    >>> a = lambda r, t, kind="env:pm25", dep="eco": _A(kind, dep, r, t)
    >>> for i, r in enumerate(["a", "b", "c"]):
    ...     v.add(a(r, 100.0 * i))
    >>> v.is_common("env:pm25", 300.0), v.is_common("env:so2", 300.0)
    (True, False)
    >>> [(c.status, c.level, c.regions) for c in v.take()]
    [('new', 'notice', ('a', 'b', 'c'))]
    >>> for i, r in enumerate(["a", "b", "c"]):
    ...     v.add(a(r, 400.0 + i, "complaint:smoke", "hotline"))
    >>> [(c.status, c.level, c.departments) for c in v.take()]
    [('update', 'warning', ('eco', 'hotline'))]
    >>> v.advance(400.0 + 6 * HOUR + 12 * HOUR)
    >>> [c.status for c in v.take()]
    ['resolved']
    """

    def __init__(self, min_regions: int = 4, window_s: float = 6 * HOUR,
                 market_window_s: float = 48 * HOUR, quiet_s: float = 12 * HOUR) -> None:
        self.min_regions = min_regions
        self.window_s = window_s
        # prices are reported a few times a day, some shops only on working days: a
        # city-wide rise shows up across regions over days, not hours
        self.market_window_s = market_window_s
        self.quiet_s = quiet_s
        self._last: dict[str, dict[str, float]] = {}  # kind -> origin region -> last time
        self._dept: dict[str, str] = {}  # kind -> department
        self.suppressed = 0  # local findings set aside as common-mode
        self._open: _Condition | None = None
        self.pending: list[ConditionVersion] = []

    def _window(self, kind: str) -> float:
        return self.market_window_s if kind.startswith("market:") else self.window_s

    def add(self, f: _Anomaly) -> None:
        by_region = self._last.setdefault(f.kind, {})
        by_region[f.origin] = max(by_region.get(f.origin, f.t), f.t)
        self._dept[f.kind] = f.department
        w = self._window(f.kind)
        for r in [r for r, t in by_region.items() if t < f.t - 2 * w]:
            del by_region[r]
        if len(by_region) >= self.min_regions and self.is_common(f.kind, f.t):
            self._join(f.kind, f.t)
        self.advance(f.t)

    def regions(self, kind: str, t: float) -> int:
        """Distinct regions with an anomaly of ``kind`` within its window (``window_s``;
        ``market_window_s`` for market kinds) before ``t``."""
        return len(self.region_set(kind, t))

    def region_set(self, kind: str, t: float) -> set[str]:
        """The regions :meth:`regions` counts."""
        w = self._window(kind)
        return {r for r, last in self._last.get(kind, {}).items() if t - w <= last <= t}

    def is_common(self, kind: str, t: float) -> bool:
        return self.regions(kind, t) >= self.min_regions

    def active(self, t: float) -> dict[str, int]:
        """Every kind city-wide at ``t`` and how many regions show it."""
        return {k: n for k in self._last if (n := self.regions(k, t)) >= self.min_regions}

    # -- the condition ----------------------------------------------------------------
    def _join(self, kind: str, t: float) -> None:
        """``kind`` is city-wide at ``t``: open the condition or extend it."""
        c = self._open
        w = self._window(kind)
        regions = {r for r, last in self._last[kind].items() if t - w <= last <= t}
        if c is None:
            digest = hashlib.sha1(f"city|{kind}|{t:.0f}".encode()).hexdigest()[:16]
            c = self._open = _Condition(f"tc-city-{digest}", t, t)
        c.last_seen = max(c.last_seen, t)
        new_kind = kind not in c.kinds
        c.kinds[kind] = self._dept.get(kind, "")
        c.regions |= regions
        level = WARNING if len(set(c.kinds.values())) >= 2 else NOTICE
        if new_kind or level != c.level:
            c.level = level
            self._publish(c, "new" if c.version == 0 else "update")

    def common_until(self, kind: str) -> float:
        """The event time at which ``kind`` stops being city-wide if no further anomaly
        of it comes (-inf if it never was)."""
        lasts = sorted(self._last.get(kind, {}).values(), reverse=True)
        if len(lasts) < self.min_regions:
            return -math.inf
        return lasts[self.min_regions - 1] + self._window(kind)

    def advance(self, t: float) -> None:
        """Move event time to ``t``: resolve the condition once none of its kinds has
        been city-wide for ``quiet_s``."""
        c = self._open
        if c is None:
            return
        until = max(self.common_until(k) for k in c.kinds)
        if t >= until + self.quiet_s:
            self._publish(c, "resolved")
            self._open = None
        elif t <= until:
            c.last_seen = max(c.last_seen, t)

    def open_condition(self) -> str | None:
        """The id of the open condition, if any."""
        return None if self._open is None else self._open.condition_id

    def take(self) -> list[ConditionVersion]:
        """The versions published since the last call."""
        out, self.pending = self.pending, []
        return out

    def _publish(self, c: _Condition, status: str) -> None:
        c.version += 1
        kinds = tuple(sorted(c.kinds))
        departments = tuple(sorted({d for d in c.kinds.values() if d}))
        self.pending.append(ConditionVersion(
            c.condition_id, c.version, status, c.level, kinds, departments,
            tuple(sorted(c.regions)), c.first_seen, c.last_seen,
            explain_condition(status, c.level, kinds, departments, len(c.regions),
                              c.first_seen)))
        if len(self.pending) > 1_000:  # nobody takes them: keep the newest
            del self.pending[:-1_000]


def explain_condition(status: str, level: str, kinds: tuple[str, ...],
                      departments: tuple[str, ...], n_regions: int, since: float,
                      wording: Wording = PLAIN) -> str:
    """One short paragraph a duty officer can read (times in ``wording``'s zone)."""
    when = wording.when(since)
    what = ", ".join(kinds)
    if status == "resolved":
        return (f"Resolved: the city-wide condition ({what}) has ended; local warnings of "
                "these kinds are raised again.")
    head = ("City-wide warning" if level == WARNING else "City-wide notice")
    return (f"{head}: {what} anomalous in {n_regions} regions at once since {when} "
            f"({', '.join(departments)}). This is a city-wide condition (weather, season, "
            "a city-wide price move or a hotline backlog), not a local incident: local "
            "warnings of these kinds are held back while it lasts. Check the city-wide "
            "cause; look for a region that stands out beyond the others.")


@dataclass(frozen=True, slots=True)
class _A:
    """A bare anomaly (for examples and tests)."""

    kind: str
    department: str
    origin: str
    t: float


__all__ = ["NOTICE", "WARNING", "CityView", "ConditionVersion", "explain_condition"]
