"""A pipeline's whole state, snapshotted mid-stream, restored in another process, goes on
exactly as the uninterrupted pipeline (every detector family, the correlator, city view)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgpack

from streams.core.regions import RegionRegistry
from streams.core.settings import TocsinSettings
from streams.evaluation.replay_score import ReplayLine, feed_lines, read_replay
from streams.pipeline.inprocess import Pipeline
from streams.runtime import snapshot
from streams.tools.simulate import SimConfig, simulate

ROOT = Path(__file__).resolve().parents[2]


def _lines(w: list[object]) -> list[str]:
    return [w_.model_dump_json(exclude={"sent_at", "audit"}) for w_ in w]  # type: ignore[attr-defined]


def _stream(tmp_path: Path, registry: RegionRegistry) -> tuple[Path, list[ReplayLine], int]:
    """Four simulated days of every department, and where the snapshot is taken."""
    events = tmp_path / "events.jsonl"
    simulate(SimConfig(seed=21, days=4.0), registry).write(events, None)
    lines = list(read_replay(events))
    return events, lines, len(lines) * 3 // 5


def test_a_snapshot_restored_in_another_process_continues_exactly(
        tmp_path: Path, registry: RegionRegistry) -> None:
    events, lines, cut = _stream(tmp_path, registry)
    settings = TocsinSettings(partitions=2)
    pipe = Pipeline(settings, registry)
    feed_lines(pipe, lines[:cut])
    ext = snapshot.externals(pipe.sources, pipe.correlation)
    trees = {p: snapshot.capture({"sources": pipe.sources.export(p),
                                  "correlation": pipe.correlation.export(p)}, ext)
             for p in range(settings.partitions)}
    snap_file = tmp_path / "state.msgpack"
    snap_file.write_bytes(msgpack.packb(trees, use_bin_type=True))
    before = len(pipe.warnings)
    feed_lines(pipe, lines[cut:])
    pipe.finish()
    want = [json.loads(x) for x in _lines(pipe.warnings[before:])]
    assert want, "the second part of the stream should publish warning versions"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-m", "tests.streams.snapshot_child", str(snap_file),
                          str(events), str(cut)], capture_output=True, text=True, check=True,
                         cwd=ROOT, env=env)
    got = [json.loads(x) for x in out.stdout.splitlines()]
    assert got == want


def test_a_cold_pipeline_would_not_continue_the_same(registry: RegionRegistry,
                                                     tmp_path: Path) -> None:
    """Control: without the restored state the second part publishes other versions."""
    _, lines, cut = _stream(tmp_path, registry)
    settings = TocsinSettings(partitions=2)
    warm = Pipeline(settings, registry)
    feed_lines(warm, lines[:cut])
    before = len(warm.warnings)
    feed_lines(warm, lines[cut:])
    warm.finish()
    cold = Pipeline(settings, registry)
    feed_lines(cold, lines[cut:])
    cold.finish()
    assert _lines(cold.warnings) != _lines(warm.warnings[before:])
