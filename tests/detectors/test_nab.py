"""The NAB scorer: hand-checkable cases from the rules, and the published reference rows."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.scoring.nab import ScoringFile, probation_rows, scaled_sigmoid, score_corpus
from streams.evaluation.nab import evaluate, load_corpus, load_reference

NAB = Path(__file__).resolve().parents[2].parent / "shared" / "nab"


def test_sigmoid_and_probation() -> None:
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scaled_sigmoid(3.5) == -1.0
    assert probation_rows(100) == 15
    assert probation_rows(100_000) == 750


def test_single_false_positive_before_the_window() -> None:
    f = ScoringFile("c/f.csv", n=100, windows=[(50, 59)])
    s = [0.0] * 100
    s[20] = 1.0  # detection before the first window: -fp; the window is missed: -fn
    res = score_corpus([f], [s])
    # the best threshold is "detect nothing" (raw -1 -> 0) unless the FP pays off: it does not
    assert res["standard"] == pytest.approx(0.0)
    s[50] = 1.0  # now also the earliest row of the window: tp 1.0 - fp 0.11
    res = score_corpus([f], [s])
    assert res["standard"] == pytest.approx(100 * (1.0 - 0.11 + 1.0) / 2.0)
    assert res["reward_low_fp"] == pytest.approx(100 * (1.0 - 0.22 + 1.0) / 2.0)


def test_late_detection_in_window_is_worth_less_and_after_window_costs_little() -> None:
    f = ScoringFile("c/f.csv", n=100, windows=[(50, 59)])
    s = [0.0] * 100
    s[59] = 1.0  # last row: y = -1/10
    tp = scaled_sigmoid(-0.1) / scaled_sigmoid(-1.0)
    assert score_corpus([f], [s])["standard"] == pytest.approx(100 * (tp + 1) / 2)
    s[61] = 1.0  # just after: fp * sigmoid(2/9), mildly negative
    fp = 0.11 * scaled_sigmoid(2 / 9)
    assert score_corpus([f], [s])["standard"] == pytest.approx(100 * (tp + fp + 1) / 2)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=40, max_size=40))
def test_scores_lie_between_null_and_perfect(scores: list[float]) -> None:
    f = ScoringFile("c/f.csv", n=40, windows=[(20, 25), (30, 33)])
    res = score_corpus([f], [scores])
    for p in ("standard", "reward_low_fp", "reward_low_fn"):
        assert 0.0 - 1e-9 <= res[p] <= 100.0 + 1e-9


@pytest.mark.skipif(not NAB.is_dir(), reason="../shared/nab is not beside the project")
@pytest.mark.parametrize("detector,expected", [
    ("windowedGaussian", (29.1, 14.8, 35.8)),
    ("numenta", (68.6, 62.2, 72.8)),
])
def test_reproduces_published_reference_rows(detector: str, expected: tuple[float, ...]
                                             ) -> None:
    files = load_corpus(NAB / "data", NAB / "labels" / "combined_windows.json")
    res = evaluate(files, load_reference(NAB / "reference" / detector, files))
    got = (res["standard"], res["reward_low_fp"], res["reward_low_fn"])
    assert got == pytest.approx(expected, abs=0.1)


@pytest.mark.skipif(not NAB.is_dir(), reason="../shared/nab is not beside the project")
def test_eval_nab_command_prints_the_fields_and_writes_results(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "streams", "eval", "nab", "--data", str(NAB / "data"),
         "--labels", str(NAB / "labels" / "combined_windows.json"), "--json",
         "--out", str(tmp_path)], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert set(report) >= {"standard", "reward_low_fp", "reward_low_fn", "files",
                           "us_per_event", "bytes_per_series"}
    assert report["files"] == 41
    written = sorted(tmp_path.glob("*/tocsin_*.csv"))
    assert len(written) == 41
    header = written[0].read_text().splitlines()[0]
    assert header == "timestamp,value,anomaly_score,label"
