"""TOCSIN_TIMEZONE and the region registry's timezone column: the zone explanations are
written in; and an old correlator snapshot (before the wording) still restores."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from detectors.fusion.correlation import Correlator
from detectors.fusion.wording import PLAIN, Wording
from detectors.state import from_state, registered, to_state
from detectors.state_versions import _correlator_with_wording
from streams.core.errors import ConfigError, RegistryError
from streams.core.regions import RegionRegistry
from streams.core.settings import DEFAULT_REGISTRY, TocsinSettings
from streams.pipeline.inprocess import Pipeline
from tests.streams.test_lifecycle import T0, false_alarm

CSV = "region,name,lat,lon,neighbours{}\nr1,One,31.2,121.5,r2{}\nr2,Two,31.3,121.5,r1{}\n"


def registry(tmp_path: Path, zone: str | None) -> RegionRegistry:
    path = tmp_path / "regions.csv"
    extra = ("", "", "") if zone is None else (",timezone", f",{zone}", f",{zone}")
    path.write_text(CSV.format(*extra))
    return RegionRegistry.from_csv(path)


def test_the_setting_wins_then_the_registry_then_utc(tmp_path: Path) -> None:
    reg = registry(tmp_path, "Asia/Shanghai")
    assert reg.timezone == "Asia/Shanghai" and registry(tmp_path, None).timezone is None
    assert TocsinSettings().zone(reg.timezone) == ZoneInfo("Asia/Shanghai")
    assert TocsinSettings().zone(None) is UTC
    assert TocsinSettings(timezone="Europe/Berlin").zone(reg.timezone) == \
        ZoneInfo("Europe/Berlin")
    # the packaged registry (a city at 31N 121E) carries its zone
    assert RegionRegistry.from_csv(DEFAULT_REGISTRY).timezone == "Asia/Shanghai"


def test_an_unknown_zone_is_refused_naming_the_variable_or_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TOCSIN_TIMEZONE: unknown time zone 'Mars/Base'.*"
                                          r"IANA name"):
        TocsinSettings(timezone="Mars/Base")
    with pytest.raises(RegistryError, match=r"regions.csv:2: unknown time zone 'Nowhere'"):
        registry(tmp_path, "Nowhere")


def test_the_pipeline_writes_explanations_in_the_registry_zone(tmp_path: Path) -> None:
    """A registry in Shanghai time: the correlator's and the pre-warnings' zone is CST,
    the warning's times are to the minute and the reading carries its catalogue unit."""
    p = Pipeline(TocsinSettings(), registry(tmp_path, "Asia/Shanghai"))
    assert p.correlation.wording.zone == ZoneInfo("Asia/Shanghai")
    assert p.sources.params.zone == ZoneInfo("Asia/Shanghai")
    w = false_alarm(p.correlation, "z", T0)[0]
    head, *lines = w.explanation.split("\n")
    assert head.endswith("since 2026-03-10 16:00 CST.")  # 08:00 UTC
    assert any(line.startswith("- COD at water station harbour: 9 mg/L against a usual 1 ")
               for line in lines)
    # an anomaly without its window (from a producer before window_s) reads "recently"
    assert "- 9 odor complaints recently; usually 0-2" in lines
    assert lines[-1].startswith("Recommended: ")


def test_a_version_1_correlator_snapshot_restores_with_the_plain_wording() -> None:
    c = Correlator(wording=Wording(zone=ZoneInfo("Asia/Shanghai")))
    ext = {"templates": c.templates, "generic_template": c.generic}
    back = from_state(to_state(c, ext), ext)  # the wording is configuration: a placeholder
    assert back.wording is PLAIN and back.templates == c.templates
    assert registered()["correlator"] == 2
    old = _correlator_with_wording({"window_s": 60.0})  # as written before the wording
    assert old == {"window_s": 60.0, "wording": PLAIN}
