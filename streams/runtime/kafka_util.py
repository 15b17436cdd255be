"""Small async helpers around aiokafka: consumer-group lag and reading a topic."""

from __future__ import annotations

from typing import Any

from streams.core.errors import ConfigError
from streams.core.settings import TocsinSettings


async def group_lag(settings: TocsinSettings, group: str, topics: list[str]) -> int | None:
    """Messages in ``topics`` not yet committed by ``group`` (None if it has not committed)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = []
        for t in topics:
            parts = consumer.partitions_for_topic(t)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(t) or set()
            tps += [TopicPartition(t, p) for p in parts]
        ends: dict[Any, int] = await consumer.end_offsets(tps)
        lag, any_commit = 0, False
        for tp, end in ends.items():
            done = await consumer.committed(tp)
            if done is not None:
                any_commit = True
            lag += max(0, end - (done or 0))
        return lag if any_commit else None
    finally:
        await consumer.stop()


async def assign_all(consumer: Any, topic: str) -> None:
    """Assign every partition of ``topic`` to a group-less consumer, from the beginning."""
    from aiokafka import TopicPartition

    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)


async def assign_topics(consumer: Any, topics: list[str]) -> None:
    """Assign every partition of every topic in ``topics`` (group-less), from the beginning.
    (An assigned consumer only refreshes metadata of its assigned topics: look all up
    first, then assign once.)"""
    from aiokafka import TopicPartition

    await consumer._client.force_metadata_update()
    tps = []
    for topic in topics:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise ConfigError(f"topic {topic} not found; run `tocsin topics create` first")
        tps += [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)


async def read_topic(settings: TocsinSettings, topic: str, idle_s: float = 1.0,
                     patient: bool = True) -> list[bytes]:
    """Every message value currently in ``topic`` (``patient``: wait for the broker, see
    streams/core/connect.py)."""
    from aiokafka import AIOKafkaConsumer

    from streams.core.connect import start

    consumer = await start(lambda: AIOKafkaConsumer(**settings.kafka_client_kwargs(),
                                                    enable_auto_commit=False),
                           settings, patient)
    out: list[bytes] = []
    try:
        await assign_all(consumer, topic)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000), max_records=5000)
            for msgs in batch.values():
                out.extend(m.value for m in msgs)
            positions = [await consumer.position(tp) for tp in ends]
            if all(p >= end for p, end in zip(positions, ends.values(), strict=True)):
                break
            if not batch:
                break  # idle for idle_s with messages missing: return what there is
        return out
    finally:
        await consumer.stop()
