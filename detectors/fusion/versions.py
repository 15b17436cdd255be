"""What the correlator publishes: an incident's versions (:class:`IncidentVersion`, a
``Warning`` on the wire), their severity, urgency and certainty, and the explanation a
duty officer reads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detectors.base import CLOSED_STATUSES, P_FLOOR, Finding, fisher_combine
from detectors.fusion.history import Entry
from detectors.fusion.templates import Template
from detectors.fusion.wording import (
    ACTION,
    CERTAINTY_WORDS,
    MAX_SIGNALS,
    PLAIN,
    Wording,
    departments,
    hours,
)

if TYPE_CHECKING:
    from detectors.fusion.correlation import _Incident

#: how long an incident with no new evidence stays open (TOCSIN_QUIET_RESOLVE_S defaults to it)
QUIET_S = 12 * 3600.0


@dataclass(frozen=True, slots=True)
class IncidentVersion:
    """One published version of an incident (becomes a ``Warning`` on the wire)."""

    warning_id: str
    version: int
    status: str  # new | update | resolved
    region: str
    scenario: str
    severity: str
    urgency: str
    certainty: str
    score: float
    p_value: float
    departments: tuple[str, ...]
    first_seen: float
    last_seen: float
    evidence: tuple[Finding, ...]
    explanation: str
    history: tuple[Entry, ...] = ()
    combination: str = ""  # the signal kinds that opened it (the feedback bar's key)
    bar_note: str | None = None  # the feedback adaptation in force when it opened


def render(inc: _Incident, status: str, tpl: Template, history: tuple[Entry, ...],
           wording: Wording = PLAIN, quiet_s: float = QUIET_S) -> IncidentVersion:
    """Version ``inc.version`` of incident ``inc`` (of scenario template ``tpl``, with
    the operators' ``history``) in ``status``, its explanation in ``wording``
    (``quiet_s``: the correlator's quiet time, named when it resolves); records its
    severity and score in ``inc`` (the trend the next version's urgency compares with)."""
    ev = tuple(sorted(inc.evidence.values(), key=lambda g: (g.t, g.signal)))
    depts = tuple(sorted({g.department for g in ev}))
    p = fisher_combine([g.p_value for g in ev])
    score = -math.log10(max(p, P_FLOOR))
    nd = len(depts)
    severity = tpl.severity_for(score, nd)
    inc.severity = severity
    certainty = tpl.certainty_for(score, nd)
    # urgency from the trend: a new incident or growing evidence needs action now; an
    # update that adds no strength (a decision, a weaker signal) can be planned for
    if status in CLOSED_STATUSES:
        urgency = "Past"
    elif status == "new" or score >= inc.last_score + 1.0:
        urgency = "Immediate"
    else:
        urgency = "Expected"
    inc.last_score = max(inc.last_score, score)
    text = explain(inc.region, tpl, ev, status, certainty, history=history, wording=wording,
                   resolved_at=inc.last_seen + quiet_s, quiet_s=quiet_s, since=inc.first_seen)
    return IncidentVersion(
        warning_id=inc.warning_id, version=inc.version, status=status, region=inc.region,
        scenario=inc.scenario, severity=severity, urgency=urgency, certainty=certainty,
        score=round(score, 3), p_value=p, departments=depts,
        first_seen=inc.first_seen, last_seen=inc.last_seen, evidence=ev,
        explanation=text, history=history, combination=inc.combination,
        bar_note=inc.bar_note,
    )


def explain(region: str, tpl: Template, ev: tuple[Finding, ...], status: str,
            certainty: str = "Possible", *, history: tuple[Entry, ...] = (),
            wording: Wording = PLAIN, resolved_at: float = math.nan,
            quiet_s: float = QUIET_S, since: float | None = None) -> str:
    """What a duty officer reads: a headline (certainty, scenario, region, departments,
    since when), up to :data:`MAX_SIGNALS` signal lines (the strongest first), then the
    recommended action (an open version) or how it ended (a closed one: ``resolved_at``,
    the event time a quiet incident resolves at, unless a decision in ``history`` closed
    it; ``since``: when the incident began, default its earliest evidence)."""
    depts = sorted({g.department for g in ev})
    if since is None and ev:
        since = min(g.t for g in ev)
    began = "an unknown time" if since is None else wording.when(since)
    word = CERTAINTY_WORDS.get(certainty, "Possible")
    lines = [f"{word} {tpl.title.lower()} in {region}: {len(depts)} "
             f"department{'s' if len(depts) != 1 else ''} ({departments(depts)}) report "
             f"unusual signals since {began}."]
    strongest = sorted(ev, key=lambda g: (g.p_value, g.t, g.signal))
    lines += [f"- {wording.signal(g)}" for g in strongest[:MAX_SIGNALS]]
    if len(strongest) > MAX_SIGNALS:
        lines.append(f"- and {len(strongest) - MAX_SIGNALS} more (tocsin explain --detail)")
    if status not in CLOSED_STATUSES:
        if tpl.instruction:
            lines.append(f"{ACTION} {tpl.instruction}")
    else:
        lines.append(closing(status, history, wording, resolved_at, quiet_s))
    return "\n".join(lines)


def closing(status: str, history: tuple[Entry, ...], wording: Wording, resolved_at: float,
            quiet_s: float) -> str:
    """The last line of a closed version: who or what closed it, and when."""
    last = next((e.decision for e in reversed(history) if e.accepted), None)
    if last is not None and last.action in ("dismiss", "resolve") and last.by != "tocsin":
        why = f" ({last.reason})" if last.reason else ""
        if status == "cancelled":
            return (f"Cancelled at {wording.when(last.at)}: dismissed as a false alarm by "
                    f"{last.by}{why}.")
        return f"Resolved at {wording.when(last.at)} by {last.by}{why}."
    if status == "cancelled":
        return "Cancelled: dismissed as a false alarm."
    return (f"Resolved at {wording.when(resolved_at)}: no department has reported anything "
            f"unusual for {hours(quiet_s)}.")


__all__ = ["IncidentVersion", "closing", "explain", "render"]
