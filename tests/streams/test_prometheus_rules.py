"""The Prometheus configuration and Tocsin's own alerting rules, checked and unit-tested with
the real ``promtool`` (installed from the Debian package when missing)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from streams.core.settings import TocsinSettings
from streams.runtime.metrics import TocsinMetrics
from tests.services import ensure_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
CONFIG = DEPLOY / "prometheus.yml"
RULES = DEPLOY / "rules" / "tocsin.rules.yml"
RULE_TESTS = DEPLOY / "tests" / "tocsin.rules.test.yml"

ALERTS = {"TocsinConsumerLagGrowing", "TocsinDeadLetterRateHigh", "TocsinSourceQuiet",
          "TocsinWorkerDown", "TocsinDetectionDelayHigh", "TocsinNotificationsFailing",
          "TocsinBrokerUnreachable", "TocsinCheckpointsFailing", "TocsinSensorFaulty",
          "TocsinStationsSilent"}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ensure_binary("promtool"), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_promtool_check_config() -> None:
    proc = promtool("check", "config", CONFIG)
    assert proc.returncode == 0, output(proc)
    assert "1 rule files found" in proc.stdout + proc.stderr, output(proc)


def test_promtool_check_rules() -> None:
    proc = promtool("check", "rules", RULES)
    assert proc.returncode == 0, output(proc)


def test_promtool_test_rules() -> None:
    proc = promtool("test", "rules", RULE_TESTS)
    assert proc.returncode == 0, output(proc)
    assert "SUCCESS" in proc.stdout + proc.stderr, output(proc)


def broken_copy(tmp_path: Path, alertname: str) -> Path:
    """The rule test with the expected alerts of ``alertname``'s firing cases removed."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    shutil.copy(RULES, tmp_path / "rules" / RULES.name)
    doc = yaml.safe_load(RULE_TESTS.read_text())
    removed = 0
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            if check["alertname"] == alertname and check.get("exp_alerts"):
                check["exp_alerts"] = []
                removed += 1
    assert removed, f"no firing case of {alertname} in {RULE_TESTS}"
    out = tmp_path / "tests" / RULE_TESTS.name
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


@pytest.mark.parametrize("alertname", sorted(ALERTS))
def test_promtool_test_rules_can_fail(tmp_path: Path, alertname: str) -> None:
    """Without an expected alert the same rules fail the test: the harness can fail, and
    every alert really fires in its test."""
    proc = promtool("test", "rules", broken_copy(tmp_path, alertname))
    assert proc.returncode != 0, output(proc)
    assert alertname in proc.stdout + proc.stderr, output(proc)


def test_every_alert_is_tested_firing_and_silent() -> None:
    doc = yaml.safe_load(RULE_TESTS.read_text())
    firing: set[str] = set()
    silent: set[str] = set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert firing == ALERTS
    assert silent == ALERTS


def test_alert_labels_and_annotations() -> None:
    seen = set()
    for rule in rules():
        name = rule["alert"]
        seen.add(name)
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["labels"]["department"] == "operations", name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        assert rule["annotations"]["runbook_url"] == (
            "https://github.com/tocsin/tocsin/blob/main/docs/runbook.md#" + name.lower()), name
    assert seen == ALERTS


def test_rules_use_only_exported_metrics() -> None:
    """Every tocsin_* series a rule reads is exported by streams/metrics.py (a renamed
    metric would otherwise silently never alert)."""
    registry = CollectorRegistry()
    m = TocsinMetrics(registry, regions=["r1"], scenarios=["pollution"])
    m.events_dead.labels("env", "invalid").inc()
    m.last_processed.labels("env").set(1)
    m.observe_lag("tocsin.env.readings", 0, 5)
    m.notifications.labels("grafana", "failed").inc()
    m.observe_faults({"stuck": 2})
    m.stations.observe({"silent": 1}, 10, 2, [("S-1", "pm25", "silent", 0.2)])
    exported = {s.name for metric in registry.collect() for s in metric.samples}
    used = {name for rule in rules() for name in re.findall(r"\btocsin_\w+", rule["expr"])}
    assert used, "no tocsin_ metric found in the rules"
    assert used <= exported, sorted(used - exported)


def test_scrape_config() -> None:
    doc = yaml.safe_load(CONFIG.read_text())
    assert doc["global"]["scrape_interval"] == "15s"
    assert doc["rule_files"] == ["rules/*.yml"]
    assert doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"]
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert jobs["tocsin"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": 9464, "refresh_interval": "30s"}]
    # the port the workers serve /metrics on by default
    assert TocsinSettings.model_fields["metrics_port"].default == 9464
    assert "prometheus" in jobs
