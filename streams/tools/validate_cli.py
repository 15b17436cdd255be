"""``tocsin validate``: check a file of records exactly as ingest would (the same
:class:`~streams.ingest.ingestor.Ingestor`, built from the same settings as a worker's), and
say, per rejected line, why."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from streams.core.errors import EXIT_REJECTED, ConfigError, InputFileError
from streams.ingest.rejections import Rejection

if TYPE_CHECKING:  # the replay file's reader is evaluation's, imported when used
    from streams.core.regions import RegionRegistry
    from streams.core.settings import TocsinSettings
    from streams.evaluation.replay_score import ReplayLine



@dataclass
class FileCheck:
    """The verdict on a file: records accepted, re-deliveries dropped, lines rejected."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.accepted + self.duplicates + len(self.rejected)

    def by_type(self) -> Counter[str]:
        return Counter(r.error_type for r in self.rejected)


def source_of(name: str, prefix: str = "") -> str:
    """The source a ``--source`` names: ``env``, ``complaint``, ``market`` or its topic
    (with or without the topic prefix); :class:`ConfigError` otherwise."""
    from streams.core.schemas import SOURCES
    from streams.core.topics import SOURCE_TOPICS

    if name in SOURCES:
        return name
    for src, topic in SOURCE_TOPICS.items():
        if name in (topic, prefix + topic):
            return src
    raise ConfigError(f"--source {name!r}: use one of {', '.join(SOURCES)} (or its topic: "
                      f"{', '.join(SOURCE_TOPICS.values())})")


def bare_lines(path: Path, source: str) -> Iterator[ReplayLine]:
    """The lines of a file of ``source``'s bare records (one per line, no ``source`` field)
    as a producer sends them: the bytes unchanged, keyed by the record's region."""
    from streams.evaluation.replay_score import ReplayLine

    try:
        fh = path.open("rb")
    except OSError as e:
        raise InputFileError(f"cannot read {path}: {e.strerror or e}; check the path") from e
    with fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield ReplayLine(lineno, source, line, _region_key(line))


def _region_key(raw: bytes) -> bytes | None:
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    from streams.evaluation.replay_score import region_key

    return region_key(obj.get("region")) if isinstance(obj, dict) else None


def check_lines(lines: Iterable[ReplayLine], settings: TocsinSettings,
                registry: RegionRegistry) -> FileCheck:
    """Ingest every line as a worker with ``settings`` would (partitioned by key, so
    de-duplication is per partition as live); lines without a source are rejected."""
    from streams.core.signals import signals_for
    from streams.evaluation.replay_score import origin_of
    from streams.ingest.ingestor import ingestor_for
    from streams.ingest.privacy import Pseudonymizer

    # pseudonyms are never shown here: a throwaway key when TOCSIN_PSEUDONYM_KEY is unset
    ing = ingestor_for(settings, registry, signals_for(settings, registry.ids()),
                       Pseudonymizer(secrets.token_bytes(32)))
    out = FileCheck()
    for ln in lines:
        if ln.source is None:
            out.rejected.append(Rejection.of_bad_line(ln.lineno, ln.error))
            continue
        res = ing.ingest(ln.source, ln.raw, origin_of(ln, settings.partitions))
        if res.dead is not None:
            out.rejected.append(Rejection.of_dead_letter(res.dead))
        elif res.duplicate:
            out.duplicates += 1
        else:
            out.accepted += 1
    return out


def write_rejections(path: Path, rejected: Iterable[Rejection]) -> None:
    """One JSON object per rejected line: line, source, reason, error_type."""
    try:
        with path.open("w", encoding="utf-8") as f:
            for r in rejected:
                f.write(json.dumps(r.as_json(), ensure_ascii=False) + "\n")
    except OSError as e:
        raise InputFileError(f"cannot write {path}: {e.strerror or e}; check the folder "
                             "exists and is writable") from e


def summary(check: FileCheck, path: Path) -> list[str]:
    """The closing lines: counts, and the rejections by error type."""
    if check.lines == 0:
        return [f"{path}: no records (empty file or blank lines only)"]
    out = [f"{path}: {check.lines} record(s): {check.accepted} accepted, "
           f"{check.duplicates} duplicate(s) dropped, {len(check.rejected)} rejected"]
    if check.rejected:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(check.by_type().items()))
        out.append(f"rejected by error type: {kinds}")
    return out


def validate(
    file: Annotated[Path, typer.Argument(
        help="JSONL: replay lines (each with 'source': env, complaint or market) or, with "
        "--source, bare records of that source.", show_default=False)],
    source: Annotated[str | None, typer.Option(
        help="The file holds bare records of this source (env, complaint, market or its "
        "topic); default: replay lines, each with its 'source'.")] = None,
    regions: Annotated[Path | None, typer.Option(
        help="Region registry CSV (default: TOCSIN_REGION_REGISTRY).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Also write each rejected line as JSONL: line, source, reason, error_type.")
                   ] = None,
) -> None:
    """Check a file of records exactly as ingest would: print `line N: reason` for each
    rejected line, then the counts. Exit 0 if every record is accepted, 1 if any line is
    rejected, 2 if the file cannot be read or an option is wrong.

    Example: tocsin validate readings.jsonl --source env
    """
    from streams.core.regions import RegionRegistry
    from streams.core.settings import load_settings
    from streams.evaluation.replay_score import read_replay
    from streams.tools.cli_common import readable, writable

    if regions is not None:
        readable(regions, "the --regions file")
    writable(out, "--out")
    s = load_settings(region_registry=regions)
    src = None if source is None else source_of(source, s.topic_prefix)
    registry = RegionRegistry.from_csv(s.region_registry)
    lines = read_replay(file) if src is None else bare_lines(file, src)
    check = check_lines(lines, s, registry)
    for r in check.rejected:
        typer.echo(_one_line(str(r)))
    if out is not None:
        write_rejections(out, check.rejected)
    for line in summary(check, file):
        typer.echo(line)
    if src is None and check.rejected and all(r.reason.startswith("needs a 'source'")
                                              for r in check.rejected):
        typer.echo("hint: a file of one source's records without 'source' fields needs "
                   "--source env, complaint or market")
    if check.rejected:
        raise typer.Exit(EXIT_REJECTED)


def _one_line(text: str, limit: int = 2000) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = ["EXIT_REJECTED", "FileCheck", "bare_lines", "check_lines", "source_of",
           "validate", "write_rejections"]
