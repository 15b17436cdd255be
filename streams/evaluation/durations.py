"""Durations as a duty officer reads them: ``h:mm`` (``-h:mm`` for a lead), hours past 24
kept as hours (``27:05``)."""

from __future__ import annotations

import re

_HMM = re.compile(r"(-?)(\d+):([0-5]\d)")


def format_hmm(seconds: float) -> str:
    """``seconds`` rounded to the nearest minute (halves away from zero) as ``h:mm``;
    negative durations get a leading ``-``; zero is ``0:00``, never ``-0:00``."""
    minutes = int(abs(seconds) / 60 + 0.5)
    sign = "-" if seconds < 0 and minutes else ""
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


def parse_hmm(text: str) -> int:
    """The seconds of an ``h:mm`` (or ``-h:mm``) text; ``ValueError`` for anything else."""
    m = _HMM.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a duration h:mm")
    seconds = (int(m[2]) * 60 + int(m[3])) * 60
    return -seconds if m[1] else seconds


def hmm_or_none(seconds: float | None) -> str | None:
    return None if seconds is None else format_hmm(seconds)
