"""The metrics a multivariate detector tracks (:class:`_MetricIndex`: at most ``cap``, the
first ones learned with a finite value; see :mod:`detectors.signals.multivariate` for the
rule) and the cleaning of one value (:func:`_finite`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

#: finite inputs are clamped to +-this (keeps squares and products finite)
MAX_ABS = 1e100


def _finite(v: object) -> float | None:
    """``v`` as a float clamped to +-MAX_ABS, or None when missing (None, NaN, inf, junk)."""
    if type(v) is not float:
        try:
            v = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    assert isinstance(v, float)
    if not math.isfinite(v):
        return None
    return -MAX_ABS if v < -MAX_ABS else (MAX_ABS if v > MAX_ABS else v)


class _MetricIndex:
    """Names of the tracked metrics (at most ``cap``), in order of admission."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.ignored_values = 0

    def observed(self, x: Mapping[str, float], admit: bool) -> list[tuple[int, float]]:
        """``(slot, value)`` of the tracked metrics with a finite value in ``x``, sorted by
        slot. With ``admit``, new metrics take free slots (sorted by name) and values of
        metrics left without a slot are counted in ``ignored_values``."""
        out: list[tuple[int, float]] = []
        new: list[tuple[str, float]] = []
        index = self.index
        for name, raw in x.items():
            v = _finite(raw)
            if v is None:
                continue
            i = index.get(name)
            if i is not None:
                out.append((i, v))
            elif admit:
                new.append((name, v))
        if new:
            new.sort()
            for name, v in new:
                if len(self.names) < self.cap:
                    index[name] = len(self.names)
                    self.names.append(name)
                    out.append((index[name], v))
                else:
                    self.ignored_values += 1
        out.sort()
        return out


__all__ = ["MAX_ABS", "_MetricIndex", "_finite"]
