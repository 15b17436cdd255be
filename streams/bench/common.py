"""What the ``tocsin bench`` steps share: their error, settings on a fresh topic prefix and
consumer group, and reading a worker's metrics."""

from __future__ import annotations

import os
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streams.core.errors import TocsinError
from streams.core.settings import TocsinSettings


class BenchError(TocsinError):
    """A benchmark step failed; the message says which and why."""


def bench_settings(bootstrap: str, partitions: int, workdir: Path, **kw: Any) -> TocsinSettings:
    """Settings of one bench step: a new app id, topic prefix (unless ``prefix``) and data
    directory."""
    tag = uuid.uuid4().hex[:8]
    return TocsinSettings(broker=bootstrap, app_id=f"tocsin-bench-{tag}",
                          topic_prefix=kw.pop("prefix", f"b{tag}."), partitions=partitions,
                          data_dir=workdir / f"data-{tag}", **kw)


def metric_sum(port: int, name: str, prefix: str = "") -> float:
    """The sum of the worker's metric ``name`` (its lines containing ``prefix``, if given)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not prefix or prefix in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


@contextmanager
def broker() -> Iterator[str]:
    """The bootstrap address of ``KAFKA_BOOTSTRAP_SERVERS`` if set, else of an embedded
    Tansu broker started for the block."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from streams.tools.broker import EmbeddedBroker

    with EmbeddedBroker() as b:
        yield b.bootstrap
