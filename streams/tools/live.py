"""Live runs of simulated cities against a worker: each city's history produced fast, then
its tail produced in real time (event time = the wall clock at production), with the
*decisive record* of each tail incident taken from an in-process replay of the same
stream (``streams.tools.simulation.live`` makes the worlds). Used by ``tocsin bench
--live`` (``streams.bench.live``) and by ``tocsin demo``'s real-time tail.

The decisive record of a warning is the record after which the in-process ``Pipeline``
(as many partitions as the worker's, each record routed by its key as Kafka routes it),
fed every record in production order, first returns a version of it; a tail incident's
warning is the first one its region opens in the tail.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detectors.signals.prewarning import SCENARIO as PREWARNING
from streams.core.errors import TocsinError
from streams.core.regions import Region, RegionRegistry
from streams.core.settings import TocsinSettings
from streams.core.topics import SOURCE_TOPICS, WARNINGS, create_topics, topic_name
from streams.evaluation.replay_score import decisive_records, feed_lines
from streams.pipeline.inprocess import Pipeline
from streams.tools.simulation.live import LiveRecord, LiveTail, LiveWorld
from streams.tools.simulation.model import Incident

WARNING = "warning"  # the channel: the warnings topic


@dataclass
class Expected:
    """A tail incident, the warning the replay opens for it and its decisive record."""

    city: str
    incident: Incident
    warning_id: str | None = None
    decisive: LiveRecord | None = None
    produced: float | None = None  # perf_counter when the decisive record was sent
    arrived: dict[str, float] = field(default_factory=dict)  # channel -> perf_counter

    def latency(self, channel: str) -> float | None:
        if self.produced is None or channel not in self.arrived:
            return None
        return self.arrived[channel] - self.produced


class LiveCity:
    """One simulated city: its world, the worker's settings, the in-process replay."""

    def __init__(self, name: str, world: LiveWorld, settings: TocsinSettings) -> None:
        self.name = name
        self.world = world
        self.settings = settings
        self.replay = Pipeline(settings, world.registry)  # the worker's partitions
        self.history: list[LiveRecord] = []
        self.tail: LiveTail | None = None
        self.expected: list[Expected] = []
        self.unmatched: list[str] = []  # warnings the replay opens in the tail, no incident
        self.other_ids: dict[str, str] = {}  # region -> first other warning id that arrived

    def make_history(self, end: datetime) -> list[LiveRecord]:
        self.history = self.world.history(end)
        return self.history

    def replay_history(self) -> None:
        """Replay the history, then flush what the reorder buffers hold, as the worker's
        idle rule does when its input pauses between history and tail."""
        feed_lines(self.replay, (r.line for r in self.history))
        self.replay.finish()

    def make_tail(self, start: datetime) -> LiveTail:
        """The tail from ``start``, replayed in-process after the history: the decisive
        record of each incident's warning."""
        tail = self.tail = self.world.tail(start)
        by_line = {id(r.line): r for r in tail.records}
        decisive = decisive_records(self.replay, (r.line for r in tail.records))
        firsts = {w.warning_id: w for w in self.replay.warnings if w.warning_id in decisive}
        taken: set[str] = set()
        for inc in tail.incidents:
            exp = Expected(self.name, inc)
            for wid, ln in decisive.items():  # in opening order, from the onset on
                if (wid not in taken and firsts[wid].region == inc.region
                        and by_line[id(ln)].t >= inc.start.timestamp()):
                    exp.warning_id, exp.decisive = wid, by_line[id(ln)]
                    taken.add(wid)
                    break
            self.expected.append(exp)
        self.unmatched = [wid for wid in decisive if wid not in taken]
        return tail


def prefixed_registry(registry: RegionRegistry, prefix: str) -> RegionRegistry:
    """``registry`` with every region id (and neighbour) prefixed: cities side by side
    never share a region id, so never a warning id."""
    return RegionRegistry([
        Region(prefix + r.region, r.name, r.lat, r.lon, r.parent,
               frozenset(prefix + n for n in registry.neighbours(r.region)), r.timezone)
        for r in registry])


def write_registry(registry: RegionRegistry, path: Path) -> Path:
    """``registry`` as the CSV a worker reads (``TOCSIN_REGION_REGISTRY``)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["region", "name", "lat", "lon", "parent", "neighbours", "timezone"])
        for r in registry:
            w.writerow([r.region, r.name, r.lat, r.lon, r.parent or "",
                        ";".join(sorted(registry.neighbours(r.region))), r.timezone or ""])
    return path


async def play(settings: dict[str, TocsinSettings], records: Iterable[tuple[str, LiveRecord]],
               on_sent: Callable[[str, LiveRecord, float], None]) -> int:
    """Produce ``(city, record)`` pairs, sorted by event time, each when the wall clock
    reaches its event time; ``on_sent(city, record, perf_counter)`` after each send."""
    from streams.tools.replay import start_producer

    producers = {c: await start_producer(s, linger_ms=0) for c, s in settings.items()}
    topics = {c: {src: topic_name(s, t) for src, t in SOURCE_TOPICS.items()}
              for c, s in settings.items()}
    n = 0
    try:
        for city, rec in sorted(records, key=lambda x: x[1].t):
            delay = rec.t - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            ln = rec.line
            assert ln.source is not None
            await producers[city].send(topics[city][ln.source], ln.raw, key=ln.key)
            on_sent(city, rec, time.perf_counter())
            n += 1
        for p in producers.values():
            await p.flush()
    finally:
        for p in producers.values():
            await p.stop()
    return n


async def watch_warnings(settings: dict[str, TocsinSettings], stop: asyncio.Event,
                         on_warning: Callable[[str, dict[str, Any], float], None]) -> None:
    """Until ``stop``: every warning version on the cities' warnings topics, with its
    city and the perf_counter of its arrival."""
    from aiokafka import AIOKafkaConsumer

    from streams.runtime.kafka_util import assign_topics

    city_of = {topic_name(s, WARNINGS): c for c, s in settings.items()}
    first = next(iter(settings.values()))
    consumer = AIOKafkaConsumer(**first.kafka_client_kwargs(), enable_auto_commit=False,
                                fetch_max_wait_ms=20)
    await consumer.start()
    try:
        await assign_topics(consumer, list(city_of))
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for tp, msgs in batches.items():
                for m in msgs:
                    on_warning(city_of[tp.topic], json.loads(m.value), now)
    finally:
        await consumer.stop()


async def live_run(cities: list[LiveCity], workdir: Path, expected: dict[str, Expected],
                   channels: tuple[str, ...], grace_s: float,
                   log: Callable[[str], None]) -> int:
    """Warm every city's worker with its history, then play the tails in real time and
    note when each decisive record went out and when its warning arrived on the warnings
    topic (``expected``, filled here by warning id, is where other channels note theirs);
    wait up to ``grace_s`` after the tails for every channel. The live records sent."""
    from streams.tools.demo import start_worker, stop_process

    workers = []
    try:
        end = datetime.now(UTC)
        for c in cities:
            c.make_history(end)
            create_topics(c.settings)
            workers.append(start_worker(c.settings, workdir / f"{c.name}-worker.log"))
        produced = await _warm_up(cities, workers, workdir, log)
        # the workers' idle rule flushes their reorder buffers once the input has paused
        # reorder_idle_s: let that happen before the tail, as the replay did (replay_history)
        await asyncio.sleep(max(0.0, cities[0].settings.reorder_idle_s + 2.0
                                - (time.monotonic() - produced)))
        stop = asyncio.Event()
        settings = {c.name: c.settings for c in cities}
        watcher = asyncio.create_task(watch_warnings(
            settings, stop, _on_warning(expected, {c.name: c for c in cities})))
        start = datetime.fromtimestamp(math.ceil(time.time()) + 3, UTC)
        for c in cities:
            c.make_tail(start)
            expected.update({e.warning_id: e for e in c.expected if e.warning_id})
        decisive = {id(e.decisive): e for e in expected.values()}
        live_s = (cities[0].world.cfg.live_s if cities else 0.0)
        log(f"live: {live_s:.0f} s of real time, the replay opens {len(expected)} of the "
            f"{sum(len(c.expected) for c in cities)} incidents' warnings in it")

        def sent(city: str, rec: LiveRecord, now: float) -> None:
            if (e := decisive.get(id(rec))) is not None:
                e.produced = now

        n = await play(settings, ((c.name, r) for c in cities
                                  for r in (c.tail.records if c.tail else [])), sent)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and not all(
                set(channels) <= set(e.arrived) for e in expected.values()):
            await asyncio.sleep(0.2)
        stop.set()
        await watcher
    finally:
        for w in workers:
            stop_process(w)
    return n


async def _warm_up(cities: list[LiveCity], workers: list[Any], workdir: Path,
                   log: Callable[[str], None]) -> float:
    """Produce every city's history, replay it in-process meanwhile, wait for the workers;
    when (monotonic) the last history record was produced."""
    from streams.tools.demo import wait_drained
    from streams.tools.replay import produce

    days = cities[0].world.cfg.history_days if cities else 0.0
    log(f"warm-up: {len(cities)} cities, {sum(len(c.history) for c in cities)} records of "
        f"{days:g} days, event times ending now")
    for c in cities:
        stats = await produce(c.settings, (r.line for r in c.history))
        if sum(stats.sent.values()) != len(c.history):
            raise LiveRunError(f"produced {stats.sent} of {len(c.history)} history records")
    produced = time.monotonic()
    for c in cities:
        c.replay_history()
    for c, w in zip(cities, workers, strict=True):
        if not await wait_drained(c.settings, 600.0) or w.poll() is not None:
            text = (workdir / f"{c.name}-worker.log").read_text(errors="replace")
            raise LiveRunError(f"the worker of {c.name} did not consume its history: "
                               + " | ".join(text.strip().splitlines()[-3:]))
    return produced


def _on_warning(expected: dict[str, Expected], cities: dict[str, LiveCity]
                ) -> Callable[[str, dict[str, Any], float], None]:
    def on_warning(city: str, w: dict[str, Any], now: float) -> None:
        wid, status = str(w.get("warning_id")), w.get("status")
        if status not in ("new", "update") or w.get("scenario") == PREWARNING:
            return  # a resolved or cancelled version warns nobody; a pre-warning is no incident
        e = expected.get(wid)
        if e is not None and e.city == city:
            e.arrived.setdefault(WARNING, now)
        elif status == "new":  # not the replay's id: noted, for the report
            cities[city].other_ids.setdefault(str(w.get("region")), wid)
    return on_warning


class LiveRunError(TocsinError):
    """A live run could not start: a worker did not consume its history."""


def quantiles(xs: list[float]) -> dict[str, float | None]:
    """p50, p99 (nearest rank) and max of ``xs``; None when empty."""
    s = sorted(xs)
    if not s:
        return {"p50": None, "p99": None, "max": None}
    return {"p50": statistics.median(s), "p99": s[max(0, -(-99 * len(s) // 100) - 1)],
            "max": s[-1]}

