"""Offline evaluation: run the same stages in-process over a replay file and score the
warnings against the ground truth."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from detectors.fusion.templates import DEFAULT_FILE, TemplateSet, load_templates
from streams.core.errors import InputFileError, validation_message
from streams.core.regions import RegionRegistry
from streams.core.schemas import SOURCES, EventTime, Warning
from streams.core.settings import TocsinSettings
from streams.evaluation.durations import hmm_or_none
from streams.evaluation.match_fit import misfits
from streams.ingest.ingestor import Origin
from streams.ingest.rejections import REPLAY_ORIGIN, Rejection
from streams.pipeline.inprocess import Pipeline
from streams.pipeline.stages import partition_for

MATCH_GRACE = timedelta(hours=1)


class TruthIncident(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    scenario: str
    region: str
    start: EventTime
    end: EventTime
    cross_department: bool = True
    #: optional, used only to flag matches that do not fit (streams/evaluation/match_fit.py):
    #: every region it affects; the sources (env, complaint, market) or the department
    #: strings that see it
    regions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()


def load_truth(path: Path) -> list[TruthIncident]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputFileError(f"cannot read truth file {path}: {e.strerror or e}; check the path "
                             "(a JSON list of incidents, as tocsin simulate --truth writes)") from e
    except json.JSONDecodeError as e:
        raise InputFileError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from e
    if not isinstance(data, list):
        raise InputFileError(f"{path}: the truth file must be a JSON list of incidents")
    out = []
    for i, item in enumerate(data):
        try:
            out.append(TruthIncident.model_validate(item))
        except ValidationError as e:
            raise InputFileError(f"{path}: incident #{i}: {validation_message(e)}") from e
    return out


@dataclass(frozen=True)
class ReplayLine:
    lineno: int
    source: str | None
    raw: bytes
    key: bytes | None
    error: str | None = None


def read_replay(path: Path) -> Iterator[ReplayLine]:
    """Lines of a replay file. A line that is not a JSON object with a valid ``source`` is
    yielded with ``error`` set (so callers can dead-letter it, never drop it)."""
    try:
        fh = path.open("rb")
    except OSError as e:
        raise InputFileError(f"cannot read replay file {path}: {e.strerror or e}; check the "
                             "path") from e
    with fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
                yield ReplayLine(lineno, None, line, None, f"line {lineno}: not JSON ({e})")
                continue
            if not isinstance(obj, dict) or obj.get("source") not in SOURCES:
                yield ReplayLine(lineno, None, line, None,
                                 f"line {lineno}: needs a 'source' of {', '.join(SOURCES)}")
                continue
            yield replay_line(lineno, obj)


def replay_line(lineno: int, obj: dict[str, Any]) -> ReplayLine:
    """The replay line of ``obj``, a record with its ``source`` (taken out of it), keyed by
    its region as a producer keys it."""
    obj = dict(obj)
    source = obj.pop("source")
    region = obj.get("region")
    # a lone surrogate (a JSON "\\ud800" escape) is kept as the bytes a producer would send,
    # so ingest rejects the record with its reason instead of this line crashing
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass")
    return ReplayLine(lineno, source, raw, region_key(region))


def region_key(region: object) -> bytes | None:
    """The message key of a record whose ``region`` field is ``region``: its UTF-8 bytes (a
    lone surrogate kept, as a producer would send it), none if it is not a string."""
    return region.encode("utf-8", "surrogatepass") if isinstance(region, str) else None


def run_pipeline(lines: Iterable[ReplayLine], settings: TocsinSettings,
                 registry: RegionRegistry) -> tuple[Pipeline, int]:
    pipe = Pipeline(settings, registry)
    bad_lines = feed_lines(pipe, lines)
    pipe.finish()
    return pipe, bad_lines


def feed_lines(pipe: Pipeline, lines: Iterable[ReplayLine]) -> int:
    """Feed replay lines to ``pipe`` in file order, each from the partition a live run
    would read it from (keyed by region); the number of lines without a source."""
    bad_lines = 0
    for _ln, out in feed_each(pipe, lines):
        if out is None:
            bad_lines += 1
    return bad_lines


def feed_each(pipe: Pipeline, lines: Iterable[ReplayLine]
              ) -> Iterator[tuple[ReplayLine, list[Warning] | None]]:
    """Feed replay lines to ``pipe`` as :func:`feed_lines` does, yielding each with the
    warning versions its ``feed`` returned (``None`` for a line without a source)."""
    n = pipe.settings.partitions
    for ln in lines:
        if ln.source is None:
            yield ln, None
            continue
        yield ln, pipe.feed(ln.source, ln.raw, origin_of(ln, n))


def origin_of(ln: ReplayLine, partitions: int) -> Origin:
    """Where a live worker reads replay line ``ln`` from: its source topic's partition of
    its key (as ``replay:<source>``, the line number as offset, so a dead letter names it)."""
    return Origin(f"{REPLAY_ORIGIN}{ln.source}", partition_for(ln.key, partitions), ln.lineno,
                  ln.key)


def decisive_records(pipe: Pipeline, lines: Iterable[ReplayLine]) -> dict[str, ReplayLine]:
    """Feed ``lines`` to ``pipe``; for each warning it opens meanwhile, the *decisive
    record*: the line whose ``feed`` first returned a version of that warning id."""
    out: dict[str, ReplayLine] = {}
    for ln, warnings in feed_each(pipe, lines):
        for w in warnings or ():
            out.setdefault(w.warning_id, ln)
    return out


def first_versions(warnings: Iterable[Warning]) -> dict[str, Warning]:
    first: dict[str, Warning] = {}
    for w in warnings:
        if w.warning_id not in first or w.version < first[w.warning_id].version:
            first[w.warning_id] = w
    return first


def score(warnings: Iterable[Warning], truth: list[TruthIncident],
          registry: RegionRegistry, templates: TemplateSet | None = None) -> dict[str, Any]:
    """Match warnings to incidents: same region or a neighbour, and the warning's
    ``first_seen`` between the incident's start and one hour after its end. Each match
    is listed with why it does not fit the incident (:func:`misfits`, never scored)."""
    firsts = first_versions(warnings)
    tset = templates if templates is not None else load_templates(DEFAULT_FILE)

    def matches(w: Warning, inc: TruthIncident) -> bool:
        return registry.near(inc.region, w.region) and (
            inc.start <= w.first_seen <= inc.end + MATCH_GRACE
        )

    cross = [i for i in truth if i.cross_department]
    noise = [i for i in truth if not i.cross_department]
    per_incident: list[dict[str, Any]] = []
    delays: list[float] = []
    matched_ids: set[str] = set()
    for inc in truth:
        hits = [w for w in firsts.values() if matches(w, inc)]
        delay = None
        if hits and inc.cross_department:
            matched_ids.update(w.warning_id for w in hits)
            delay = max(0.0, min((w.last_seen - inc.start).total_seconds() for w in hits))
            delays.append(delay)
        per_incident.append({
            "id": inc.id, "scenario": inc.scenario, "region": inc.region,
            "cross_department": inc.cross_department, "start": inc.start.isoformat(),
            "detected": bool(hits), "delay_s": delay, "delay": hmm_or_none(delay),
            "warnings": sorted(w.warning_id for w in hits),
            "matches": [{"warning_id": w.warning_id, "scenario": w.scenario,
                         "misfit": misfits(inc, w, tset)}
                        for w in sorted(hits, key=lambda w: w.warning_id)],
        })
    false = sorted(wid for wid in firsts if wid not in matched_ids)
    detected = sum(1 for p in per_incident if p["cross_department"] and p["detected"])
    n_w = len(firsts)
    median = statistics.median(delays) if delays else None
    return {
        "incidents": len(cross),
        "detected": detected,
        "recall": detected / len(cross) if cross else 1.0,
        "warnings": n_w,
        "false_warnings": len(false),
        "precision": (n_w - len(false)) / n_w if n_w else 1.0,
        "median_delay_s": median,
        "median_delay": hmm_or_none(median),
        "mismatched_matches": sum(1 for p in per_incident if p["cross_department"]
                                  for m in p["matches"] if m["misfit"]),
        "noise_incidents": len(noise),
        "noise_warned": sum(1 for p in per_incident if not p["cross_department"] and p["detected"]),
        "per_incident": per_incident,
        "false_warning_ids": false,
        "unmatched_warnings": [_brief(firsts[wid]) for wid in false],
    }


def _brief(w: Warning) -> dict[str, Any]:
    return {"warning_id": w.warning_id, "scenario": w.scenario, "region": w.region,
            "first_seen": w.first_seen.isoformat(), "departments": list(w.departments)}


def span_weeks(truth: list[TruthIncident], warnings: Iterable[Warning]) -> float:
    times: list[datetime] = [t for i in truth for t in (i.start, i.end)]
    times += [w.last_seen for w in warnings]
    if len(times) < 2:
        return 1.0
    return max((max(times) - min(times)).total_seconds() / (7 * 86400), 1 / 7)


def _replay_counts(events: Path, settings: TocsinSettings, registry: RegionRegistry,
                   baseline: str, rejected: list[Rejection]
                   ) -> tuple[list[Warning], dict[str, Any]]:
    """The warnings of ``baseline`` over ``events`` and the input's counts; every line
    dead-lettered appended to ``rejected``, in file order."""
    from streams.core.signals import signals_for
    from streams.evaluation.baselines import (
        ingest_replay,
        naive_flags,
        naive_warnings_from_flags,
        single_warnings,
    )

    if baseline == "naive":
        ing = ingest_replay(read_replay(events), registry, settings.dedup_window,
                            signals_for(settings, registry.ids()))
        rejected.extend(ing.rejected)
        flags = naive_flags(ing.records)
        return naive_warnings_from_flags(flags), {
            "events": ing.received + ing.bad_lines, "valid": len(ing.records),
            "dead_letters": ing.dead_letters + ing.bad_lines, "duplicates": ing.duplicates,
            "anomalies": len(flags), "citywide_condition_versions": [],  # naive flags
            "limit_prewarnings": 0}
    bad_lines: list[ReplayLine] = []
    pipe, bad = run_pipeline(_tap_bad(read_replay(events), bad_lines), settings, registry)
    rejected.extend(sorted([Rejection.of_bad_line(ln.lineno, ln.error) for ln in bad_lines]
                           + [Rejection.of_dead_letter(d) for d in pipe.dead_letters],
                           key=lambda r: r.line))
    warnings = single_warnings(pipe.anomalies) if baseline == "single" else pipe.warnings
    c = pipe.sources.counters
    # city-wide conditions are not incident warnings: listed, never scored as such
    conditions = [{"condition_id": x.condition_id, "version": x.version,
                   "status": x.status, "level": x.level, "kinds": x.kinds,
                   "regions": len(x.regions), "first_seen": x.first_seen.isoformat()}
                  for x in pipe.conditions if x.status != "update"]
    return warnings, {
        "events": sum(c.received.values()) + bad, "valid": sum(c.valid.values()),
        "dead_letters": sum(c.dead.values()) + bad,
        "duplicates": sum(c.duplicate.values()), "anomalies": c.anomalies,
        "citywide_condition_versions": conditions,
        # limit pre-warnings (scenario limit_forecast): listed, never scored as incidents
        "limit_prewarnings": len({w.warning_id for w in pipe.prewarnings})}


def _tap_bad(lines: Iterable[ReplayLine], bad: list[ReplayLine]) -> Iterator[ReplayLine]:
    for ln in lines:
        if ln.source is None:
            bad.append(ln)
        yield ln


def evaluate_replay(events: Path, truth: list[TruthIncident], settings: TocsinSettings,
                    registry: RegionRegistry, baseline: str = "tocsin",
                    rejected: list[Rejection] | None = None
                    ) -> tuple[dict[str, Any], list[Warning]]:
    """``tocsin eval replay``: score ``baseline`` (tocsin, single or naive) over a replay
    file against ``truth``; the report and every warning version. Every line dead-lettered
    is appended to ``rejected`` (if given), in file order."""
    import time

    t0 = time.perf_counter()
    warnings, counts = _replay_counts(events, settings, registry, baseline,
                                      [] if rejected is None else rejected)
    elapsed = time.perf_counter() - t0
    report = score(warnings, truth, registry,
                   load_templates(settings.scenarios or DEFAULT_FILE))
    weeks = span_weeks(truth, warnings)
    report.update(counts)
    report.update({
        "baseline": baseline, "warning_versions": len(warnings),
        "false_warnings_per_region_week": report["false_warnings"] / (len(registry) * weeks),
        "seconds": round(elapsed, 3),
        "citywide_conditions": len({x["condition_id"]
                                    for x in counts["citywide_condition_versions"]}),
    })
    return report, warnings
