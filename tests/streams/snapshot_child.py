"""Child process of tests/streams/test_snapshot_process.py: restore every partition of a pipeline
from a snapshot file, feed the rest of a replay, print the warnings as JSON lines."""

from __future__ import annotations

import sys
from pathlib import Path

import msgpack

from streams.core.regions import RegionRegistry
from streams.core.settings import DEFAULT_REGISTRY, TocsinSettings
from streams.evaluation.replay_score import feed_lines, read_replay
from streams.pipeline.inprocess import Pipeline
from streams.runtime import snapshot


def main(snap_file: str, events: str, start: str) -> None:
    settings = TocsinSettings(partitions=2)
    pipe = Pipeline(settings, RegionRegistry.from_csv(DEFAULT_REGISTRY))
    ext = snapshot.externals(pipe.sources, pipe.correlation)
    for p, tree in msgpack.unpackb(Path(snap_file).read_bytes(), raw=False,
                                   strict_map_key=False).items():
        state = snapshot.restore(tree, ext)
        pipe.sources.adopt(int(p), state["sources"])
        pipe.correlation.adopt(int(p), state["correlation"], 0.0)
    feed_lines(pipe, list(read_replay(Path(events)))[int(start):])
    pipe.finish()
    for w in pipe.warnings:
        sys.stdout.write(w.model_dump_json(exclude={"sent_at", "audit"}) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
