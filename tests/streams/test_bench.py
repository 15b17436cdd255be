"""``tocsin bench`` end to end at a small size (the figures themselves are never asserted:
only that every field is measured and consistent), and the faust tuning it relies on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from streams.core.settings import TocsinSettings
from streams.runtime.faust_tuning import BatchDrainConsumer, TunedApp

FIELDS = ("raw_limit_eps", "faust_default_eps", "faust_tuned_eps", "pipeline_eps",
          "pipeline_vs_tuned", "tuned_vs_default", "p50_latency_s", "p99_latency_s",
          "rss_mb", "bytes_per_series")


def test_tuned_app_uses_the_batch_drain_consumer_with_the_fetch_wait(tmp_path: object) -> None:
    app = TunedApp("tuning-test", broker="kafka://127.0.0.1:9", fetch_max_wait_ms=77,
                   poll_timeout_s=0.02, datadir=str(tmp_path))
    consumer_cls = type(app.transport).Consumer
    assert issubclass(consumer_cls, BatchDrainConsumer)
    assert consumer_cls.fetch_max_wait_ms == 77
    assert consumer_cls.poll_timeout_s == 0.02
    plain = TunedApp("tuning-test-2", broker="kafka://127.0.0.1:9", batch_drain=False,
                     datadir=str(tmp_path))
    assert not issubclass(type(plain.transport).Consumer, BatchDrainConsumer)


def test_memory_figure_counts_real_series() -> None:
    out = subprocess.run([sys.executable, "-m", "streams.bench.memory", "2000"],
                         capture_output=True, text=True, timeout=120, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["series"] == 2000
    # the resident set grew by a plausible amount per series (not 0, not a copy of Python)
    assert 300 < res["bytes_per_series"] < 20_000


@pytest.mark.integration
def test_bench_measures_every_field(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    from streams.tools.cli import app

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    result = CliRunner().invoke(app, ["bench", "--json", "--events", "6000", "--series",
                                      "1000", "--no-variants", "--latency-s", "3"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout[result.stdout.index("{"):])
    for field in FIELDS:
        assert field in res, field
    assert res["events"] == 6000
    for field in ("raw_limit_eps", "faust_default_eps", "faust_tuned_eps", "pipeline_eps"):
        assert res[field] > 0
    assert res["pipeline_vs_tuned"] == pytest.approx(res["pipeline_eps"]
                                                     / res["faust_tuned_eps"])
    assert res["tuned_vs_default"] == pytest.approx(res["faust_tuned_eps"]
                                                    / res["faust_default_eps"])
    assert res["anomaly_latency_samples"] > 0
    assert 0 < res["anomaly_p50_latency_s"] <= res["anomaly_p99_latency_s"]
    assert set(res["rss_mb"]) == {"1000"} and res["bytes_per_series"]["1000"] > 0
    assert TocsinSettings().fetch_max_wait_ms == res["faust_tuned_settings"][
        "fetch_max_wait_ms"]
