"""The snapshot classes whose state changed shape: their current versions and the
upgrades from the older ones (:func:`detectors.state.register_upgrade`)."""

from __future__ import annotations

from typing import Any

from detectors.state import register, register_upgrade


def register_versioned() -> None:
    """Finding version 2: ``entities`` (notes on risky market entities), 1 had none;
    version 3: ``window_s`` (a count's window), 0 (unknown) before. Score version 2:
    ``window_s``, 0 before."""
    from detectors.base import Finding, Score

    register("finding", Finding, version=3)
    register_upgrade("finding", 1, _finding_with_entities)
    register_upgrade("finding", 2, _finding_with_window)
    register("score", Score, version=2)
    register_upgrade("score", 1, _score_with_window)
    _register_wording()


def _register_wording() -> None:
    """The wording of explanations is configuration: a snapshot holds a placeholder,
    restored as the plain wording, and the worker sets its own on restore. Correlator
    version 2 holds it (``wording``); version 1 had none."""
    from detectors.fusion.correlation import Correlator
    from detectors.fusion.wording import PLAIN, Wording

    register("wording", Wording, dump=lambda w: None, load=lambda s: PLAIN)
    register("correlator", Correlator, version=2)
    register_upgrade("correlator", 1, _correlator_with_wording)


def _correlator_with_wording(state: Any) -> Any:
    """A version-1 correlator's attributes, with the plain wording."""
    from detectors.fusion.wording import PLAIN

    if isinstance(state, dict) and "wording" not in state:
        state = {**state, "wording": PLAIN}
    return state


def _finding_with_window(state: Any) -> Any:
    """A version-2 finding's field values, with no count window (0) appended."""
    return [*state, 0.0] if isinstance(state, list) and len(state) == 15 else state


def _score_with_window(state: Any) -> Any:
    """A version-1 score's field values, with no count window (0) appended."""
    return [*state, 0.0] if isinstance(state, list) and len(state) == 3 else state


def _finding_with_entities(state: Any) -> Any:
    """A version-1 finding's field values, with no entity notes appended."""
    return [*state, ()] if isinstance(state, list) and len(state) == 14 else state


__all__ = ["register_versioned"]
