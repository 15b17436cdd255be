"""The correlator's opening rule: which of a region's recent anomalies, if any, are the
evidence that opens an incident (scenario template, strong and weak evidence, the
neighbours' view and the feedback bar). Mixed into
:class:`~detectors.fusion.correlation.Correlator`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from detectors.base import P_FLOOR, Finding, fisher_combine
from detectors.fusion.bar import FeedbackBar, combination
from detectors.fusion.templates import GENERIC, Template, kind_in

#: weak supporting evidence counts from this long before the strong pattern's start
WEAK_LEAD_S = 3600.0


class OpeningRule:
    """The evidence selection of a :class:`~detectors.fusion.correlation.Correlator` (its
    thresholds, templates and feedback bar are the correlator's attributes)."""

    min_departments: int
    templates: tuple[Template, ...]
    generic: Template
    support_p: float
    open_p: float
    weak_p: float
    strong_p: float
    strong_weak_p: float
    neighbour_decay: float
    bar: FeedbackBar

    def department_p(self, findings: Iterable[Finding]) -> dict[str, float]:
        """Each department's evidence: Fisher over the best p-value of each of its signals
        (corroborating signals of one department strengthen it; repeats of one do not)."""
        best: dict[str, dict[str, float]] = {}
        for g in findings:
            sig = best.setdefault(g.department, {})
            sig[g.signal] = min(sig.get(g.signal, 1.0), g.p_value)
        return {d: fisher_combine(list(sig.values())) for d, sig in best.items()}

    def _evidence(self, findings: list[Finding], departments: int, extra: float = 0.0
                  ) -> list[Finding]:
        """The opening rule; returns the evidence that meets it (empty if none does).

        Strong evidence is every finding at ``support_p``; of each signal the latest is
        kept (a stale blip does not pull the start back). At least ``departments``
        departments must each reach ``support_p`` (Fisher over their signals), and Fisher
        over those departments ``open_p``. Three moderate departments thus outrank one
        strong one, and one very strong department cannot carry a chance blip of another.
        When the leading department shows a *pattern* (two or more distinct signals of its
        own), a department without strong evidence may instead contribute its best weak
        finding (at ``weak_p``) from no earlier than ``WEAK_LEAD_S`` before the pattern
        began; weak findings count only from the region itself, never a neighbour's.
        ``extra`` (operators' dismissals) divides every threshold by ``10**extra``.
        The leading department must be the region's own, and the region must see the
        incident at least as strongly as each neighbour whose anomalies it holds."""
        scale = math.pow(10.0, -extra)
        support = self.support_p * scale
        latest: dict[str, Finding] = {}
        for g in findings:
            if g.p_value <= support:
                cur = latest.get(g.signal)
                if cur is None or g.t > cur.t:
                    latest[g.signal] = g
        ev = list(latest.values())
        if not ev:
            return []
        by_dept = self.department_p(ev)
        if len(by_dept) < departments:
            ev = self._with_weak(findings, ev, by_dept, scale)
            by_dept = self.department_p(ev)
            if len(by_dept) < departments:
                return []
        lead = min(by_dept, key=by_dept.__getitem__)
        mine = [g for g in ev if not g.via]
        if self.department_p(mine).get(lead, 1.0) > support:
            return []
        if self._outshone(findings, mine):
            return []
        if fisher_combine(list(by_dept.values())) > self.open_p * scale:
            return []
        return sorted(ev, key=lambda g: (g.t, g.anomaly_id))

    def _with_weak(self, findings: list[Finding], ev: list[Finding],
                   by_dept: dict[str, float], scale: float) -> list[Finding]:
        """``ev`` (the strong evidence, too few departments) with the best weak finding of
        each department without strong evidence, when the leading department shows a
        pattern (:meth:`_pattern`); ``ev`` unchanged without one."""
        pattern = self._pattern(ev, by_dept)
        if pattern is None:
            return ev
        start, several = pattern
        support = self.support_p * scale
        # a pattern of signals takes weak_p; one very strong signal only weak evidence
        # at strong_weak_p (one stuck or spiking instrument is a single signal too)
        weak_p = (self.weak_p if several else self.strong_weak_p) * scale
        weak: dict[str, Finding] = {}
        for g in findings:
            if (support < g.p_value <= weak_p and g.department not in by_dept
                    and g.t >= start - WEAK_LEAD_S and not g.via):
                cur = weak.get(g.department)
                if cur is None or g.p_value < cur.p_value:
                    weak[g.department] = g
        return ev + list(weak.values())

    def _outshone(self, findings: list[Finding], mine: list[Finding]) -> bool:
        """Does a neighbour whose anomalies ``findings`` hold see the incident more
        strongly than the region itself (``mine``; ties to the neighbour named first)?"""
        strength = self._strength(mine)
        undo = math.pow(10.0, self.neighbour_decay)
        here = mine[0].region
        for other in sorted({g.via for g in findings if g.via}):
            theirs = [replace(g, p_value=g.p_value / undo) for g in findings if g.via == other]
            st = self._strength(theirs)
            if st > strength or (st == strength and other < here):
                return True
        return False

    def _pattern(self, ev: list[Finding], by_dept: dict[str, float]
                 ) -> tuple[float, bool] | None:
        """When the leading department shows two or more distinct signals of its own
        (``True``), or one own signal at ``strong_p`` or below (``False``): the time its
        first one began, and which; else None."""
        lead = min(by_dept, key=by_dept.__getitem__)
        own = [g for g in ev if g.department == lead and not g.via]
        if not own:
            return None
        start = min(g.t for g in own)
        if len({g.signal for g in own}) >= 2:
            return start, True
        if min(g.p_value for g in own) <= self.strong_p:
            return start, False
        return None

    def _strength(self, findings: list[Finding]) -> float:
        """-log10 of Fisher over every signal's best p-value: how strongly a region itself
        shows an incident."""
        best: dict[str, float] = {}
        for g in findings:
            best[g.signal] = min(best.get(g.signal, 1.0), g.p_value)
        return -math.log10(max(fisher_combine(list(best.values())), P_FLOOR)) if best else 0.0

    def _select(self, window: list[Finding], f: Finding) -> list[Finding]:
        """The evidence that opens an incident with ``f``: that of the best-fitting
        scenario template meeting the opening rule (an unrelated blip in the same window
        stays out); else a generic cross-department incident meeting it with
        ``generic.min_departments`` departments; else none. The evidence returned is
        exactly what met the rule, and the feedback bar of its own combination applies."""
        best: list[Finding] = []
        best_fit = 0
        for tpl in self.templates:
            for kinds in tpl.opening_groups:
                if not kind_in(f.kind, kinds):
                    continue
                sub = [g for g in window if kind_in(g.kind, kinds)]
                ev = self._barred(sub, max(self.min_departments, tpl.min_departments), f)
                if not ev:
                    continue
                fit = len({g.signal for g in ev}) + 2 * len({g.department for g in ev})
                if fit > best_fit:
                    best, best_fit = ev, fit
        if best or not self.generic.enabled:
            return best
        return self._barred(window, max(self.min_departments, self.generic.min_departments),
                            f)

    def _barred(self, findings: list[Finding], departments: int, f: Finding
                ) -> list[Finding]:
        """:meth:`_evidence` under the feedback bar of the combination it would open."""
        ev = self._evidence(findings, departments)
        if not ev:
            return []
        extra = self.bar.extra_score(f.region, self._combo(ev), f.t)
        return self._evidence(findings, departments, extra) if extra > 0 else ev

    def _combo(self, findings: Iterable[Finding]) -> str:
        """The feedback bar's key: the scenario these findings make and their kinds."""
        kinds = {g.kind for g in findings}
        return combination(kinds, self._scenario(kinds))

    def _scenario(self, kinds: set[str]) -> str:
        """The scenario template ``kinds`` fit best (two sources at least), else generic."""
        best, best_n = GENERIC, 0
        for tpl in self.templates:
            matched = [k for k in kinds if tpl.matches(k)]
            sources = {k.split(":", 1)[0] for k in matched}
            n = len(matched) + 2 * len(sources)
            if len(sources) >= 2 and n > best_n:
                best, best_n = tpl.name, n
        return best


__all__ = ["WEAK_LEAD_S", "OpeningRule"]
