"""Cross-department correlation: anomalies of one region close in event time become one
incident with a stable id, versioned as evidence arrives and resolved when quiet.

Which anomalies open an incident is the opening rule (:mod:`detectors.fusion.opening`);
what each version publishes and its explanation, :mod:`detectors.fusion.versions`; this
module keeps the incidents (opened, extended, resolved when quiet, decided on)."""

from __future__ import annotations

import copy
import hashlib
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from detectors.base import Finding, warning_id
from detectors.fusion.citywide import CityView
from detectors.fusion.feedback import Decision, FeedbackBar, WarningHistory
from detectors.fusion.opening import WEAK_LEAD_S as WEAK_LEAD_S  # (was defined here)
from detectors.fusion.opening import OpeningRule
from detectors.fusion.templates import (
    DEFAULT_FILE,
    GENERIC,
    Template,
    TemplateSet,
    load_templates,
)
from detectors.fusion.versions import QUIET_S, IncidentVersion, render
from detectors.fusion.versions import explain as explain  # (was defined here)
from detectors.fusion.wording import PLAIN, Wording


@dataclass(slots=True)
class _Incident:
    warning_id: str
    region: str
    version: int
    first_seen: float
    last_seen: float
    evidence: dict[str, Finding] = field(default_factory=dict)  # best finding per signal
    scenario: str = "cross_department"
    severity: str = "Minor"
    combination: str = ""
    bar_note: str | None = None
    last_score: float = 0.0  # combined score of the previous version (the trend)


class Correlator(OpeningRule):
    """Fuses anomalies of different departments, per region, within ``window_s``.

    Findings must come in event-time order (put an ``EventTimeBuffer`` in front when they
    come from several partitions): the outcome then depends only on the findings, not on
    how the partitions interleaved.

    A region whose recent anomalies (within ``window_s`` of each other) fit one scenario
    template and meet the opening rule (:meth:`_evidence`) with at least
    ``min_departments`` departments opens an incident of that scenario; anomalies that fit
    no common template open a generic cross-department incident only with the generic
    template's departments (``generic_departments`` when templates are given as a plain
    list). Later anomalies of
    the region that fit an open incident extend it and, when they add a signal, a
    department or a clearly stronger score, publish an ``update``. An incident with no
    evidence for ``quiet_s`` of event time resolves.

    The published combined p-value is Fisher's method over the best p-value of each
    signal of the evidence.

    >>> c = Correlator(window_s=6 * 3600)
    >>> f = lambda i, src, dep, kind, t: Finding(str(i), src, dep, "r1", kind, kind, "d",
    ...                                           5.0, 1.0, 1e-6, t)
    >>> c.process(f(1, "env", "eco", "env:water_cod", 1000.0))
    []
    >>> [v.status for v in c.process(f(2, "complaint", "hotline", "complaint:odor", 2000.0))]
    ['new']
    """

    def __init__(
        self,
        window_s: float = 6 * 3600.0,
        quiet_s: float = QUIET_S,
        min_departments: int = 2,
        templates: Iterable[Template] | TemplateSet | None = None,
        update_score_step: float = 2.0,
        generic_departments: int = 3,
        support_p: float = 2e-3,
        open_p: float = 1e-6,
        weak_p: float = 0.05,
        strong_p: float = 1e-6,
        strong_weak_p: float = 0.01,
        neighbour_decay: float = 1.0,
        lags: dict[str, float] | None = None,
        feedback: FeedbackBar | None = None,
        city: CityView | None = None,
        wording: Wording = PLAIN,
    ) -> None:
        self.window_s = window_s
        self.quiet_s = quiet_s
        self.min_departments = min_departments
        if templates is None:
            templates = load_templates(DEFAULT_FILE)
        if isinstance(templates, TemplateSet):
            self.templates = templates.scenarios
            self.generic = templates.generic
        else:
            self.templates = tuple(templates)
            self.generic = Template(GENERIC, frozenset(), min_departments=generic_departments)
        self.update_score_step = update_score_step
        self.support_p = support_p
        self.open_p = open_p
        self.weak_p = weak_p
        self.strong_p = strong_p
        self.strong_weak_p = strong_weak_p
        self.neighbour_decay = neighbour_decay
        # how long after other departments' evidence a source's own may come and still
        # join it (complaints of a night incident come the next morning, market reports in
        # office hours); never shorter than window_s
        self.lags = {k: max(v, window_s) for k, v in (lags or {}).items()}
        self._span = max([window_s, *self.lags.values()])
        self.bar = feedback if feedback is not None else FeedbackBar()
        self.city = city if city is not None else CityView()
        self.history = WarningHistory()
        # units, names and the time zone of the explanations (configuration: a snapshot
        # refers to it, the worker supplies its own on restore)
        self.wording = wording
        # closed incidents' (region, combination), so late feedback still adapts the bar
        self._closed: dict[str, tuple[str, str]] = {}
        self._dismissed: dict[str, _Incident] = {}  # to reopen on a corrective confirm
        self._recent: dict[str, deque[Finding]] = {}
        self._open: dict[str, list[_Incident]] = {}
        self._seen_ids: dict[str, None] = {}
        self.watermark = -math.inf

    # -- public ---------------------------------------------------------------------------
    def process(self, f: Finding) -> list[IncidentVersion]:
        """Take one anomaly; return the warning versions it causes (possibly none)."""
        if f.anomaly_id in self._seen_ids:
            return []
        self._seen_ids[f.anomaly_id] = None
        if f.city:  # the city-wide view only
            self.city.add(f)
            return self.advance(f.t)
        if self.city.is_common(f.kind, f.t):
            self.city.suppressed += 1
            return self.advance(f.t)
        if f.via:  # a neighbour's anomaly counts, weaker
            f = replace(f, p_value=min(1.0, f.p_value * 10.0 ** self.neighbour_decay))
        if len(self._seen_ids) > 100_000:
            self._seen_ids.pop(next(iter(self._seen_ids)))
        # input is in event-time order (see detectors.fusion.reorder): event time is f.t
        out = self.advance(f.t)
        # weak evidence (above support_p) can help open an incident, never extend one
        for inc in self._open.get(f.region, []) if f.p_value <= self.support_p else []:
            # an open scenario incident takes any evidence of its kind until it resolves;
            # a generic one only evidence within the window
            near = f.t <= inc.last_seen + self.window_s
            if (near or inc.scenario != "cross_department") and self._fits(inc, f):
                v = self._extend(inc, f)
                if v is not None:
                    out.append(v)
                return out
        buf = self._recent.setdefault(f.region, deque())
        buf.append(f)
        while buf and buf[0].t < f.t - 2 * self._span:
            buf.popleft()
        lag = self.lags.get(f.source, self.window_s)
        window = [g for g in buf if -self.window_s <= f.t - g.t <= lag]
        if len({g.department for g in window}) >= self.min_departments:
            chosen = self._select(window, f)
            if not chosen:
                return out
            opened = self._open_incident(f.region, chosen)
            if opened is None:
                return out
            out.append(opened)
            used = {g.anomaly_id for g in chosen}
            self._recent[f.region] = deque(g for g in buf if g.anomaly_id not in used)
        return out

    def feedback(self, d: Decision, region: str) -> list[IncidentVersion]:
        """Apply an operator's decision at its event time (incidents quiet by then resolve
        first, so a replay and a live run agree). A decision on a warning this correlator
        does not hold (unknown id, another region, not opened yet) is ignored. Otherwise it
        enters the warning's history (a disallowed one marked rejected) and the warning
        publishes a version carrying it: ``cancelled`` on a dismissal, ``resolved`` on
        resolve, else ``update``; confirming a dismissed warning reopens it. Accepted
        dismissals and confirmations move the feedback bar for the region and the signal
        combination that opened the warning, open or already closed."""
        out = self.advance(d.at)
        inc = next((i for i in self._open.get(region, []) if i.warning_id == d.warning_id),
                   None)
        key = (region, inc.combination) if inc is not None else self._closed.get(d.warning_id)
        if key is None or key[0] != region:
            return out
        entry = self.history.record(d)
        if entry is None:  # the same decision again (replay)
            return out
        if entry.accepted:
            self.bar.learn(d, key[0], key[1], d.at)
        if inc is None:
            dismissed = self._dismissed.pop(d.warning_id, None)
            if dismissed is None or not (entry.accepted and d.action == "confirm"):
                if dismissed is not None:
                    self._dismissed[d.warning_id] = dismissed
                return out
            inc = dismissed  # a dismissal corrected: the warning is live again
            self._open.setdefault(region, []).append(inc)
        inc.version += 1
        status = "update"
        if entry.accepted and d.action in ("dismiss", "resolve"):
            status = "cancelled" if d.action == "dismiss" else "resolved"
            self._close(inc)
            if d.action == "dismiss":
                self._dismissed[inc.warning_id] = inc
                if len(self._dismissed) > 1_000:
                    self._dismissed.pop(next(iter(self._dismissed)))
        out.append(self._version(inc, status))
        return out

    def _close(self, inc: _Incident) -> None:
        incs = self._open.get(inc.region, [])
        if inc in incs:
            incs.remove(inc)
            if not incs:
                del self._open[inc.region]
        self._remember(inc)

    def _remember(self, inc: _Incident) -> None:
        self._closed[inc.warning_id] = (inc.region, inc.combination)
        if len(self._closed) > 10_000:
            self._closed.pop(next(iter(self._closed)))

    def template(self, name: str) -> Template:
        """The template called ``name`` (the generic one if there is none)."""
        return next((t for t in self.templates if t.name == name), self.generic)

    def _fits(self, inc: _Incident, f: Finding) -> bool:
        """Does ``f`` belong to incident ``inc`` (same scenario family)?"""
        if inc.scenario == GENERIC:
            return True
        return self.template(inc.scenario).matches(f.kind)

    def advance(self, watermark: float) -> list[IncidentVersion]:
        """Move event time forward; resolve incidents quiet for ``quiet_s``."""
        if watermark <= self.watermark:
            return []
        self.watermark = watermark
        self.city.advance(watermark)
        out = []
        for region, incs in list(self._open.items()):
            keep = []
            for inc in incs:
                if inc.last_seen + self.quiet_s <= watermark:
                    inc.version += 1
                    out.append(self._version(inc, "resolved"))
                    self._remember(inc)
                    if inc.warning_id in self.history:  # let its history expire too
                        self.history.record(Decision(inc.warning_id, "resolve", "tocsin",
                                                     watermark, "quiet"))
                else:
                    keep.append(inc)
            if keep:
                self._open[region] = keep
            else:
                del self._open[region]
        return out

    def seen(self, anomaly_id: str) -> bool:
        """Has this anomaly been taken already?"""
        return anomaly_id in self._seen_ids

    def fork(self, region: str, city: CityView, decisions: bool = False) -> Correlator:
        """A scratch copy for early firing (:mod:`detectors.fusion.early`): ``region``'s
        recent anomalies and open incidents copied, ``city`` as its city-wide view, the
        rest shared and never written (a fork takes anomalies of ``region`` only, and
        with ``decisions`` duty officers' decisions too: then what they write is copied).
        """
        twin = copy.copy(self)
        twin._recent = {region: deque(self._recent.get(region, ()))}
        twin._open = {region: [replace(i, evidence=dict(i.evidence))
                               for i in self._open.get(region, ())]}
        twin._seen_ids = {}
        twin.city = city
        if decisions:
            twin.history, twin.bar = copy.deepcopy(self.history), copy.deepcopy(self.bar)
            twin._closed, twin._dismissed = dict(self._closed), copy.deepcopy(self._dismissed)
        else:
            twin._closed, twin._dismissed = {}, {}
            if any(i.warning_id in self.history for i in self._open.get(region, ())):
                twin.history = copy.deepcopy(self.history)  # quiet resolution records
        return twin

    def open_incidents(self) -> int:
        return sum(len(v) for v in self._open.values())

    # -- internals ------------------------------------------------------------------------
    def _open_incident(self, region: str, chosen: list[Finding]) -> IncidentVersion | None:
        if len({g.department for g in chosen}) < self.min_departments:
            return None  # never a single-department warning, whatever the evidence path
        first = chosen[0]
        digest = hashlib.sha1(f"{region}|{first.anomaly_id}".encode()).hexdigest()[:16]
        inc = _Incident(
            warning_id=warning_id(region, digest), region=region, version=1,
            first_seen=first.t, last_seen=max(g.t for g in chosen),
        )
        for g in chosen:
            self._add(inc, g)
        inc.combination = self._combo(chosen)
        if self.bar.extra_score(region, inc.combination, inc.last_seen) > 0:
            inc.bar_note = self.bar.explain(region, inc.combination, inc.last_seen,
                                            self.wording.when)
        self._open.setdefault(region, []).append(inc)
        return self._version(inc, "new")

    def _add(self, inc: _Incident, f: Finding) -> bool:
        """Add evidence; True if it is a new signal or a clearly stronger one."""
        cur = inc.evidence.get(f.signal)
        inc.first_seen = min(inc.first_seen, f.t)
        inc.last_seen = max(inc.last_seen, f.t)
        if cur is None:
            inc.evidence[f.signal] = f
            return True
        if f.score > cur.score:
            inc.evidence[f.signal] = f
            return f.score >= cur.score + self.update_score_step
        return False

    def _extend(self, inc: _Incident, f: Finding) -> IncidentVersion | None:
        before_depts = {g.department for g in inc.evidence.values()}
        changed = self._add(inc, f)
        if not changed and f.department in before_depts:
            return None
        inc.version += 1
        return self._version(inc, "update")

    def _version(self, inc: _Incident, status: str) -> IncidentVersion:
        inc.scenario = self._scenario({g.kind for g in inc.evidence.values()})
        return render(inc, status, self.template(inc.scenario),
                      self.history.history(inc.warning_id), self.wording, self.quiet_s)


__all__ = ["CityView", "Correlator", "Finding", "IncidentVersion", "Template"]
