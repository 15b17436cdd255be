"""Why a line of a replay file (or of a file of one source's records) was rejected: the
ingest's dead-letter reason with the line it came from, as ``tocsin validate`` prints it
and ``tocsin eval replay --dead-letters-out`` writes it (one JSON object per line)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from streams.core.schemas import DeadLetter

#: the origin topic a replayed record's dead letter names: ``replay:<source>``
REPLAY_ORIGIN = "replay:"
#: the error type of a line that is not a replay line (not JSON, or no valid ``source``)
REPLAY_LINE = "replay_line"
_LINE_PREFIX = re.compile(r"^line \d+: ")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected line: its number (1-based), its source (None: it had no valid one), the
    pipeline's reason and error type (``schema``, ``unknown_region``, ``json`` ...)."""

    line: int
    source: str | None
    reason: str
    error_type: str

    @classmethod
    def of_dead_letter(cls, d: DeadLetter) -> Rejection:
        """The rejection of a record replayed from a file: its dead letter's offset is its
        line number, its topic ``replay:<source>``."""
        source = d.source_topic.removeprefix(REPLAY_ORIGIN)
        return cls(d.offset, source, d.reason, d.error_type)

    @classmethod
    def of_bad_line(cls, lineno: int, error: str | None) -> Rejection:
        """The rejection of a line that is not a replay line at all."""
        reason = _LINE_PREFIX.sub("", error or "not a replay line")
        return cls(lineno, None, reason, REPLAY_LINE)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


__all__ = ["REPLAY_LINE", "REPLAY_ORIGIN", "Rejection"]
