"""``tocsin explain WARNING_ID``: a warning's versions, evidence and audit trail, read back
from the warnings topic (or a JSONL file of warnings), as a duty officer or auditor needs it."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from streams.core.errors import TocsinError
from streams.core.schemas import Warning


class UnknownWarning(TocsinError):
    """No version of the asked warning was found."""


def versions_of(warning_id: str, raw: Iterable[bytes]) -> list[Warning]:
    """Every version of ``warning_id`` in ``raw`` (unparseable records skipped), by version,
    duplicates (the same version delivered twice) dropped."""
    found: dict[int, Warning] = {}
    for value in raw:
        try:
            w = Warning.model_validate_json(value)
        except ValidationError:
            continue
        if w.warning_id == warning_id:
            found.setdefault(w.version, w)
    if not found:
        raise UnknownWarning(
            f"no warning {warning_id!r} found; check the id (it starts "
            "with 'tw-<region>-') and that TOCSIN_BROKER / TOCSIN_TOPIC_PREFIX point at the "
            "cluster that issued it")
    return [found[v] for v in sorted(found)]


def render(versions: list[Warning]) -> str:
    """Plain text: one block per version, then the evidence and audit of the latest."""
    last = versions[-1]
    lines = [f"warning {last.warning_id}: {last.scenario} in {last.region}, "
             f"{len(versions)} version(s), now {last.status}"]
    for w in versions:
        lines.append(
            f"  v{w.version} {w.status:9s} severity={w.severity} certainty={w.certainty} "
            f"score={w.score:g} departments={','.join(w.departments)} "
            f"evidence until {w.last_seen.isoformat()}")
    lines.append("")
    lines.append(last.explanation)
    lines.append("")
    lines.append("evidence:")
    for e in last.evidence:
        lines.append(
            f"  {e.event_time.isoformat()} {e.department} {e.signal} ({e.detector}): "
            f"observed {e.observed:.4g} vs expected {e.expected:.4g}, p={e.p_value:.1e}; "
            f"events {', '.join(e.event_ids[:10])}{' ...' if len(e.event_ids) > 10 else ''}")
    if last.history:
        lines.append("decisions:")
        for h in last.history:
            note = "" if h.accepted else f" [rejected: {h.rejected_because}]"
            reason = f" ({h.reason})" if h.reason else ""
            lines.append(f"  {h.at.isoformat()} {h.action} by {h.by}{reason}{note}")
    a = last.audit
    if a is not None:
        lines.append("audit:")
        lines.append(f"  template: {a.template}")
        lines.append(f"  rule: {a.rule}")
        lines.append("  parameters: " + ", ".join(f"{k}={v:g}" for k, v in
                                                  sorted(a.parameters.items())))
        lines.append("  detectors: " + ", ".join(f"{k} v{v}" for k, v in
                                                 sorted(a.detectors.items())))
        if a.feedback_bar:
            lines.append(f"  feedback: {a.feedback_bar}")
        lines.append(f"  source events ({len(a.event_ids)}): {', '.join(a.event_ids)}")
    return "\n".join(lines)


__all__ = ["UnknownWarning", "render", "versions_of"]
