"""Helpers for tests that run real workers: read what they published, canonical forms."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detectors.fusion.ledger import WITHDRAWN
from streams.core.schemas import Warning
from streams.core.settings import TocsinSettings
from streams.core.topics import SOURCE_TOPICS, WARNINGS, topic_name
from streams.runtime.kafka_util import read_topic


@dataclass(frozen=True)
class Scenario:
    """A simulated scenario on disk, its replay lines, and the in-process replay's
    warnings (what a live worker must publish)."""

    events: Path
    truth: Path
    lines: list  # type: ignore[type-arg]
    n_events: int
    n_malformed: int  # lines the simulator made unreadable on purpose
    expected: list[Warning]


def read_warnings(s: TocsinSettings) -> list[Warning]:
    return [Warning.model_validate_json(v)
            for v in asyncio.run(read_topic(s, topic_name(s, WARNINGS)))]


def wait_for_warnings(s: TocsinSettings, expected: list[Warning], extra_s: float = 30.0,
                      read: Callable[[], list[Warning]] | None = None) -> list[Warning]:
    """The warnings topic once it holds the incidents of ``expected`` (:func:`incidents`;
    the last versions come once the reorder buffer flushes, ``reorder_idle_s`` after input
    stops), or at the deadline; read once more a second later so a duplicate published
    late is seen too. ``read``: how to read the topic (default :func:`read_warnings`)."""
    read = read or (lambda: read_warnings(s))
    want = incidents(expected)
    deadline = time.monotonic() + s.reorder_idle_s + extra_s
    while incidents(read()) != want and time.monotonic() < deadline:
        time.sleep(1.0)
    time.sleep(1.0)
    return read()


def withdrawn(w: Warning) -> bool:
    """An early warning the on-time correlation did not confirm (detectors.fusion.ledger)."""
    return w.status == "cancelled" and w.explanation.startswith(WITHDRAWN)


def incidents(ws: list[Warning]) -> dict[str, str]:
    """The replay contract (docs/architecture.md, "Replay and live"): every warning id that
    stands (was not withdrawn) and the content of its final version. Version numbers,
    sent_at and new-vs-update may differ with arrival order; these may not."""
    last: dict[str, Warning] = {}
    for w in ws:
        if w.warning_id not in last or w.version >= last[w.warning_id].version:
            last[w.warning_id] = w
    return {wid: w.model_copy(update={"status": "update" if w.status == "new" else w.status}
                              ).model_dump_json(exclude={"sent_at", "version"})
            for wid, w in sorted(last.items()) if not withdrawn(w)}


def rewrites(ws: list[Warning]) -> list[tuple[str, int]]:
    """(warning_id, version) pairs published with two different contents: a silent rewrite
    for a consumer that de-duplicates by them."""
    seen: dict[tuple[str, int], str] = {}
    out = []
    for w in ws:
        key, body = (w.warning_id, w.version), w.model_dump_json(exclude={"sent_at"})
        if seen.setdefault(key, body) != body:
            out.append(key)
    return out


def assert_same_incidents(live: list[Warning], replay: list[Warning]) -> None:
    """The replay contract holds between a live run and the in-process replay."""
    got, want = incidents(live), incidents(replay)
    assert set(got) == set(want), (sorted(set(got) ^ set(want)), len(live), len(replay))
    assert got == want, [k for k in got if got[k] != want.get(k)]
    assert rewrites(live) == []


def scrape(port: int) -> dict[str, float]:
    """metric line (name and labels) -> value, from a worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def total(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith(prefix))


def owned_source_partitions(port: int, s: TocsinSettings) -> float:
    """Source-topic partitions the worker serving /metrics on ``port`` owns (0 when it does
    not serve yet)."""
    sources = {topic_name(s, t) for t in SOURCE_TOPICS.values()}
    try:
        metrics = scrape(port)
    except OSError:
        return 0.0
    return sum(v for k, v in metrics.items() if k.startswith("tocsin_assigned_partitions")
               and any(f'topic="{t}"' in k for t in sources))
