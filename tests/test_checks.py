"""The generic check suite (detectors.checks) over every detector, and proof that the checks
can fail: each deliberately broken toy detector below is caught by the check meant for it.

Timings are never asserted here; ``benchmarks/detectors.py`` prints them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import pkgutil
import random
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import detectors
from detectors import checks
from detectors.checks import CHECKS, DetectorSpec, feed_level, level_edge_streams, level_series

ROOT = Path(__file__).resolve().parents[1]

#: Detectors that break a check today, by test id. Each is a strict xfail: the check still
#: runs and must still fail, and the day the detector is fixed the test XPASSes and fails,
#: so the entry has to be removed. Delete an entry to see the failure in full.
KNOWN_FAILURES: dict[str, str] = {}

SPECS = checks.specs()


def _cases() -> list[Any]:
    cases = []
    for spec in SPECS:
        for check in CHECKS:
            test_id = f"{spec.name}-{check.__name__}"
            marks = []
            if test_id in KNOWN_FAILURES:
                marks.append(pytest.mark.xfail(reason=KNOWN_FAILURES[test_id], strict=True,
                                               raises=AssertionError))
            cases.append(pytest.param(spec, check, id=test_id, marks=marks))
    return cases


@pytest.mark.parametrize(("spec", "check"), _cases())
def test_detector_passes_check(spec: DetectorSpec, check: Callable[[DetectorSpec], None]) -> None:
    check(spec)


def test_known_failures_name_real_cases() -> None:
    ids = {f"{s.name}-{c.__name__}" for s in SPECS for c in CHECKS}
    assert set(KNOWN_FAILURES) <= ids


def test_every_detector_has_a_spec() -> None:
    """Every public class of the package with ``score_one`` and ``learn_one`` is checked."""
    found = set()
    for mod in pkgutil.iter_modules(detectors.__path__):
        module = importlib.import_module(f"detectors.{mod.name}")
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and obj.__module__ == module.__name__
                    and not name.startswith("_") and hasattr(obj, "score_one")
                    and hasattr(obj, "learn_one") and not getattr(obj, "_is_protocol", False)):
                found.add(name)
    assert found <= {s.name for s in SPECS}, f"no spec for {found - {s.name for s in SPECS}}"
    assert checks.missing_specs() == []


def test_outputs_do_not_depend_on_the_hash_seed() -> None:
    """Same seed, same outputs in two processes with different PYTHONHASHSEED (no detector
    lets the iteration order of a set or dict of strings into its results)."""
    code = ("import json; from detectors.checks import output_digests; "
            "print(json.dumps(output_digests()))")
    digests = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                             capture_output=True, text=True, timeout=120)
        digests.append(json.loads(out.stdout))
    differ = sorted(k for k in digests[0] if digests[0][k] != digests[1].get(k))
    assert not differ, f"outputs depend on the hash seed: {differ}"


# -- the exact AUC ---------------------------------------------------------------------------


def test_roc_auc_is_exact() -> None:
    assert checks.roc_auc([0.1, 0.2, 0.3, 0.4], [False, False, True, True]) == 1.0
    assert checks.roc_auc([0.4, 0.3, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert checks.roc_auc([0.5] * 4, [False, True, False, True]) == 0.5  # ties count half
    assert checks.roc_auc([math.nan, 0.0, 1.0], [True, False, True]) == 0.5  # NaN ranks lowest
    rng = random.Random(5)
    scores = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]) for _ in range(300)]
    labels = [rng.random() < 0.3 for _ in range(300)]
    pairs = [(p, n) for p, yp in zip(scores, labels, strict=True) if yp
             for n, yn in zip(scores, labels, strict=True) if not yn]
    brute = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert checks.roc_auc(scores, labels) == pytest.approx(brute, abs=1e-12)
    with pytest.raises(ValueError):
        checks.roc_auc([0.1, 0.2], [True, True])


def test_streams_are_seeded_and_labelled() -> None:
    for spec in SPECS:
        a, b = spec.stream(3, 3_000), spec.stream(3, 3_000)
        assert checks.same(a, b), spec.name
        assert len(a) == 3_000 and any(y for *_, y in a), spec.name
        assert not checks.same(a, spec.stream(4, 3_000)), spec.name


# -- the checks can fail: toy detectors, one good and one broken per contract clause ---------


class Toy:
    """A correct toy: EWMA mean and variance, two-sided normal tail as the likelihood."""

    def __init__(self, alpha: float = 0.05, seed: int = 0) -> None:
        self.alpha = alpha
        self.seed = seed
        self._mean = math.nan
        self._var = 1.0

    def score_one(self, x: float, t: float) -> float:
        if not (math.isfinite(x) and math.isfinite(self._mean)):
            return 0.0
        z = abs(x - self._mean) / math.sqrt(self._var + 1e-12)
        return math.erf(z / math.sqrt(2.0))

    def learn_one(self, x: float, t: float) -> None:
        if not math.isfinite(x):
            return
        if not math.isfinite(self._mean):
            self._mean = x
            return
        d = x - self._mean
        self._mean += self.alpha * d
        self._var = (1 - self.alpha) * (self._var + self.alpha * d * d)


class MutatesInput(Toy):
    def learn_one(self, x: Any, t: float) -> None:
        v = x.pop("v")
        super().learn_one(v, t)

    def score_one(self, x: Any, t: float) -> float:
        return super().score_one(x["v"], t)


class LearnsWhenScoring(Toy):
    def score_one(self, x: float, t: float) -> float:
        out = super().score_one(x, t)
        super().learn_one(x, t)
        return out


class OverOne(Toy):
    def score_one(self, x: float, t: float) -> float:
        return 1.5 * super().score_one(x, t)


class NanOnMissing(Toy):
    def score_one(self, x: float, t: float) -> float:
        return x if math.isnan(x) else super().score_one(x, t)


class Hoards(Toy):
    def __init__(self, alpha: float = 0.05, seed: int = 0) -> None:
        super().__init__(alpha, seed)
        self._seen: list[float] = []

    def learn_one(self, x: float, t: float) -> None:
        self._seen.append(x)
        super().learn_one(x, t)


class Unseeded(Toy):
    def score_one(self, x: float, t: float) -> float:
        return min(1.0, super().score_one(x, t) + 0.01 * random.random())


class Unpicklable(Toy):
    def __init__(self, alpha: float = 0.05, seed: int = 0) -> None:
        super().__init__(alpha, seed)
        self._hook = lambda v: v


class Blind(Toy):
    def score_one(self, x: float, t: float) -> float:
        return 0.5


class HidesParams(Toy):
    def __init__(self, alpha: float = 0.05, seed: int = 0) -> None:
        super().__init__(alpha, seed)
        del self.alpha
        self._a = alpha

    def learn_one(self, x: float, t: float) -> None:
        self.alpha = self._a
        super().learn_one(x, t)
        del self.alpha


class NoSeed(Toy):
    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__(alpha)


def _toy_spec(cls: type[Toy], **kw: Any) -> DetectorSpec:
    spec = DetectorSpec(
        name=cls.__name__, make=lambda seed: cls(), stream=level_series, feed=feed_level,
        auc_floor=0.9, o1=True, max_state_bytes=1_024,
        edge_streams=lambda seed: level_edge_streams(seed, 400),
        memory_events=4_000, check_events=600, auc_events=3_000)
    return replace(spec, **kw)


def _dict_stream(seed: int, n: int) -> list[tuple[Mapping[str, float], float, bool]]:
    return [({"v": x}, t, y) for x, t, y in level_series(seed, n)]


def test_a_correct_toy_passes_every_check() -> None:
    for check in CHECKS:
        check(_toy_spec(Toy))


@pytest.mark.parametrize(("spec", "check", "message"), [
    pytest.param(_toy_spec(MutatesInput, stream=_dict_stream, edge_streams=lambda seed: {}),
                 checks.check_input_not_mutated, "was changed by the detector", id="mutates"),
    pytest.param(_toy_spec(LearnsWhenScoring), checks.check_score_does_not_learn,
                 "score_one changed the detector", id="learns-in-score"),
    pytest.param(_toy_spec(OverOne), checks.check_output_range, "not a finite number in",
                 id="outputs-1.5"),
    pytest.param(_toy_spec(NanOnMissing), checks.check_output_range, "output nan",
                 id="outputs-nan"),
    pytest.param(_toy_spec(Hoards, max_state_bytes=10**9), checks.check_bounded_memory,
                 "state grows", id="memory-grows"),
    pytest.param(_toy_spec(Hoards), checks.check_bounded_memory, "over the stated bound",
                 id="memory-over-bound"),
    pytest.param(_toy_spec(Unseeded), checks.check_seeded_determinism, "disagree",
                 id="unseeded-randomness"),
    pytest.param(_toy_spec(Unpicklable), checks.check_clone_and_pickle, "cannot copy or pickle",
                 id="unpicklable"),
    pytest.param(_toy_spec(Blind), checks.check_roc_auc, "below the floor", id="blind"),
    pytest.param(_toy_spec(HidesParams), checks.check_params_are_attributes,
                 "not stored as attributes", id="params-hidden"),
    pytest.param(_toy_spec(NoSeed), checks.check_accepts_seed, "no `seed`", id="no-seed"),
])
def test_checks_catch_a_broken_detector(
    spec: DetectorSpec, check: Callable[[DetectorSpec], None], message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        check(spec)


def test_a_score_with_an_impossible_p_value_is_out_of_range() -> None:
    from detectors.base import Score

    assert math.isnan(checks.calibrated(Score(1.0, 0.0, 1.5)))
    assert math.isnan(checks.calibrated(Score(1.0, 0.0, math.nan)))
    assert checks.calibrated(Score(1.0, 0.0, 0.25)) == 0.75
    assert math.isnan(checks.calibrated(True))
