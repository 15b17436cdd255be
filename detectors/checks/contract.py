"""The checks of the contract in :mod:`detectors.base`. Each takes a
:class:`~detectors.checks.core.DetectorSpec` and raises ``AssertionError`` with a message
naming the detector when it breaks a clause; every detector is driven the one way the
pipeline drives it (:func:`~detectors.checks.core.drive`)."""

from __future__ import annotations

import copy
import inspect
import pickle
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from detectors.base import Score
from detectors.checks.core import (
    NOMINAL_P,
    DetectorSpec,
    Event,
    Stream,
    drive,
    drive_explained,
    first_difference,
    is_unit,
    roc_auc,
    run,
    same,
    state_bytes,
)

#: how far ``score_one`` may be from ``1 - explain_one(...).p_value`` (rounding)
CONSISTENCY_TOL = 1e-9


def _all_streams(spec: DetectorSpec, seed: int) -> dict[str, Stream]:
    return {"main": spec.stream(seed, spec.check_events), **spec.edge_streams(seed)}


def check_call_shapes(spec: DetectorSpec, seed: int = 3) -> None:
    """``learn_one``, ``score_one`` and ``explain_one`` each take ``(x, t)``; on every
    family's stream ``explain_one`` returns a Score, ``score_one`` a float (not a bool,
    not a Score) and ``learn_one`` None."""
    det = spec.make(seed)
    for name in ("learn_one", "score_one", "explain_one"):
        method = getattr(det, name, None)
        assert callable(method), f"{spec.name}: has no {name}(x, t) (see detectors.base)"
        try:
            inspect.signature(method).bind(object(), 0.0)
        except TypeError as e:
            raise AssertionError(f"{spec.name}: {name} does not take (x, t): {e}") from e
    for fam in spec.families:
        det = spec.make(seed)
        for i, (x, t, _) in enumerate(fam.stream(seed, 300)):
            s = det.explain_one(x, t)
            assert isinstance(s, Score), (
                f"{spec.name}: explain_one returned {s!r} on event {i} of {fam.name!r}, not a "
                "Score")
            v = det.score_one(x, t)
            assert isinstance(v, float) and not isinstance(v, bool), (
                f"{spec.name}: score_one returned {v!r} ({type(v).__name__}) on event {i} of "
                f"{fam.name!r}, not a float")
            r = det.learn_one(x, t)
            assert r is None, (
                f"{spec.name}: learn_one returned {r!r} on event {i} of {fam.name!r}; the "
                "contract says None (tell a late event by a method such as accepts(x, t))")


def check_clone_and_pickle(spec: DetectorSpec, seed: int = 7) -> None:
    """A deep copy, a pickle round trip and (for the detectors a worker checkpoints, those
    registered in :mod:`detectors.state`) a snapshot round trip taken mid-stream score the
    rest of the stream exactly as the original does."""
    from detectors import state

    stream = spec.stream(seed, spec.check_events)
    half = len(stream) // 2
    det = spec.make(seed)
    run(det, stream[:half])
    try:
        copies = [("copy.deepcopy", copy.deepcopy(det)), ("pickle round trip", pickle.loads(
            pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL)))]
        if state.is_registered(det):
            copies.append(("snapshot round trip", state.loads(state.dumps(det))))
    except Exception as e:  # the message names the detector
        raise AssertionError(f"{spec.name}: cannot copy, pickle or snapshot mid-stream: "
                             f"{e!r}") from e
    rest = stream[half:]
    want = run(det, rest)
    for how, other in copies:
        got = run(other, rest)
        assert same(got, want), (
            f"{spec.name}: after a {how} at event {half} the outputs differ from the "
            f"original's: {first_difference(got, want)}")


def check_seeded_determinism(spec: DetectorSpec, seed: int = 11) -> None:
    """Two detectors built with the same seed give identical outputs on the same stream."""
    stream = spec.stream(seed, spec.check_events)
    a = run(spec.make(seed), stream)
    b = run(spec.make(seed), stream)
    assert same(a, b), (
        f"{spec.name}: two instances with seed {seed} disagree on the same stream: "
        f"{first_difference(a, b)}")


def check_input_not_mutated(spec: DetectorSpec, seed: int = 13) -> None:
    """Explaining, scoring and learning leave the observation as it was (dict, list and
    tuple inputs are compared deeply, NaN equal to NaN)."""
    for label, stream in _all_streams(spec, seed).items():
        det = spec.make(seed)
        for i, (x, t, _) in enumerate(stream):
            before = copy.deepcopy(x)
            drive_explained(det, x, t)
            assert same(x, before), (
                f"{spec.name}: event {i} of the {label!r} stream was changed by the detector: "
                f"{before!r} became {x!r}")


def check_score_does_not_learn(spec: DetectorSpec, seed: int = 17) -> None:
    """``score_one`` and ``explain_one`` never change the state: the pickled detector is the
    same before and after (or, for a detector whose pickle holds a harmless cache, every
    later output is the same as a twin's that was never asked)."""
    stream = spec.stream(seed, spec.check_events)
    half = len(stream) // 2
    det = spec.make(seed)
    run(det, stream[:half])
    twin = copy.deepcopy(det)
    probes = [x for x, _, _ in stream[half:half + 25]]
    for edge in spec.edge_streams(seed).values():
        probes.extend(x for x, _, _ in edge[-3:])
    t_probe = stream[half][1]
    before = pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL)
    for x in probes:
        for _ in range(2):
            det.score_one(x, t_probe)
            det.explain_one(x, t_probe)
    after = pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL)
    if before == after:
        return
    got = run(det, stream[half:])
    want = run(twin, stream[half:])
    assert same(got, want), (
        f"{spec.name}: score_one or explain_one changed the detector: its pickle changed "
        f"({len(before)} -> {len(after)} bytes) and its later outputs differ from a twin's "
        f"that was never asked: {first_difference(got, want)}")


def check_bounded_memory(spec: DetectorSpec, seed: int = 19) -> None:
    """After ``memory_events`` events of a stream that keeps bringing new values (and,
    for keyed detectors, sparse and surging keys of a fixed key set), the pickled state is
    within ``max_state_bytes`` and did not grow over the second half of the stream."""
    n = spec.memory_events
    stream = spec.long_stream(seed, n)
    det = spec.make(seed)
    checkpoints = {n * k // 16 for k in range(4, 17)}  # n/4, 5n/16, ..., n
    sizes: dict[int, int] = {}
    for i, (x, t, _) in enumerate(stream, 1):
        drive(det, x, t)
        if i in checkpoints:
            sizes[i] = state_bytes(det)
    trace = ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items()))
    largest = max(sizes.values())
    assert largest <= spec.max_state_bytes, (
        f"{spec.name}: {largest} pickled bytes within {n} events, over the stated bound of "
        f"{spec.max_state_bytes} ({spec.memory_series} series); sizes by event: {trace}")
    # medians of the checkpoints in (n/4 .. n/2] and in [3n/4 .. n], so that buckets and
    # windows fuller at one instant than another do not count as growth
    early = statistics.median(v for k, v in sizes.items() if k <= n // 2)
    late = statistics.median(v for k, v in sizes.items() if k >= 3 * n // 4)
    assert late <= early * 1.02 + 128, (
        f"{spec.name}: state grows with the number of events: median pickle "
        f"{early:.0f} bytes over events {n // 4}-{n // 2}, {late:.0f} over "
        f"{3 * n // 4}-{n}; sizes by event: {trace}")


def _explained(spec: DetectorSpec, label: str, det: Any, i: int, x: Any, t: float
               ) -> tuple[Any, Any]:
    try:
        return drive_explained(det, x, t)
    except Exception as e:
        raise AssertionError(f"{spec.name}: raised {e!r} on event {i} ({x!r}, t={t}) of the "
                             f"{label!r} stream") from e


def check_output_range(spec: DetectorSpec, seed: int = 23) -> None:
    """Every score is a finite float in [0, 1] and every explanation's p-value a
    probability (never NaN), on the family's stream and on flat, quantised,
    NaN-containing, irregular and other edge input, which raises nothing."""
    for label, stream in _all_streams(spec, seed).items():
        det = spec.make(seed)
        for i, (x, t, _) in enumerate(stream):
            v, s = _explained(spec, label, det, i, x, t)
            assert is_unit(v), (
                f"{spec.name}: score {v!r} on event {i} ({x!r}, t={t}) of the {label!r} "
                "stream is not a finite number in [0, 1]")
            p = getattr(s, "p_value", None)
            assert is_unit(p), (
                f"{spec.name}: explain_one's p-value {p!r} on event {i} ({x!r}, t={t}) of "
                f"the {label!r} stream is not a probability")


def check_explain_matches_score(spec: DetectorSpec, seed: int = 37) -> None:
    """``score_one(x, t)`` is ``1 - explain_one(x, t).p_value`` (up to rounding) on every
    stream; a detector with a documented refractory period may score 0 instead."""
    for label, stream in _all_streams(spec, seed).items():
        det = spec.make(seed)
        for i, (x, t, _) in enumerate(stream):
            v, s = _explained(spec, label, det, i, x, t)
            want = 1.0 - s.p_value
            if spec.refractory and v == 0.0:
                continue
            assert abs(v - want) <= CONSISTENCY_TOL, (
                f"{spec.name}: score_one {v!r} but explain_one {s!r} (1 - p = {want!r}) on "
                f"event {i} ({x!r}, t={t}) of the {label!r} stream")


def measure_auc(spec: DetectorSpec, seed: int = 0) -> dict[str, float]:
    """ROC-AUC of the scores on each family's labelled stream."""
    out = {}
    for fam in spec.families:
        stream = fam.stream(seed, spec.auc_events)
        out[fam.name] = roc_auc(run(spec.make(seed), stream), [y for _, _, y in stream])
    return out


def check_roc_auc(spec: DetectorSpec, seed: int = 0) -> None:
    """Scored before learning, the outputs rank the labelled anomalies of each family's
    seeded stream above the rest: ROC-AUC at least ``auc_floor``."""
    for name, auc in measure_auc(spec, seed).items():
        assert auc >= spec.auc_floor, (
            f"{spec.name}: ROC-AUC {auc:.4f} on its seeded {name!r} stream (seed {seed}, "
            f"{spec.auc_events} events) is below the floor {spec.auc_floor}")


def check_flags_clear_anomaly(spec: DetectorSpec, seed: int = 41) -> None:
    """A blatant anomaly after a null stretch is flagged: some labelled event's
    explanation is a finding under :mod:`detectors.policy` (for a detector that is not
    calibrated: some labelled event outscores every null event past warm-up)."""
    for fam in spec.families:
        det = spec.make(seed)
        hits: list[tuple[float, Score]] = []
        null: list[float] = []
        for i, (x, t, y) in enumerate(fam.clear(seed)):
            v, s = drive_explained(det, x, t)
            if y:
                hits.append((v, s))
            elif i >= fam.warmup:
                null.append(v)
        assert hits, f"{fam.name}: the clear stream has no labelled event"
        best = min(hits, key=lambda h: h[1].p_value)
        if spec.calibrated:
            assert any(fam.flagged(s) for _, s in hits), (
                f"{spec.name}: none of the {len(hits)} labelled events of the {fam.name!r} "
                f"clear anomaly is a finding; the strongest: {best[1]!r}")
        else:
            top = max(v for v, _ in hits)
            assert top > max(null, default=0.0), (
                f"{spec.name}: the {fam.name!r} clear anomaly scores at most {top:.4f}, not "
                f"above the null stretch's highest score {max(null):.4f}")


def false_alarm_rate(spec: DetectorSpec, seed: int = 43) -> dict[str, float]:
    """Per family: the share of null events past warm-up explained with p < NOMINAL_P."""
    out = {}
    for fam in spec.families:
        det = spec.make(seed)
        hits = judged = 0
        for i, (x, t, _) in enumerate(fam.null(seed, spec.null_events)):
            _, s = drive_explained(det, x, t)
            if i >= fam.warmup:
                judged += 1
                hits += s.p_value < NOMINAL_P
        out[fam.name] = hits / max(judged, 1)
    return out


def check_false_alarm_rate(spec: DetectorSpec, seed: int = 43) -> None:
    """On a null stream (nothing injected) the share of events explained with
    ``p < NOMINAL_P`` (0.01) is at most ``max_false_alarm`` (about the nominal rate for a
    calibrated detector; not judged for one that is not calibrated)."""
    if not spec.calibrated:
        return
    for name, rate in false_alarm_rate(spec, seed).items():
        assert rate <= spec.max_false_alarm, (
            f"{spec.name}: {rate:.2%} of the null {name!r} events have p < {NOMINAL_P}, over "
            f"the stated {spec.max_false_alarm:.2%}")


def _init_params(det: Any) -> list[inspect.Parameter]:
    sig = inspect.signature(type(det).__init__)
    return [
        p for p in list(sig.parameters.values())[1:]
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def check_params_are_attributes(spec: DetectorSpec, seed: int = 29) -> None:
    """Every constructor argument is stored as an attribute of the same name, and a
    detector rebuilt from those attributes behaves as the original (river's ``clone``)."""
    det = spec.make(seed)
    params = _init_params(det)
    missing = [p.name for p in params if not hasattr(det, p.name)]
    assert not missing, (
        f"{spec.name}: constructor arguments not stored as attributes: {missing}")
    rebuilt = type(det)(**{p.name: copy.deepcopy(getattr(det, p.name)) for p in params})
    stream = spec.stream(seed, spec.check_events)
    got = run(rebuilt, stream)
    want = run(det, stream)
    assert same(got, want), (
        f"{spec.name}: a detector rebuilt from its parameter attributes behaves differently: "
        f"{first_difference(got, want)}")


def check_accepts_seed(spec: DetectorSpec, seed: int = 31) -> None:
    """The constructor takes a ``seed`` argument (detectors.base: "every constructor
    takes a seed")."""
    names = [p.name for p in _init_params(spec.make(seed))]
    assert "seed" in names, (
        f"{spec.name}: the constructor takes no `seed` argument (it takes {names}); the "
        "contract in detectors.base asks every detector to accept one")


def check_stream(spec: DetectorSpec, stream: Sequence[Event], seed: int = 0,
                 warmup: Sequence[Event] = ()) -> None:
    """The per-observation clauses on any ``stream`` (the property tests' entry), after
    driving the detector through ``warmup``: each explanation a Score with a probability,
    each score in [0, 1] and ``1 - p`` (or 0 when refractory), ``learn_one`` returning
    None, and neither ``score_one`` nor ``explain_one`` changing the pickled state."""
    det = spec.make(seed)
    run(det, warmup)
    for i, (x, t, _) in enumerate(stream):
        before = pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL)
        s = det.explain_one(x, t)
        v = det.score_one(x, t)
        after = pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL)
        where = f"event {i} ({x!r}, t={t})"
        assert before == after, f"{spec.name}: asking about {where} changed the state"
        assert isinstance(s, Score) and is_unit(s.p_value), (
            f"{spec.name}: explain_one gave {s!r} on {where}")
        assert is_unit(v), f"{spec.name}: score_one gave {v!r} on {where}"
        assert (spec.refractory and v == 0.0) or abs(v - (1.0 - s.p_value)) <= (
            CONSISTENCY_TOL), f"{spec.name}: score {v!r} against {s!r} on {where}"
        r = det.learn_one(x, t)
        assert r is None, f"{spec.name}: learn_one returned {r!r} on {where}"


CHECKS: list[Callable[[DetectorSpec], None]] = [
    check_call_shapes,
    check_clone_and_pickle,
    check_seeded_determinism,
    check_input_not_mutated,
    check_score_does_not_learn,
    check_bounded_memory,
    check_output_range,
    check_explain_matches_score,
    check_roc_auc,
    check_flags_clear_anomaly,
    check_false_alarm_rate,
    check_params_are_attributes,
    check_accepts_seed,
]

__all__ = [
    "CHECKS",
    "CONSISTENCY_TOL",
    "check_accepts_seed",
    "check_bounded_memory",
    "check_call_shapes",
    "check_clone_and_pickle",
    "check_explain_matches_score",
    "check_false_alarm_rate",
    "check_flags_clear_anomaly",
    "check_input_not_mutated",
    "check_output_range",
    "check_params_are_attributes",
    "check_roc_auc",
    "check_score_does_not_learn",
    "check_seeded_determinism",
    "check_stream",
    "false_alarm_rate",
    "measure_auc",
]
