"""Checkpoints: a worker's per-partition state on a compacted topic, so a restarted or
rebalanced worker resumes with its baselines and open incidents instead of a cold start.

What a checkpoint of partition ``p`` holds: the detector state of source partition ``p``
(all three source topics), its de-duplication window, the reorder buffer and correlator of
anomalies partition ``p``, the earlier versions of its open warnings (for CAP references),
and the next offset of every topic-partition ``p`` that state covers. faust assigns the same
partition number of every agent topic to one worker (co-partitioning), so one partition
number is one unit of state.

Wire format: the pickled :class:`PartitionSnapshot` is cut into chunks of at most
``CHUNK_BYTES`` (Kafka's default message limit is 1 MB), each a record keyed
``<app_id>/<partition>/<slot>/<index>`` on partition ``p`` of the checkpoints topic. Two
slots alternate (``gen % 2``), so writing generation ``g`` never overwrites the chunks of
``g - 1``: a worker killed half-way through a write leaves the previous complete
generation readable even after compaction. Every chunk carries the generation, the chunk
count and the SHA-256 of the whole blob (an HMAC when ``TOCSIN_CHECKPOINT_KEY`` is set);
a reader takes the newest generation whose chunks are all there and whose digest matches.

Checkpoints are pickles of Tocsin's own classes: only Tocsin workers may write the
checkpoints topic (broker ACLs; set ``TOCSIN_CHECKPOINT_KEY`` to have forged or corrupted
checkpoints refused).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import pickle
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from .errors import TocsinError

log = logging.getLogger("tocsin.checkpoint")

FORMAT = 1
MAGIC = b"TCK1"
CHUNK_BYTES = 512 * 1024


class CheckpointError(TocsinError):
    """A checkpoint cannot be read; the partition starts without its earlier state."""


@dataclass
class PartitionSnapshot:
    """Everything a worker holds for one partition number, and how far it covers."""

    partition: int
    gen: int
    offsets: dict[str, int]  # topic -> next offset to process
    state: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0  # wall clock (seconds since the epoch)
    format: int = FORMAT


class Gate:
    """Batches run side by side; a checkpoint waits until none is in flight and holds new
    ones back while it captures the state (a shared/exclusive lock)."""

    def __init__(self) -> None:
        self._active = 0
        self._closed = False
        self._cond = asyncio.Condition()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._closed)
            self._active += 1
        try:
            yield
        finally:
            async with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._closed)
            self._closed = True
            await self._cond.wait_for(lambda: self._active == 0)
        try:
            yield
        finally:
            async with self._cond:
                self._closed = False
                self._cond.notify_all()


def _digest(blob: bytes, key: bytes | None) -> str:
    if key is None:
        return "sha256:" + hashlib.sha256(blob).hexdigest()
    return "hmac-sha256:" + hmac.new(key, blob, hashlib.sha256).hexdigest()


def encode(snap: PartitionSnapshot, app_id: str, key: bytes | None = None,
           chunk_bytes: int = CHUNK_BYTES) -> list[tuple[bytes, bytes]]:
    """The (key, value) records of ``snap``, in order."""
    blob = pickle.dumps(snap, protocol=pickle.HIGHEST_PROTOCOL)
    count = max(1, -(-len(blob) // chunk_bytes))
    slot = snap.gen % 2
    head = {"app_id": app_id, "partition": snap.partition, "gen": snap.gen,
            "count": count, "size": len(blob), "digest": _digest(blob, key),
            "format": snap.format}
    out = []
    for i in range(count):
        h = json.dumps({**head, "index": i}, separators=(",", ":")).encode()
        value = MAGIC + len(h).to_bytes(4, "big") + h + blob[i * chunk_bytes:(i + 1) * chunk_bytes]
        out.append((f"{app_id}/{snap.partition}/{slot}/{i}".encode(), value))
    return out


class Assembler:
    """Collects checkpoint records (in log order) and gives the newest complete, intact
    generation of each partition."""

    def __init__(self, app_id: str, key: bytes | None = None) -> None:
        self.app_id = app_id
        self.key = key
        # (partition, gen) -> header, {index: chunk}
        self._chunks: dict[tuple[int, int], tuple[dict[str, Any], dict[int, bytes]]] = {}
        self.rejected: list[str] = []

    def add(self, value: bytes | None) -> None:
        if not value or not value.startswith(MAGIC) or len(value) < 8:
            self.rejected.append("not a checkpoint record")
            return
        n = int.from_bytes(value[4:8], "big")
        try:
            head = json.loads(value[8:8 + n])
            part, gen, index = int(head["partition"]), int(head["gen"]), int(head["index"])
        except (ValueError, KeyError, TypeError):
            self.rejected.append("unreadable checkpoint header")
            return
        if head.get("app_id") != self.app_id:
            return  # another application sharing the topic
        entry = self._chunks.get((part, gen))
        if entry is None or entry[0].get("digest") != head.get("digest"):
            # first chunk of this generation, or a later writer reused the number (a
            # worker that took over after one crashed half-way through that generation):
            # the later writer's chunks win
            entry = self._chunks[part, gen] = (head, {})
        entry[1][index] = value[8 + n:]

    def latest(self, partition: int) -> PartitionSnapshot | None:
        """The newest generation of ``partition`` that is complete and intact (None:
        none is)."""
        gens = sorted((g for p, g in self._chunks if p == partition), reverse=True)
        for gen in gens:
            head, chunks = self._chunks[partition, gen]
            count = int(head["count"])
            if len(chunks) < count or any(i not in chunks for i in range(count)):
                self.rejected.append(f"partition {partition} gen {gen}: incomplete")
                continue
            blob = b"".join(chunks[i] for i in range(count))
            if not hmac.compare_digest(_digest(blob, self.key), str(head["digest"])):
                self.rejected.append(
                    f"partition {partition} gen {gen}: digest mismatch (corrupt, or written "
                    "with another TOCSIN_CHECKPOINT_KEY)")
                continue
            if int(head.get("format", 0)) != FORMAT:
                self.rejected.append(f"partition {partition} gen {gen}: format "
                                     f"{head.get('format')} (this version reads {FORMAT})")
                continue
            try:
                snap = pickle.loads(blob)  # our own topic, digest checked
            except Exception as exc:  # a class changed shape between versions
                self.rejected.append(f"partition {partition} gen {gen}: cannot be loaded "
                                     f"by this version ({type(exc).__name__}: {exc})")
                continue
            if not isinstance(snap, PartitionSnapshot) or snap.partition != partition:
                self.rejected.append(f"partition {partition} gen {gen}: not a snapshot")
                continue
            return snap
        return None


async def read_latest(settings: Any, topic: str, partitions: Iterable[int],
                      key: bytes | None = None) -> tuple[dict[int, PartitionSnapshot],
                                                         list[str]]:
    """Read partitions ``partitions`` of the checkpoints topic to their end; the newest
    intact snapshot of each (missing: none written yet) and the reasons any were refused."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    parts = sorted(set(partitions))
    if not parts:
        return {}, []
    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * CHUNK_BYTES)
    await consumer.start()
    asm = Assembler(settings.app_id, key)
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends: dict[Any, int] = await consumer.end_offsets(tps)
        todo = set()
        for tp, end in ends.items():
            if end > 0 and (await consumer.position(tp)) < end:
                todo.add(tp)
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=1000)
            for tp, msgs in batch.items():
                for msg in msgs:
                    if msg.offset < ends[tp]:
                        asm.add(msg.value)
            for tp in list(todo):
                if (await consumer.position(tp)) >= ends[tp]:
                    todo.discard(tp)
    finally:
        await consumer.stop()
    found = {p: s for p in parts if (s := asm.latest(p)) is not None}
    return found, asm.rejected


__all__ = ["Assembler", "CheckpointError", "Gate", "PartitionSnapshot", "encode",
           "read_latest"]
