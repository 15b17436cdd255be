"""``tocsin explain WARNING_ID``: a warning's versions, evidence and audit trail, read back
from the warnings topic (or a JSONL file of warnings), as a duty officer or auditor needs it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, tzinfo

from pydantic import ValidationError

from detectors.fusion.wording import Wording, hours
from streams.core.errors import TocsinError
from streams.core.schemas import Warning


class UnknownWarning(TocsinError):
    """No version of the asked warning was found."""


def versions_of(warning_id: str, raw: Iterable[bytes], where: str | None = None
                ) -> list[Warning]:
    """Every version of ``warning_id`` in ``raw`` (unparseable records skipped), by version,
    duplicates (the same version delivered twice) dropped; ``where``: the file read, if not
    the warnings topic."""
    found: dict[int, Warning] = {}
    for value in raw:
        try:
            w = Warning.model_validate_json(value)
        except ValidationError:
            continue
        if w.warning_id == warning_id:
            found.setdefault(w.version, w)
    if not found:
        there = (f"in {where}; check the id (it starts with 'tw-<region>-') and that the file "
                 "holds warnings (eval replay --warnings-out writes them)" if where else
                 "; check the id (it starts with 'tw-<region>-') and that TOCSIN_BROKER / "
                 "TOCSIN_TOPIC_PREFIX point at the cluster that issued it")
        raise UnknownWarning(f"no warning {warning_id!r} found {there}".replace(" ;", ";"))
    return [found[v] for v in sorted(found)]


def officer_zone() -> tzinfo:
    """The duty officers' time zone: ``TOCSIN_TIMEZONE``, else the region registry's."""
    from streams.core.regions import RegionRegistry
    from streams.core.settings import load_settings

    s = load_settings()
    return s.zone(RegionRegistry.from_csv(s.region_registry).timezone)


def render(versions: list[Warning], detail: bool = False, zone: tzinfo = UTC) -> str:
    """Plain text: one line per version, the latest's explanation, decisions and the rule
    it warned by (times to the minute in ``zone``); with ``detail`` also the statistics:
    each version's score, the evidence with its p-values, the rule's parameters, the
    detectors' versions and the source events."""
    when = Wording(zone=zone).when
    last = versions[-1]
    lines = [f"warning {last.warning_id}: {last.scenario} in {last.region}, "
             f"{len(versions)} version(s), now {last.status}"]
    for w in versions:
        score = f" score={w.score:g}" if detail else ""
        lines.append(
            f"  v{w.version} {w.status:9s} {w.certainty}, severity {w.severity}{score}; "
            f"{', '.join(d.replace('_', ' ') for d in w.departments)}; evidence until "
            f"{when(w.last_seen.timestamp())}")
    lines += ["", last.explanation]
    if detail:
        lines += ["", "evidence (p: the chance of a signal this strong by coincidence; "
                  "score: -log10 p):"]
        for e in last.evidence:
            window = f" over {hours(e.window_s)}" if e.window_s else ""
            lines.append(
                f"  {when(e.event_time.timestamp())} {e.department} {e.signal} "
                f"({e.detector}): observed {e.observed:.4g} vs expected {e.expected:.4g}"
                f"{window}, p={e.p_value:.1e}, score={e.score:g}; events "
                f"{', '.join(e.event_ids[:10])}{' ...' if len(e.event_ids) > 10 else ''}")
    if last.history:
        lines.append("decisions:")
        for h in last.history:
            note = "" if h.accepted else f" [rejected: {h.rejected_because}]"
            reason = f" ({h.reason})" if h.reason else ""
            lines.append(f"  {when(h.at.timestamp())} {h.action} by {h.by}{reason}{note}")
    a = last.audit
    if a is not None:
        lines += ["audit:", f"  template: {a.template}", f"  rule: {a.rule}"]
        if a.feedback_bar:
            lines.append(f"  feedback: {a.feedback_bar}")
        if detail:
            lines.append("  parameters: " + ", ".join(f"{k}={v:g}" for k, v in
                                                      sorted(a.parameters.items())))
            lines.append("  detectors: " + ", ".join(f"{k} v{v}" for k, v in
                                                     sorted(a.detectors.items())))
            lines.append(f"  source events ({len(a.event_ids)}): {', '.join(a.event_ids)}")
    if not detail:
        lines.append("(--detail: the statistics, the rule's parameters and the source events)")
    return "\n".join(lines)


__all__ = ["UnknownWarning", "officer_zone", "render", "versions_of"]
