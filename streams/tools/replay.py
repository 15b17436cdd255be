"""Produce a replay file (JSONL, one message per line with a ``source`` field) to the topics."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from streams.core.settings import TocsinSettings
from streams.core.topics import DEADLETTER, SOURCE_TOPICS, topic_name
from streams.evaluation.replay_score import ReplayLine, read_replay
from streams.ingest.ingestor import Origin, dead_letter

TIME_FIELDS = ("observed_at", "received_at", "occurred_at")


@dataclass
class ReplayStats:
    sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCE_TOPICS, 0))
    bad_lines: int = 0

    @property
    def total(self) -> int:
        return sum(self.sent.values()) + self.bad_lines


def _event_time(raw: bytes) -> float | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    for f in TIME_FIELDS:
        v = obj.get(f) if isinstance(obj, dict) else None
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
    return None


def bad_line_record(ln: ReplayLine, source_name: str = "replay") -> bytes:
    """The dead-letter record (JSON, no key) of a line that is not a valid replay line."""
    d = dead_letter(ln.raw, Origin(f"{source_name}:line", -1, ln.lineno),
                    ln.error or "bad replay line", "replay_line")
    return d.model_dump_json().encode()


async def start_producer(settings: TocsinSettings, patient: bool = True, **extra: Any) -> Any:
    """A started producer; waits for the broker as :func:`streams.core.connect.start` says."""
    from aiokafka import AIOKafkaProducer

    from streams.core.connect import start

    kw = settings.kafka_client_kwargs()
    opts: dict[str, Any] = {"linger_ms": 20, "max_batch_size": 256 * 1024, **extra}
    return await start(lambda: AIOKafkaProducer(**kw, **opts), settings, patient)


async def produce(
    settings: TocsinSettings,
    lines: Iterable[ReplayLine],
    speed: float = 0.0,
    on_sent: Callable[[int, float | None], None] | None = None,
    source_name: str = "replay",
) -> ReplayStats:
    """Send every line to its source topic, keyed by region. Lines that are not valid
    replay lines go to the dead-letter topic with the reason, never dropped.

    ``speed`` > 0 paces sending so that event time runs ``speed`` times faster than wall
    time (e.g. 3600 = an hour per second); 0 sends as fast as possible."""
    stats = ReplayStats()
    producer = await start_producer(settings)
    topics = {src: topic_name(settings, t) for src, t in SOURCE_TOPICS.items()}
    dl_topic = topic_name(settings, DEADLETTER)
    t0_event: float | None = None
    t0_wall = time.monotonic()
    pending: list[asyncio.Future[Any]] = []
    try:
        for ln in lines:
            et: float | None = None
            if ln.source is None:
                pending.append(await producer.send(dl_topic, bad_line_record(ln, source_name)))
                stats.bad_lines += 1
            else:
                if speed > 0:
                    et = _event_time(ln.raw)
                    if et is not None:
                        if t0_event is None:
                            t0_event = et
                        due = t0_wall + (et - t0_event) / speed
                        delay = due - time.monotonic()
                        if delay > 0.002:
                            await asyncio.sleep(delay)
                pending.append(await producer.send(topics[ln.source], ln.raw, key=ln.key))
                stats.sent[ln.source] += 1
            if on_sent is not None:
                on_sent(1, et)
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        if pending:
            await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return stats


def replay_file(settings: TocsinSettings, path: Path, speed: float = 0.0) -> ReplayStats:
    return asyncio.run(produce(settings, read_replay(path), speed, source_name=str(path)))

