"""``tocsin validate``: per-line reasons, counts and exit codes; the same verdict as the
in-process pipeline's dead letters; ``eval replay --dead-letters-out``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from streams.core.regions import RegionRegistry
from streams.core.settings import TocsinSettings
from streams.evaluation.replay_score import read_replay, run_pipeline
from streams.ingest.rejections import Rejection
from streams.tools.cli import app
from streams.tools.validate_cli import EXIT_REJECTED, bare_lines, check_lines

ROOT = Path(__file__).resolve().parents[2]
READING = {"reading_id": "r1", "sensor_id": "AQ-harbour", "metric": "pm25", "value": 49.7,
           "unit": "ug/m3", "region": "harbour", "observed_at": "2026-03-02T00:00:00Z",
           "department": "ecology_bureau"}
COMPLAINT = {"complaint_id": "c1", "channel": "hotline", "category": "odor", "text": "smell",
             "region": "harbour", "received_at": "2026-03-02T00:48:14Z",
             "department": "citizen_hotline"}


def _line(source: str | None, obj: dict[str, object]) -> str:
    return json.dumps(obj if source is None else {"source": source, **obj})


#: (line, the reason validate must print for it, or None: accepted)
REPLAY_CASES: list[tuple[str, str | None]] = [
    (_line("env", READING), None),
    (_line("env", {**READING, "reading_id": "r2", "observed_at": "2026-03-02T01:00:00"}),
     "line 2: observed_at: Input should have timezone info"),
    (_line("env", {**READING, "reading_id": "r3", "region": "Harbour"}),
     "line 3: unknown region 'Harbour': not in the region registry"),
    (_line("env", {**READING, "reading_id": "r4", "metric": "pm10x"}),
     "line 4: unknown metric 'pm10x': not in the signal catalogue"),
    ("", None),  # blank: skipped
    (_line("env", READING), None),  # line 6: a re-delivery of line 1, dropped
    (_line("sms", {"id": 1}), "line 7: needs a 'source' of env, complaint, market"),
    ("not json", "line 8: not JSON"),
    (_line("complaint", {**COMPLAINT, "channel": "fax"}),
     "line 9: channel: Input should be 'hotline', 'app', 'web' or 'wechat'"),
    (_line("complaint", COMPLAINT), None),
    (_line("env", {**READING, "value": 50.0}),
     "line 11: id 'r1' was already used by a different record"),
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_validate_prints_each_rejected_line_and_counts(tmp_path: Path) -> None:
    f = _write(tmp_path / "r.jsonl", [x for x, _ in REPLAY_CASES])
    out = tmp_path / "rejected.jsonl"
    res = CliRunner().invoke(app, ["validate", str(f), "--out", str(out)])
    assert res.exit_code == EXIT_REJECTED, res.output
    printed = res.stdout.splitlines()
    wanted = [why for _, why in REPLAY_CASES if why is not None]
    assert len(printed) == len(wanted) + 2
    for got, want in zip(printed, wanted, strict=False):
        assert got.startswith(want), (got, want)
    assert printed[-2] == (f"{f}: 10 record(s): 2 accepted, 1 duplicate(s) dropped, "
                           "7 rejected")
    assert printed[-1] == ("rejected by error type: conflicting_id 1, replay_line 2, "
                           "schema 2, unknown_metric 1, unknown_region 1")
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["line"] for r in rows] == [2, 3, 4, 7, 8, 9, 11]
    assert rows[0] == {"line": 2, "source": "env", "error_type": "schema",
                       "reason": "observed_at: Input should have timezone info"}


def test_source_mode_reads_bare_records(tmp_path: Path) -> None:
    f = tmp_path / "env.jsonl"
    f.write_bytes(b"\n".join([
        json.dumps(READING).encode(), b"\xff\xfe{bad bytes}", b"   ",
        json.dumps({**READING, "reading_id": "r2", "unit": "furlongs"}).encode(),
        json.dumps(COMPLAINT).encode()]) + b"\n")
    for name in ("env", "tocsin.env.readings"):
        res = CliRunner().invoke(app, ["validate", str(f), "--source", name])
        assert res.exit_code == EXIT_REJECTED, res.output
        lines = res.stdout.splitlines()
        assert lines[0] == "line 2: not UTF-8: invalid start byte at byte 0"
        assert lines[1].startswith("line 4: unit 'furlongs' not accepted for pm25")
        assert lines[2].startswith("line 5: reading_id: Field required")
        assert lines[3].endswith("4 record(s): 1 accepted, 0 duplicate(s) dropped, 3 rejected")
    res = CliRunner().invoke(app, ["validate", str(_write(tmp_path / "b.jsonl",
                                                          [json.dumps(READING)]))])
    assert res.exit_code == EXIT_REJECTED  # bare records read as replay lines: a hint
    assert res.stdout.splitlines()[-1].startswith("hint: ") and "--source" in res.stdout
    good = _write(tmp_path / "c.jsonl", [json.dumps(COMPLAINT)])
    res = CliRunner().invoke(app, ["validate", str(good), "--source", "complaint"])
    assert res.exit_code == 0 and "1 accepted" in res.stdout


def _tocsin(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "60"}
    return subprocess.run([sys.executable, "-m", "streams", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)


def test_exit_codes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    res = _tocsin("validate", str(empty))
    assert res.returncode == 0 and "no records" in res.stdout
    for args, needle in ([(str(tmp_path / "missing.jsonl"),), "missing.jsonl"],
                         [(str(tmp_path),), "Is a directory"],
                         [(str(empty), "--source", "sms"), "--source 'sms'"]):
        res = _tocsin("validate", *args)
        assert res.returncode == 2, res
        assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_a_huge_line_gets_a_short_reason(tmp_path: Path, registry: RegionRegistry) -> None:
    f = _write(tmp_path / "h.jsonl", [_line("complaint", {**COMPLAINT, "text": "x" * 2_000_000})])
    check = check_lines(read_replay(f), TocsinSettings(), registry)
    assert [r.error_type for r in check.rejected] == ["schema"]
    assert len(check.rejected[0].reason) < 200


def test_a_lone_surrogate_escape_is_rejected_with_its_line(tmp_path: Path,
                                                            registry: RegionRegistry) -> None:
    """JSON may escape a lone surrogate ("\\ud800"); ingest gets the bytes a producer would
    send and rejects them, as it rejects the same record arriving from Kafka."""
    f = _write(tmp_path / "s.jsonl", [_line("complaint", {**COMPLAINT, "complaint_id": "c\ud800"}),
                                      _line("complaint", {**COMPLAINT, "region": "harb\udc00"})])
    check = check_lines(read_replay(f), TocsinSettings(), registry)
    assert [(r.line, r.error_type) for r in check.rejected] == [(1, "encoding"), (2, "encoding")]


@st.composite
def _raw_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["record", "object", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=60)).replace(b"\n", b" ")
    if kind == "object":
        obj = draw(st.dictionaries(st.text(max_size=8), st.none() | st.integers()
                                   | st.text(max_size=10) | st.floats(), max_size=5))
        return json.dumps(obj).encode()
    base = draw(st.sampled_from([READING, COMPLAINT]))
    source = "env" if base is READING else "complaint"
    keys = draw(st.lists(st.sampled_from(sorted(base)), unique=True))
    values = st.none() | st.integers() | st.text(max_size=12) | st.sampled_from(
        ["harbour", "2026-03-02T00:00:00", "ug/m3", "nan", "c\ud800", "harb\udc00"])
    obj = {**base, **{k: draw(values) for k in keys}}
    return json.dumps({"source": draw(st.sampled_from([source, "x"])), **obj}).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_raw_line(), max_size=12), st.booleans())
def test_random_lines_never_crash_validate(lines: list[bytes], bare: bool) -> None:
    """Every non-blank line is accepted, a duplicate, or rejected with a reason."""
    registry = RegionRegistry.from_csv(TocsinSettings().region_registry)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "x.jsonl"
        f.write_bytes(b"\n".join(lines) + b"\n")
        check = check_lines(bare_lines(f, "env") if bare else read_replay(f),
                            TocsinSettings(), registry)
    lines_in = sum(1 for x in lines if x.rstrip(b"\r\n").strip())
    assert check.lines == lines_in
    assert len({r.line for r in check.rejected}) == len(check.rejected)
    for r in check.rejected:
        assert r.reason and r.error_type and 1 <= r.line <= len(lines)
    assert sum(check.by_type().values()) == len(check.rejected)


@pytest.fixture(scope="module")
def dirty_replay(tmp_path_factory: pytest.TempPathFactory, registry: RegionRegistry
                 ) -> tuple[Path, Path]:
    """A simulated replay (it holds malformed records) with our bad lines in the middle."""
    from streams.tools.simulate import SimConfig, simulate

    d = tmp_path_factory.mktemp("dirty")
    ev, truth = d / "events.jsonl", d / "truth.json"
    simulate(SimConfig(seed=5, days=4.5), registry).write(ev, truth)
    lines = ev.read_text("utf-8").splitlines()
    mid = len(lines) // 2
    ev.write_text("\n".join(lines[:mid] + [x for x, _ in REPLAY_CASES] + lines[mid:]) + "\n")
    return ev, truth


def test_validate_agrees_with_the_pipeline(dirty_replay: tuple[Path, Path],
                                           registry: RegionRegistry, tmp_path: Path) -> None:
    ev, truth = dirty_replay
    s = TocsinSettings()
    check = check_lines(read_replay(ev), s, registry)
    lines = list(read_replay(ev))
    pipe, bad = run_pipeline(iter(lines), s, registry)
    assert bad == sum(1 for x in lines if x.source is None) == 2
    from_pipe = sorted([Rejection.of_dead_letter(d) for d in pipe.dead_letters]
                       + [Rejection.of_bad_line(x.lineno, x.error) for x in lines
                          if x.source is None], key=lambda r: r.line)
    assert check.rejected == from_pipe
    assert len(check.rejected) > len([w for _, w in REPLAY_CASES if w])  # the sim's too
    c = pipe.sources.counters
    assert check.accepted == sum(c.valid.values())
    assert check.duplicates == sum(c.duplicate.values())
    # eval replay --dead-letters-out writes the same rejections
    out = tmp_path / "dl.jsonl"
    res = CliRunner().invoke(app, ["eval", "replay", "--events", str(ev), "--truth",
                                   str(truth), "--json", "--dead-letters-out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows == [r.as_json() for r in check.rejected]
    assert json.loads(res.stdout)["dead_letters"] == len(rows)
